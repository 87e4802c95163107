import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from './errors.ts';
import {
  contentToken,
  generateSealingKeyPair,
  openSealed,
  parseSealingKeyPair,
  parseSealingPublicKey,
  sealedBinding,
  sealValue,
} from './seal.ts';

const owner = { cluster: 'prod', namespace: 'team-a', name: 'db' };
const document = new TextEncoder().encode('{"password":"Sv-hunter2"}');
const keyPair = generateSealingKeyPair();

function openFails(action: () => unknown, why: RegExp): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof InvalidInputError);
    assert.match(error.message, why);
    assert.ok(!error.message.includes('hunter2'), 'no content in the message');
    return true;
  });
}

test('sealed to the published key, opened with the private key for the same owner', () => {
  const published = parseSealingPublicKey(keyPair.publicKey.text, 'ConfigMap smk/key');
  assert.equal(published.keyId, keyPair.publicKey.keyId);
  const sealed = sealValue(published, owner, document);
  assert.match(sealed, /^smk-sealed\.v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.ok(!sealed.includes('hunter2') && !Buffer.from(sealed).toString('base64').includes('hunter2'));
  assert.deepEqual(openSealed(keyPair, owner, sealed, 'Secret team-a/db'), document);
  assert.deepEqual(sealedBinding(sealed, 'x'), { ...owner, keyId: keyPair.publicKey.keyId });
});

test('two seals of one value differ (fresh ephemeral key and iv)', () => {
  assert.notEqual(
    sealValue(keyPair.publicKey, owner, document),
    sealValue(keyPair.publicKey, owner, document),
  );
});

test('a sealed value does not open for another namespace, name or cluster', () => {
  const sealed = sealValue(keyPair.publicKey, owner, document);
  openFails(() => openSealed(keyPair, { ...owner, namespace: 'team-b' }, sealed, 's'), /namespace "team-a"/);
  openFails(() => openSealed(keyPair, { ...owner, name: 'other' }, sealed, 's'), /name "db"/);
  openFails(() => openSealed(keyPair, { ...owner, cluster: 'dev' }, sealed, 's'), /cluster "prod"/);
});

test('a header rewritten to another owner does not authenticate (the header is the AAD)', () => {
  const sealed = sealValue(keyPair.publicKey, owner, document);
  const [tag, version, header = '', body = ''] = sealed.split('.');
  const fields = JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, string>;
  const moved = Buffer.from(JSON.stringify({ ...fields, namespace: 'team-b' })).toString('base64url');
  openFails(
    () => openSealed(keyPair, { ...owner, namespace: 'team-b' }, [tag, version, moved, body].join('.'), 's'),
    /does not authenticate/,
  );
  const flipped = Buffer.from(body, 'base64url');
  flipped[20] = (flipped[20] ?? 0) ^ 1;
  openFails(
    () => openSealed(keyPair, owner, [tag, version, header, flipped.toString('base64url')].join('.'), 's'),
    /does not authenticate/,
  );
});

test('another key cannot open it, and says which key it was sealed to', () => {
  const other = generateSealingKeyPair();
  const sealed = sealValue(other.publicKey, owner, document);
  openFails(
    () => openSealed(keyPair, owner, sealed, 's'),
    new RegExp(`sealed to key ${other.publicKey.keyId}`),
  );
});

test('malformed sealed values are refused by shape', () => {
  for (const text of ['', 'plain', 'smk-sealed.v2.a.b', 'smk-sealed.v1.!!.b', 'smk-sealed.v1.e30.AAAA']) {
    openFails(() => openSealed(keyPair, owner, text, 's'), /not a sealed value/);
  }
});

test('the key pair survives its PEM; a non-X25519 key or bad public key is refused', () => {
  const again = parseSealingKeyPair(keyPair.privateKeyPem, 'Secret smk/key');
  assert.equal(again.publicKey.keyId, keyPair.publicKey.keyId);
  const sealed = sealValue(keyPair.publicKey, owner, document);
  assert.deepEqual(openSealed(again, owner, sealed, 's'), document);
  assert.throws(
    () => parseSealingKeyPair('nope', 'Secret smk/key'),
    /Secret smk\/key: private-key.pem is not/,
  );
  assert.throws(() => parseSealingPublicKey('short', 'ConfigMap smk/key'), /public-key is not an X25519/);
});

test('content tokens: equal for equal name and content, keyed (another key gives another token)', () => {
  const token = contentToken(keyPair, 'kubernetes/team-a/db', 'doc');
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(
    contentToken(parseSealingKeyPair(keyPair.privateKeyPem, 's'), 'kubernetes/team-a/db', 'doc'),
    token,
  );
  assert.notEqual(contentToken(keyPair, 'kubernetes/team-a/db2', 'doc'), token);
  assert.notEqual(contentToken(keyPair, 'kubernetes/team-a/db', 'doc2'), token);
  assert.notEqual(contentToken(generateSealingKeyPair(), 'kubernetes/team-a/db', 'doc'), token);
});
