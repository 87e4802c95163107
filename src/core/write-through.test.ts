import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError, TooLargeError } from './errors.ts';
import {
  base64Member,
  decodeSecretDocument,
  encodeSecretData,
  maxDocumentBytes,
  secretKeyProblem,
  secretNameOf,
} from './write-through.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

test('text values are stored as strings, keys in code-point order, no marker', () => {
  const encoded = encodeSecretData(
    new Map([
      ['username', bytes('app')],
      ['Password', bytes('pä$$ "quoted"\n')],
      ['empty', new Uint8Array()],
    ]),
    'Secret a/b',
  );
  assert.equal(encoded.document, '{"Password":"pä$$ \\"quoted\\"\\n","empty":"","username":"app"}');
  assert.deepEqual(encoded.keys, ['Password', 'empty', 'username']);
  assert.deepEqual(encoded.base64Keys, []);
});

test('non-UTF-8 values are base64 and listed in the marker; a BOM survives the round trip', () => {
  const binary = new Uint8Array([0xff, 0xfe, 0x00, 0x80]);
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x41]);
  const encoded = encodeSecretData(
    new Map([
      ['keystore.p12', binary],
      ['bom.txt', bom],
    ]),
    'Secret a/b',
  );
  assert.deepEqual(encoded.base64Keys, ['keystore.p12']);
  const parsed = JSON.parse(encoded.document) as Record<string, unknown>;
  assert.equal(parsed['keystore.p12'], Buffer.from(binary).toString('base64'));
  assert.deepEqual(parsed[base64Member], ['keystore.p12']);
  const decoded = decodeSecretDocument(encoded.document, 'doc');
  assert.deepEqual([...decoded.keys()].sort(), ['bom.txt', 'keystore.p12']);
  assert.deepEqual(decoded.get('keystore.p12'), binary);
  assert.deepEqual(decoded.get('bom.txt'), bom);
});

test('equal content encodes to the same document whatever the key order', () => {
  const a = encodeSecretData(
    new Map([
      ['x', bytes('1')],
      ['y', bytes('2')],
    ]),
    's',
  );
  const b = encodeSecretData(
    new Map([
      ['y', bytes('2')],
      ['x', bytes('1')],
    ]),
    's',
  );
  assert.equal(a.document, b.document);
});

test('bad keys and oversize content are refused, naming the Secret, never the value', () => {
  assert.throws(
    () => encodeSecretData(new Map([['bad/key', bytes('hunter2')]]), 'Secret a/b'),
    (error: unknown) =>
      error instanceof InvalidInputError &&
      error.message.includes('Secret a/b') &&
      error.message.includes('"bad/key"') &&
      !error.message.includes('hunter2'),
  );
  assert.throws(
    () => encodeSecretData(new Map([['big', new Uint8Array(maxDocumentBytes).fill(0x61)]]), 'Secret a/b'),
    (error: unknown) => error instanceof TooLargeError && error.message.includes('Secret a/b'),
  );
  assert.equal(secretKeyProblem('..data'), 'must not be "." or start with ".."');
  assert.equal(secretKeyProblem('tls.crt'), undefined);
});

test('a document that is not ours is refused without echoing it', () => {
  for (const text of [
    'not json hunter2',
    '[1]',
    '{"a":1}',
    '{"a":"x","smk.dev/base64":["b"]}',
    '{"a":"%%","smk.dev/base64":["a"]}',
  ]) {
    assert.throws(
      () => decodeSecretDocument(text, 'doc'),
      (error: unknown) => error instanceof InvalidInputError && !error.message.includes('hunter2'),
    );
  }
});

test('the secret a Secret maps to: prefix + namespace/name, or a chosen name only under the namespace prefix', () => {
  assert.deepEqual(secretNameOf('k8s/', 'a', 'db', {}), { name: 'k8s/a/db' });
  assert.deepEqual(secretNameOf('k8s/', 'a', 'db', { 'smk.dev/aws-secret-name': 'k8s/a/x/y' }), {
    name: 'k8s/a/x/y',
  });
  // The ARN annotation never decides anything.
  assert.deepEqual(
    secretNameOf('k8s/', 'a', 'db', {
      'smk.dev/aws-secret-arn': 'arn:aws:secretsmanager:us-east-1:1:secret:k8s/b/db-AbCdEf',
    }),
    { name: 'k8s/a/db' },
  );
  for (const [given, problem] of [
    ['k8s/b/db', /outside this namespace's prefix "k8s\/a\/"/],
    ['k8s/a/', /outside/],
    ['k8s/ab/db', /outside/],
    ['arn:aws:secretsmanager:us-east-1:1:secret:k8s/a/db', /not an ARN/],
    ['k8s/a/bad name', /expected 1–512 of the characters/],
  ] as const) {
    const result = secretNameOf('k8s/', 'a', 'db', { 'smk.dev/aws-secret-name': given });
    assert.ok('problem' in result, given);
    assert.match(result.problem, problem);
  }
});
