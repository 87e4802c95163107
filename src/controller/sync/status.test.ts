import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forceSyncPending } from './status.ts';

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
