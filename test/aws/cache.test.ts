import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessDeniedError } from '../../src/core/errors.ts';
import { registry } from '../../src/core/metrics.ts';
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

const sm = (id: string, extra: Partial<SecretRequest> = {}): SecretRequest => ({
  objectType: 'secretsmanager',
  id,
  region,
  ...extra,
});

async function metric(name: string): Promise<number> {
  const found = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  return (found?.values ?? []).reduce((sum, value) => sum + value.value, 0);
}

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let now = 1_000_000;
  return { now: () => now, advance: (ms) => (now += ms) };
}

test('a second read by the same identity makes no call; hits and misses are counted', async (t) => {
  const { reader, proxy } = await wire(t);
  const prefix = uniquePrefix('cachehit');
  await createSecret(`${prefix}/a`, 'A');
  await createSecret(`${prefix}/b`, 'B');
  const secrets = reader(staticIdentity('AKIDCACHE'));
  const hitsBefore = await metric('smk_aws_cache_hits_total');
  await secrets.read([sm(`${prefix}/a`), sm(`${prefix}/b`)]);
  assert.equal(proxy.count(), 1);
  proxy.resetCounts();
  const again = await secrets.read([sm(`${prefix}/a`), sm(`${prefix}/b`)]);
  assert.equal(proxy.count(), 0, 'served from cache');
  assert.equal(text(expectValue(again[1]).bytes), 'B');
  assert.equal((await metric('smk_aws_cache_hits_total')) - hitsBefore, 2);
});

test('concurrent reads of the same secret by one identity share one call', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = uniquePrefix('flight');
  await createSecret(name, 'shared');
  proxy.addFault({ fault: { kind: 'latency', ms: 100 } });
  const secrets = reader(staticIdentity('AKIDFLIGHT'));
  const all = await Promise.all(Array.from({ length: 5 }, () => secrets.read([sm(name)])));
  for (const [result] of all) assert.equal(text(expectValue(result).bytes), 'shared');
  assert.equal(proxy.count({ api: 'GetSecretValue' }), 1);
});

test('held: true while a call for the request runs and while the cache holds it for this identity only', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = uniquePrefix('held');
  await createSecret(name, 'held value');
  proxy.addFault({ fault: { kind: 'latency', ms: 100 } });
  const mine = reader(staticIdentity('AKIDHELD'));
  const other = reader(staticIdentity('AKIDHELDOTHER'));
  assert.equal(mine.held?.(sm(name)), false, 'nothing read yet');
  const reading = mine.read([sm(name)]);
  assert.equal(mine.held?.(sm(name)), true, 'in flight');
  expectValue((await reading)[0]);
  assert.equal(mine.held?.(sm(name)), true, 'cached');
  assert.equal(other.held?.(sm(name)), false, 'another identity would ask AWS itself');
  assert.equal(
    mine.held?.(sm(name, { versionStage: 'AWSPREVIOUS' })),
    false,
    'another stage is another read',
  );
});

test('a cached value is not handed to an identity AWS refuses', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = uniquePrefix('refused');
  await createSecret(name, 'for A only');
  const allowed = reader(staticIdentity('AKIDALLOWED'));
  const refused = reader(staticIdentity('AKIDREFUSED'));
  proxy.refuseAccessKey('AKIDREFUSED');

  expectValue((await allowed.read([sm(name)]))[0]);
  const [denied] = await refused.read([sm(name)]);
  const { error } = expectError(denied);
  assert.ok(error instanceof AccessDeniedError);
  assert.doesNotMatch(error.message, /for A only/);
  assert.equal(proxy.count({ accessKeyId: 'AKIDREFUSED' }), 1, 'the refused identity was sent to AWS');

  // Still refused on the next ask, and the allowed identity is still served from cache.
  proxy.resetCounts();
  expectError((await refused.read([sm(name)]))[0]);
  expectValue((await allowed.read([sm(name)]))[0]);
  assert.deepEqual(proxy.countsByAccessKey(), { AKIDREFUSED: 1 });
});

