import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { silentLogger } from '../../core/log.ts';
import type { Objects } from '../../kube/apply.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { ListWatchSource, WatchEventType } from '../../kube/informer.ts';
import type { ResourceKind } from '../../kube/kinds.ts';
import type { LeaseStore } from '../../kube/lease.ts';
import { createManager } from '../../kube/manager.ts';
import type { IdentityResolver } from '../identity.ts';
import type { SecretSyncObject } from '../kinds.ts';
import { addSyncController } from './controller.ts';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

const now = Date.parse('2026-12-01T12:00:00Z');

function secretSync(name: string, status?: SecretSyncObject['status']): SecretSyncObject {
  return {
    apiVersion: 'smk.dev/v1alpha1',
    kind: 'SecretSync',
    metadata: { name, namespace: 'team', generation: 1, resourceVersion: '1' },
    spec: { refreshInterval: '1h' },
    ...(status ? { status } : {}),
  };
}

const syncedMinuteAgo: SecretSyncObject['status'] = {
  observedGeneration: 1,
  lastSyncTime: new Date(now - 60_000).toISOString(),
  conditions: [{ type: 'Ready', status: 'True', reason: 'Synced', message: '', lastTransitionTime: '' }],
};

function managedSecret(name: string, owner: string, resourceVersion: string): V1Secret {
  return {
    metadata: {
      name,
      namespace: 'team',
      resourceVersion,
      labels: { 'app.kubernetes.io/managed-by': 'smk' },
      annotations: { 'smk.dev/owner': owner },
    },
  };
}

/** Lists by plural; the test sends watch events to any open stream. */
function fakeApi(lists: Record<string, unknown[]>) {
  const streams = new Map<string, (type: WatchEventType, object: unknown) => void>();
  const sourceFor = <T>(kind: ResourceKind<T>): ListWatchSource<T> => ({
    list: async () => ({ items: structuredClone(lists[kind.plural] ?? []) as T[], resourceVersion: '1' }),
    async watch(_from, onEvent) {
      streams.set(kind.plural, onEvent as (type: WatchEventType, object: unknown) => void);
      return { abort: () => streams.delete(kind.plural) };
    },
  });
  return {
    sourceFor,
    send(plural: string, type: WatchEventType, object: unknown) {
      streams.get(plural)?.(type, object);
    },
  };
}

/** A Lease another replica holds for good: this one stays a standby, so queued keys stay queued. */
const heldElsewhere: LeaseStore = {
  get: async () => ({
    holderIdentity: 'other',
    leaseDurationSeconds: 3600,
    leaseTransitions: 0,
    renewTime: new Date(),
    resourceVersion: '1',
  }),
  create: async () => false,
  update: async () => false,
};

function standby(lists: Record<string, unknown[]>) {
  const api = fakeApi(lists);
  const manager = createManager({
    kubeConfig: new KubeConfig(),
    logger: silentLogger(),
    sourceFor: api.sourceFor,
    leaderElection: { namespace: 'smk', name: 'smk-controller', identity: 'me' },
    leaseStore: heldElsewhere,
  });
  const sync = addSyncController(manager, {
    identities: {} as IdentityResolver,
    defaultRegion: 'us-east-1',
    secretProviderClasses: false,
    objects: {} as Objects,
    events: { record: async () => {} } as EventRecorder,
    now: () => now,
    random: () => 0.5,
  });
  return { manager, sync, api };
}

describe('sync controller wiring', () => {
  it('at start queues what is due now; one synced recently whose Secret exists waits for its refresh', async () => {
    const { manager, sync } = standby({
      secretsyncs: [
        secretSync('recent', syncedMinuteAgo),
        secretSync('new'),
        secretSync('lost-secret', syncedMinuteAgo),
      ],
      secrets: [managedSecret('recent', 'SecretSync/recent', '5')],
    });
    await manager.start();
    assert.equal(sync.queueDepth, 2, 'new and lost-secret now; recent at its next refresh');
    assert.equal(manager.leading, false, 'a standby queues but does not sync');
    await manager.stop(100);
  });

  it('queues the owner of a managed Secret someone else changed or deleted', async () => {
    const { manager, sync, api } = standby({
      secretsyncs: [secretSync('recent', syncedMinuteAgo)],
      secrets: [managedSecret('recent', 'SecretSync/recent', '5')],
    });
    await manager.start();
    await settle();
    assert.equal(sync.queueDepth, 0);
    api.send('secrets', 'MODIFIED', managedSecret('recent', 'SecretSync/recent', '6'));
    assert.equal(sync.queueDepth, 1, 'drift repaired by a sync of its owner');
    await manager.stop(100);
  });

  it('queues a SecretSync whose spec or force-sync annotation changed, not one whose status did', async () => {
    const { manager, sync, api } = standby({
      secretsyncs: [secretSync('recent', syncedMinuteAgo)],
      secrets: [managedSecret('recent', 'SecretSync/recent', '5')],
    });
    await manager.start();
    await settle();
    const statusOnly = secretSync('recent', {
      ...syncedMinuteAgo,
      lastSyncTime: new Date(now).toISOString(),
    });
    statusOnly.metadata.resourceVersion = '2';
    api.send('secretsyncs', 'MODIFIED', statusOnly);
    assert.equal(sync.queueDepth, 0, 'a status write is no news');
    const forced = secretSync('recent', syncedMinuteAgo);
    forced.metadata.resourceVersion = '3';
    forced.metadata.annotations = { 'smk.dev/force-sync': String(now / 1000) };
    api.send('secretsyncs', 'MODIFIED', forced);
    assert.equal(sync.queueDepth, 1);
    await manager.stop(100);
  });
});
