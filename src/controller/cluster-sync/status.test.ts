import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SyncOutcome } from '../sync/sync.ts';
import { clusterSyncStatus, namespaceStatuses } from './status.ts';

const ok: SyncOutcome = {
  ok: true,
  targets: [{ name: 'db', action: 'created' }],
  versions: [{ objectName: 'db', versionId: 'v1' }],
  roleArn: 'arn:aws:iam::1:role/a',
  keys: 2,
};
const refused: SyncOutcome = {
  ok: false,
  reason: 'SecretNotOwned',
  message: 'Secret c/db exists and was not created by smk; not overwriting it',
  retry: true,
  targets: [],
};
const now = Date.parse('2026-01-01T00:00:00Z');

describe('clusterSyncStatus', () => {
  it('one entry per namespace, counts, and Ready only when every namespace is', () => {
    const status = clusterSyncStatus(
      {
        generation: 2,
        outcomes: new Map<string, SyncOutcome>([
          ['c', refused],
          ['a', ok],
        ]),
        missing: ['zz'],
        truncated: 0,
      },
      undefined,
      now,
    );
    assert.deepEqual(
      status.namespaces.map((entry) => [entry.namespace, entry.ready, entry.reason]),
      [
        ['a', true, 'Synced'],
        ['c', false, 'SecretNotOwned'],
        ['zz', false, 'NamespaceNotFound'],
      ],
    );
    assert.deepEqual(status.namespaces[0]?.syncedVersions, [{ objectName: 'db', versionId: 'v1' }]);
    assert.deepEqual([status.namespaceCount, status.readyCount, status.failedCount], [3, 1, 2]);
    const ready = status.conditions[0];
    assert.equal(ready?.status, 'False');
    assert.equal(ready?.reason, 'SecretNotOwned');
    assert.match(ready?.message ?? '', /2 of 3 namespace\(s\) not synced; first: c: Secret c\/db exists/);
    assert.equal(ready?.observedGeneration, 2);
  });

  it('True when all synced; the transition time holds while the status does', () => {
    const first = clusterSyncStatus(
      { generation: 1, outcomes: new Map([['a', ok]]), missing: [], truncated: 0 },
      undefined,
      now,
    );
    assert.equal(first.conditions[0]?.status, 'True');
    const later = clusterSyncStatus(
      { generation: 1, outcomes: new Map([['a', ok]]), missing: [], truncated: 0 },
      first.conditions[0],
      now + 60_000,
    );
    assert.equal(later.conditions[0]?.lastTransitionTime, first.conditions[0]?.lastTransitionTime);
    assert.equal(later.lastSyncTime, new Date(now + 60_000).toISOString());
  });

  it('an invalid spec and a truncated selection are not Ready', () => {
    const invalid = clusterSyncStatus(
      {
        generation: 1,
        outcomes: new Map(),
        missing: [],
        truncated: 0,
        invalid: { reason: 'InvalidSpec', message: 'ClusterSecretSync db: spec: …' },
      },
      undefined,
      now,
    );
    assert.equal(invalid.conditions[0]?.reason, 'InvalidSpec');
    const truncated = clusterSyncStatus(
      { generation: 1, outcomes: new Map([['a', ok]]), missing: [], truncated: 4 },
      undefined,
      now,
    );
    assert.equal(truncated.conditions[0]?.reason, 'TooManyNamespaces');
  });
});

describe('namespaceStatuses', () => {
  it('reads back what clusterSyncStatus wrote: each namespace, in order, with the versions its Secret holds', () => {
    const status = clusterSyncStatus(
      {
        generation: 1,
        outcomes: new Map<string, SyncOutcome>([
          ['team-b', ok],
          ['team-a', refused],
        ]),
        missing: [],
        truncated: 0,
      },
      undefined,
      0,
    );
    const read = namespaceStatuses({ status });
    assert.deepEqual([...read.keys()], ['team-a', 'team-b']);
    assert.deepEqual([...(read.get('team-b')?.versions ?? [])], [['db', 'v1']]);
    assert.deepEqual(
      [...(read.get('team-a')?.versions ?? [])],
      [],
      'a namespace that did not sync holds no version',
    );
  });

  it('nothing for an object without a status, or with one this code did not write', () => {
    assert.equal(namespaceStatuses(undefined).size, 0);
    assert.equal(namespaceStatuses({ metadata: {} }).size, 0);
    assert.equal(
      namespaceStatuses({ status: { namespaces: [{ namespace: 'a', syncedVersions: [{ objectName: 1 }] }] } })
        .size,
      0,
    );
  });
});