test('another identity, even an allowed one, asks AWS itself before it is served', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = uniquePrefix('second');
  await createSecret(name, 'v');
  expectValue((await reader(staticIdentity('AKIDFIRST')).read([sm(name)]))[0]);
  expectValue((await reader(staticIdentity('AKIDSECOND')).read([sm(name)]))[0]);
  assert.deepEqual(proxy.countsByAccessKey(), { AKIDFIRST: 1, AKIDSECOND: 1 });
});

test('authorisation expires: after the window the identity asks AWS again, and a revoked one is refused', async (t) => {
  const clock = manualClock();
  const { reader, proxy } = await wire(t, {
    cache: { authTtlMs: 60_000, stageTtlMs: 10_000, now: clock.now },
  });
  const name = uniquePrefix('expiry');
  const created = await createSecret(name, 'v');
  const secrets = reader(staticIdentity('AKIDEXPIRY'));
  const pinned = sm(name, { versionId: created.versionId });
  await secrets.read([pinned]);
  clock.advance(59_000);
  await secrets.read([pinned]);
  assert.equal(proxy.count(), 1, 'a pinned version within the window: no call');
  clock.advance(2_000);
  proxy.refuseAccessKey('AKIDEXPIRY');
  const { error } = expectError((await secrets.read([pinned]))[0]);
  assert.ok(error instanceof AccessDeniedError);
  assert.equal(proxy.count(), 2);
});

test('a stage is re-resolved after its TTL; DescribeSecret within the window lets the value come from cache', async (t) => {
  const clock = manualClock();
  const { reader, proxy } = await wire(t, {
    cache: { authTtlMs: 60_000, stageTtlMs: 10_000, now: clock.now },
  });
  const name = uniquePrefix('stagettl');
  const created = await createSecret(name, 'one');
  const secrets = reader(staticIdentity('AKIDSTAGE'));
  await secrets.read([sm(name)]);
  clock.advance(11_000);
  proxy.resetCounts();
  await secrets.read([sm(name)]);
  assert.deepEqual(proxy.countsByApi(), { GetSecretValue: 1 }, 'stale stage: asked again');

  clock.advance(11_000);
  proxy.resetCounts();
  await secrets.describe(sm(name));
  const [same] = await secrets.read([sm(name)]);
  assert.equal(text(expectValue(same).bytes), 'one');
  assert.deepEqual(proxy.countsByApi(), { DescribeSecret: 1 }, 'unchanged version: value from cache');

  await rotateSecret(name, 'two', created.versionId);
  clock.advance(11_000);
  proxy.resetCounts();
  await secrets.describe(sm(name));
  const [next] = await secrets.read([sm(name)]);
  assert.equal(text(expectValue(next).bytes), 'two');
  assert.deepEqual(proxy.countsByApi(), { DescribeSecret: 1, GetSecretValue: 1 });
});

test('DescribeSecret does not authorise: a fresh identity that only described still reads from AWS', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = uniquePrefix('describeonly');
  await createSecret(name, 'v');
  expectValue((await reader(staticIdentity('AKIDREADER')).read([sm(name)]))[0]);
  const describer = reader(staticIdentity('AKIDDESCRIBER'));
  await describer.describe(sm(name));
  proxy.resetCounts();
  proxy.refuseAccessKey('AKIDDESCRIBER');
  expectError((await describer.read([sm(name)]))[0]);
  assert.equal(proxy.count({ accessKeyId: 'AKIDDESCRIBER' }), 1);
});

test('the value cache is bounded by bytes: an evicted value is read again', async (t) => {
  const { reader, proxy } = await wire(t, { cache: { maxBytes: 4096 } });
  const prefix = uniquePrefix('lru');
  const big = 'x'.repeat(1500);
  await createSecret(`${prefix}/a`, big);
  await createSecret(`${prefix}/b`, big);
  await createSecret(`${prefix}/c`, big);
  const secrets = reader(staticIdentity('AKIDLRU'));
  for (const id of ['a', 'b', 'c']) await secrets.read([sm(`${prefix}/${id}`)]);
  proxy.resetCounts();
  await secrets.read([sm(`${prefix}/c`)]);
  assert.equal(proxy.count(), 0, 'newest still cached');
  await secrets.read([sm(`${prefix}/a`)]);
  assert.equal(proxy.count(), 1, 'oldest evicted');
});
