import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { InvalidInputError, NotFoundError } from '../../src/core/errors.ts';
import type { SecretRequest } from '../../src/core/source.ts';
import {
  admin,
  createSecret,
  expectError,
  expectValue,
  region,
  rotateSecret,
  staticIdentity,
  text,
  uniquePrefix,
  wire,
} from './support.ts';

const identity = staticIdentity('AKIDSECRETS');

const sm = (id: string, extra: Partial<SecretRequest> = {}): SecretRequest => ({
  objectType: 'secretsmanager',
  id,
  region,
  ...extra,
});

test('a secret is read by name, full ARN and partial ARN; the ARN region wins', async (t) => {
  const { reader } = await wire(t);
  const name = `${uniquePrefix('names')}/db`;
  const created = await createSecret(name, '{"user":"app"}');
  const partialArn = created.arn.slice(0, -7);
  const results = await reader(identity).read([
    sm(name),
    sm(created.arn),
    sm(partialArn),
    // The ARN says us-east-1: the request's region is not used.
    sm(created.arn, { region: 'eu-west-3' }),
  ]);
  for (const result of results) {
    const value = expectValue(result);
    assert.equal(value.arn, created.arn);
    assert.equal(value.name, name);
    assert.equal(value.versionId, created.versionId);
    assert.equal(text(value.bytes), '{"user":"app"}');
    assert.equal(value.binary, false);
  }
  assert.equal(expectValue(results[3]).request.region, 'eu-west-3', 'the request is handed back as given');
});

test('versions and stages: explicit stage, explicit version, and a moved AWSCURRENT', async (t) => {
  const { reader } = await wire(t);
  const name = uniquePrefix('stages');
  const first = await createSecret(name, 'one');
  const second = await rotateSecret(name, 'two', first.versionId);

  const results = await reader(identity).read([
    sm(name),
    sm(name, { versionStage: 'AWSPREVIOUS' }),
    sm(name, { versionId: first.versionId }),
    sm(name, { versionStage: 'AWSPENDING' }),
  ]);
  assert.equal(text(expectValue(results[0]).bytes), 'two', 'AWSCURRENT after the stage moved');
  assert.equal(expectValue(results[0]).versionId, second);
  assert.equal(text(expectValue(results[1]).bytes), 'one');
  assert.equal(expectValue(results[2]).versionId, first.versionId);
  assert.equal(text(expectValue(results[2]).bytes), 'one');
  assert.equal(text(expectValue(results[3]).bytes), 'two');
});

test('binary secrets come back byte for byte and are marked binary', async (t) => {
  const { reader } = await wire(t);
  const name = uniquePrefix('binary');
  const bytes = Uint8Array.from({ length: 256 }, (_, at) => at);
  await createSecret(name, bytes);
  const value = expectValue((await reader(identity).read([sm(name)]))[0]);
  assert.equal(value.binary, true);
  assert.deepEqual(value.bytes, bytes);
});

test('a missing secret fails alone with NotFoundError; the others are read', async (t) => {
  const { reader } = await wire(t);
  const prefix = uniquePrefix('missing');
  await createSecret(`${prefix}/here`, 'present');
  await createSecret(`${prefix}/also`, 'present too');
  const results = await reader(identity).read([
    sm(`${prefix}/here`),
    sm(`${prefix}/gone`),
    sm(`${prefix}/also`),
    sm(`${prefix}/also`, { versionId: '00000000-0000-0000-0000-000000000000' }),
  ]);
  assert.equal(text(expectValue(results[0]).bytes), 'present');
  assert.equal(text(expectValue(results[2]).bytes), 'present too');
  for (const at of [1, 3]) {
    const result = results[at];
    assert.ok(result && !result.ok);
    assert.ok(result.error instanceof NotFoundError, `${at}: ${result.error.name}`);
  }
  const missing = results[1];
  assert.ok(missing && !missing.ok);
  assert.match(
    missing.error.message,
    /^BatchGetSecretValue smk-test-missing-[0-9a-f]+\/gone in us-east-1: not found/,
  );
  assert.equal(missing.error.subject, `${prefix}/gone`);
});

test('a secret scheduled for deletion is NotFound, read alone or in a batch', async (t) => {
  const { reader } = await wire(t);
  const prefix = uniquePrefix('deleted');
  await createSecret(`${prefix}/doomed`, 'doomed value');
  await createSecret(`${prefix}/kept`, 'kept');
  await admin.secrets.send(
    new DeleteSecretCommand({ SecretId: `${prefix}/doomed`, RecoveryWindowInDays: 7 }),
  );
  const alone = await reader(identity).read([sm(`${prefix}/doomed`)]);
  const batched = await reader(staticIdentity('AKIDSECRETS2')).read([
    sm(`${prefix}/doomed`),
    sm(`${prefix}/kept`),
  ]);
  for (const result of [alone[0], batched[0]]) {
    const { error } = expectError(result);
    assert.ok(error instanceof NotFoundError, `${error.name}: ${error.message}`);
    assert.doesNotMatch(error.message, /doomed value/);
  }
  assert.equal(text(expectValue(batched[1]).bytes), 'kept');
});

test('requests without a region or with an empty id are refused before any call', async (t) => {
  const { reader, proxy } = await wire(t);
  const results = await reader(identity).read([sm('x', { region: '' }), sm('')]);
  for (const result of results) {
    assert.ok(result && !result.ok);
    assert.ok(result.error instanceof InvalidInputError);
  }
  assert.equal(proxy.count(), 0);
});

test('describe reports versions and stages; listSecretVersions finds secrets by name and ARN', async (t) => {
  const { reader, proxy } = await wire(t);
  const prefix = uniquePrefix('list');
  const a = await createSecret(`${prefix}/a`, 'a1');
  const aNext = await rotateSecret(`${prefix}/a`, 'a2', a.versionId);
  const ab = await createSecret(`${prefix}/ab`, 'ab');
  await createSecret(`${prefix}/other`, 'not asked');

  const described = await reader(identity).describe(sm(`${prefix}/a`));
  assert.equal(described.arn, a.arn);
  assert.equal(described.name, `${prefix}/a`);
  assert.deepEqual(described.versionsToStages.get(a.versionId), ['AWSPREVIOUS']);
  assert.ok(described.versionsToStages.get(aNext)?.includes('AWSCURRENT'));

  proxy.resetCounts();
  const listed = await reader(identity).listSecretVersions(region, { ids: [`${prefix}/a`, ab.arn] });
  assert.deepEqual(listed.map((entry) => entry.name).sort(), [`${prefix}/a`, `${prefix}/ab`]);
  assert.equal(proxy.count({ api: 'ListSecrets' }), 1, 'one page, both names in one filter');
  const listedA = listed.find((entry) => entry.arn === a.arn);
  assert.ok(listedA?.versionsToStages.get(aNext)?.includes('AWSCURRENT'));

  await assert.rejects(reader(identity).describe(sm(`${prefix}/none`)), NotFoundError);
});
