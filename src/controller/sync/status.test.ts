import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SecretSyncObject } from '../kinds.ts';
import { forceSyncPending, initialDelay, nextStatus } from './status.ts';

const lastSync = Date.parse('2026-11-22T10:00:00Z');

test('forceSyncPending: a request made after the last sync is pending, an older one is not', () => {
  const later = String(Math.floor(lastSync / 1000) + 60);
  const earlier = String(Math.floor(lastSync / 1000) - 60);
  assert.equal(forceSyncPending(later, lastSync), true, 'epoch seconds (date +%s)');
  assert.equal(forceSyncPending(earlier, lastSync), false);
  assert.equal(forceSyncPending(String(lastSync + 1), lastSync), true, 'epoch milliseconds');
  assert.equal(
    forceSyncPending('2026-11-22T10:00:05.000Z v-123', lastSync),
    true,
    "the rotation controller's stamp",
  );
  assert.equal(forceSyncPending('2026-11-22T09:59:55.000Z v-123', lastSync), false);
});

test('forceSyncPending: absent is not pending; a value that is not a time is honoured', () => {
  assert.equal(forceSyncPending(undefined, lastSync), false);
  assert.equal(forceSyncPending('  ', lastSync), false);
  assert.equal(forceSyncPending('please', lastSync), true);
});

const object = (status?: SecretSyncObject['status']): SecretSyncObject => ({
  metadata: { name: 'app', namespace: 'team', generation: 2 },
  spec: { refreshInterval: '1h' },
  ...(status ? { status } : {}),
});
const ready = (lastSyncTime: string): SecretSyncObject['status'] => ({
  observedGeneration: 2,
  lastSyncTime,
  conditions: [{ type: 'Ready', status: 'True', reason: 'Synced', message: '', lastTransitionTime: 'then' }],
});
const at = Date.parse('2026-12-01T12:00:00Z');
const due = (targetExists: boolean) => ({
  now: at,
  random: 0,
  jitter: 0.1,
  targetExists: () => targetExists,
});

test('initialDelay: synced recently with its Secret in place waits for its refresh; anything else runs now', () => {
  const minuteAgo = new Date(at - 60_000).toISOString();
  assert.equal(initialDelay(object(ready(minuteAgo)), due(true)), 59 * 60_000);
  assert.equal(initialDelay(object(ready(minuteAgo)), due(false)), 0, 'its Secret is gone');
  assert.equal(initialDelay(object(), due(true)), 0, 'never synced');
  const older = { ...ready(minuteAgo), observedGeneration: 1 };
  assert.equal(initialDelay(object(older), due(true)), 0, 'its spec changed since');
});

test('nextStatus: a success records versions and keeps the transition time; a repeated failure writes nothing', () => {
  const ok = {
    ok: true,
    targets: [{ name: 'app', action: 'updated' }],
    versions: [{ objectName: 'db', versionId: 'v2' }],
    roleArn: 'arn:aws:iam::111122223333:role/app',
    keys: 2,
  } as const;
  const written = nextStatus(object(ready('2026-12-01T11:00:00Z')), undefined, ok, at);
  assert.equal(written?.lastSyncTime, new Date(at).toISOString());
  assert.deepEqual(written?.syncedVersions, [{ objectName: 'db', versionId: 'v2' }]);
  assert.equal(written?.conditions?.[0]?.lastTransitionTime, 'then', 'still Ready: same transition');

  const failure = { ok: false, reason: 'AccessDenied', message: 'denied', retry: true, targets: [] } as const;
  const failed = nextStatus(object(ready('2026-12-01T11:00:00Z')), undefined, failure, at);
  assert.equal(failed?.conditions?.[0]?.status, 'False');
  assert.equal(failed?.lastSyncTime, '2026-12-01T11:00:00Z', 'the last success is kept');
  assert.equal(nextStatus(object(failed), undefined, failure, at + 1000), undefined, 'no write per retry');
});
