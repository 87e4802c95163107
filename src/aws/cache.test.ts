import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CachedSecret, type CacheSlot, SecretCache } from './cache.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf';
const secret = (versionId: string, size = 4): CachedSecret => ({
  arn,
  name: 'db',
  versionId,
  bytes: new Uint8Array(size),
  binary: false,
});
const slot = (identityKey: string, selector = 'stage:AWSCURRENT', pinned = false): CacheSlot => ({
  identityKey,
  objectType: 'secretsmanager',
  region: 'us-east-1',
  id: 'db',
  selector,
  pinned,
});

function setup() {
  let now = 0;
  const cache = new SecretCache({ authTtlMs: 1_000, stageTtlMs: 100, now: () => now });
  return { cache, advance: (ms: number) => (now += ms) };
}

test('a value is served to the identity that read it, not to another', () => {
  const { cache } = setup();
  cache.store(slot('alice'), secret('v1'));
  assert.equal(cache.get(slot('alice'))?.versionId, 'v1');
  assert.equal(cache.get(slot('bob')), undefined);
  assert.ok(cache.isAuthorised('alice', arn));
  assert.ok(!cache.isAuthorised('bob', arn));
});

test('a stage resolution lives stageTtl; a pinned version lives as long as the authorisation', () => {
  const { cache, advance } = setup();
  cache.store(slot('alice'), secret('v1'));
  cache.store(slot('alice', 'version:v1', true), secret('v1'));
  advance(100);
  assert.equal(cache.get(slot('alice')), undefined, 'stage stale');
  assert.equal(cache.get(slot('alice', 'version:v1', true))?.versionId, 'v1');
  advance(900);
  assert.equal(cache.get(slot('alice', 'version:v1', true)), undefined, 'authorisation expired');
});

test('learn() moves a stage without authorising anyone', () => {
  const { cache, advance } = setup();
  cache.store(slot('alice', 'version:v2', true), secret('v2'));
  cache.store(slot('alice'), secret('v1'));
  advance(150);
  cache.learn({ identityKey: 'alice', objectType: 'secretsmanager', region: 'us-east-1', id: 'db' }, arn, [
    ['stage:AWSCURRENT', 'v2'],
  ]);
  assert.equal(cache.get(slot('alice'))?.versionId, 'v2', 'v2 cached and alice authorised');
  cache.learn({ identityKey: 'bob', objectType: 'secretsmanager', region: 'us-east-1', id: 'db' }, arn, [
    ['stage:AWSCURRENT', 'v2'],
  ]);
  assert.equal(cache.get(slot('bob')), undefined, 'describing grants bob nothing');
});

test('forget() drops the identity authorisation for the secret', () => {
  const { cache } = setup();
  cache.store(slot('alice'), secret('v1'));
  cache.store(slot('alice', 'version:v1', true), secret('v1'));
  cache.forget(slot('alice'));
  assert.equal(cache.get(slot('alice', 'version:v1', true)), undefined);
});

test('values are bounded by bytes (least recently used go first)', () => {
  const cache = new SecretCache({ maxBytes: 3 * (1000 + 300) });
  for (const version of ['a', 'b', 'c', 'd']) {
    cache.store(slot('alice', `version:${version}`, true), secret(version, 1000));
  }
  assert.ok(cache.bytes <= 3 * 1300);
  assert.equal(cache.get(slot('alice', 'version:a', true)), undefined);
  assert.equal(cache.get(slot('alice', 'version:d', true))?.versionId, 'd');
});

test('flight() shares one call between concurrent asks and forgets it after', async () => {
  const { cache } = setup();
  let calls = 0;
  const work = async (): Promise<number> => {
    calls += 1;
    await new Promise((resolve) => setTimeout(resolve, 10));
    return calls;
  };
  const [a, b] = await Promise.all([cache.flight('k', work), cache.flight('k', work)]);
  assert.equal(a, 1);
  assert.equal(b, 1);
  assert.ok(!cache.inFlight('k'));
  assert.equal(await cache.flight('k', work), 2);
});

test('notes expire', () => {
  const { cache, advance } = setup();
  cache.setNote('alice', 'batch denied', 50);
  assert.ok(cache.hasNote('alice', 'batch denied'));
  assert.ok(!cache.hasNote('bob', 'batch denied'));
  advance(50);
  assert.ok(!cache.hasNote('alice', 'batch denied'));
});

test('after stagesMoved, every identity reads a stage again; pinned versions stay cached', () => {
  const { cache, advance } = setup();
  cache.store(slot('alice'), secret('v1'));
  cache.store(slot('bob'), secret('v1'));
  cache.store(slot('alice', 'version:v1', true), secret('v1'));
  advance(1);
  cache.stagesMoved('us-east-1', arn);
  assert.equal(cache.get(slot('alice')), undefined);
  assert.equal(cache.get(slot('bob')), undefined);
  assert.equal(cache.get(slot('alice', 'version:v1', true))?.versionId, 'v1');
  advance(1);
  cache.store(slot('alice'), secret('v2'));
  assert.equal(cache.get(slot('alice'))?.versionId, 'v2', 'a read after the move is served again');
  cache.stagesMoved('eu-west-1', arn);
  assert.equal(cache.get(slot('alice'))?.versionId, 'v2', 'another region is another secret');
});
