import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotFoundError } from '../../src/core/errors.ts';
import type { SecretRequest } from '../../src/core/source.ts';
import {
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

const sm = (id: string): SecretRequest => ({ objectType: 'secretsmanager', id, region });

async function createMany(prefix: string, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, at) => `${prefix}/s${String(at).padStart(2, '0')}`);
  await Promise.all(names.map((name) => createSecret(name, `value of ${name}`)));
  return names;
}

test('25 secrets at AWSCURRENT take exactly two BatchGetSecretValue calls of at most 20 ids', async (t) => {
  const { reader, proxy } = await wire(t);
  const names = await createMany(uniquePrefix('batch25'), 25);
  const results = await reader(staticIdentity('AKIDBATCH')).read(names.map(sm));
  results.forEach((result, at) => {
    assert.equal(text(expectValue(result).bytes), `value of ${names[at]}`);
  });
  assert.deepEqual(proxy.countsByApi(), { BatchGetSecretValue: 2 });
  const sizes = proxy
    .calls()
    .map((call) => call.ids.length)
    .sort((a, b) => a - b);
  assert.deepEqual(sizes, [5, 20]);
});

test('per-secret errors of a batch map to per-request results', async (t) => {
  const { reader, proxy } = await wire(t);
  const prefix = uniquePrefix('batcherr');
  const names = await createMany(prefix, 3);
  const results = await reader(staticIdentity('AKIDBATCH')).read([
    sm(names[0] ?? ''),
    sm(`${prefix}/absent`),
    sm(names[1] ?? ''),
    sm(names[2] ?? ''),
  ]);
  assert.equal(text(expectValue(results[0]).bytes), `value of ${names[0]}`);
  assert.ok(expectError(results[1]).error instanceof NotFoundError);
  assert.equal(text(expectValue(results[3]).bytes), `value of ${names[2]}`);
  assert.deepEqual(proxy.countsByApi(), { BatchGetSecretValue: 1 });
});

test('a secret whose AWSCURRENT moved is re-read with an explicit stage (moto batch answers the old version)', async (t) => {
  const { reader, proxy } = await wire(t);
  const prefix = uniquePrefix('batchmoved');
  const [plain] = await createMany(prefix, 1);
  const moved = `${prefix}/moved`;
  const first = await createSecret(moved, 'old');
  const second = await rotateSecret(moved, 'new', first.versionId);
  const results = await reader(staticIdentity('AKIDBATCH')).read([sm(plain ?? ''), sm(moved)]);
  assert.equal(expectValue(results[1]).versionId, second);
  assert.equal(text(expectValue(results[1]).bytes), 'new');
  assert.deepEqual(proxy.countsByApi(), { BatchGetSecretValue: 1, GetSecretValue: 1 });
});

test('an identity refused BatchGetSecretValue is read secret by secret, and not asked to batch again', async (t) => {
  const { reader, proxy } = await wire(t);
  const names = await createMany(uniquePrefix('nobatch'), 6);
  proxy.addFault({ fault: { kind: 'deny' }, api: 'BatchGetSecretValue' });
  const secrets = reader(staticIdentity('AKIDNOBATCH'));
  const first = await secrets.read(names.slice(0, 3).map(sm));
  for (const result of first) expectValue(result);
  assert.deepEqual(proxy.countsByApi(), { BatchGetSecretValue: 1, GetSecretValue: 3 });
  proxy.resetCounts();
  const second = await secrets.read(names.slice(3).map(sm));
  for (const result of second) expectValue(result);
  assert.deepEqual(proxy.countsByApi(), { GetSecretValue: 3 });
});

test('when a whole batch call fails, every secret of it carries that error with its own subject', async (t) => {
  const { reader, proxy } = await wire(t);
  const names = await createMany(uniquePrefix('batchfail'), 2);
  proxy.addFault({ fault: { kind: 'status', status: 503 } });
  const results = await reader(staticIdentity('AKIDBATCH')).read(names.map(sm));
  results.forEach((result, at) => {
    const { error } = expectError(result);
    assert.equal(error.kind, 'Transient');
    assert.equal(error.subject, names[at]);
  });
});
