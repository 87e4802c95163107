import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { silentLogger } from '../../core/log.ts';
import type { SecretChange, SecretObservation } from './detector.ts';
import type { RolloutKind } from './kinds.ts';
import type { StatusUpdate } from './mapping-status.ts';
import { createRollouts } from './rollout.ts';
import {
  fakeEvents,
  fakeInformer,
  fakeObjects,
  fakePermissions,
  fakeQueue,
  workloadObject,
} from './test-doubles.ts';
import type { SourceRef, SourceUsage } from './usage.ts';
import { createUsageIndex } from './usage-index.ts';
import type { Dependency, Workload } from './workloads.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/db-AbCdEf';
const seen = (version: string): SecretObservation => ({
  region: 'us-east-1',
  arn,
  name: 'team-a/db',
  stages: new Map([['AWSCURRENT', version]]),
  deleted: false,
});

function setup(options: {
  object?: KubernetesObject;
  version?: string;
  unsynced?: boolean;
  leading?: boolean;
}) {
  const object =
    options.object ?? workloadObject('team-a', 'web', { annotations: { 'smk.dev/rollout-on': 'team-a/db' } });
  const store = new Map([[`${object.kind}/team-a/${object.metadata?.name}`, object]]);
  const objects = fakeObjects(store);
  const events = fakeEvents();
  const queue = fakeQueue();
  const resyncs: string[] = [];
  const writes: StatusUpdate[] = [];
  const workloads = fakeInformer([object]);
  let version = options.version ?? 'v1';
  let clock = Date.UTC(2026, 0, 1);
  const index = createUsageIndex({
    informers: {
      syncs: fakeInformer(),
      managedSecrets: fakeInformer(),
      spcs: undefined,
      clusterSyncs: undefined,
      mappings: undefined,
      workloads: new Map<RolloutKind, ReturnType<typeof fakeInformer>>([['Deployment', workloads]]),
    },
    defaultRegion: 'us-east-1',
    observed: () => seen(version),
    permissions: fakePermissions(() => true),
  });
  const owner: SourceUsage = {
    source: { kind: 'SecretSync', namespace: 'team-a', name: 'db' },
    uses: [],
    targets: ['db-env'],
    serviceAccountName: 'app',
    identityNamespace: 'team-a',
  };
  const rollout = createRollouts({
    index,
    gate: {
      unsyncedSources: (_workload: Workload, _dependency: Dependency) => (options.unsynced ? [owner] : []),
      askResync: async (source: SourceRef, versionId: string) => {
        resyncs.push(`${source.name}@${versionId}`);
      },
    },
    statuses: {
      write: async (_mapping, update) => {
        writes.push(update);
      },
      showIfHidden: () => {},
    },
    objects,
    events,
    queue,
    logger: silentLogger(),
    leading: () => options.leading ?? true,
    now: () => clock,
    debounceMs: 500,
    syncWaitMs: 120_000,
  });
  return {
    rollout,
    objects,
    events,
    queue,
    resyncs,
    store,
    setVersion: (next: string) => {
      version = next;
    },
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

const key = 'Deployment/team-a/web';

test('first sight: adopted (the versions recorded, no restart)', async () => {
  const { rollout, objects } = setup({});
  await rollout.reconcile(key);
  assert.equal(objects.patches.length, 1);
  const { ref, patch } = objects.patches[0] ?? assert.fail();
  assert.deepEqual(ref, { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'team-a', name: 'web' });
  assert.deepEqual(patch, {
    metadata: {
      resourceVersion: '1',
      annotations: { 'smk.dev/rolled-versions': JSON.stringify({ [arn]: 'v1' }) },
    },
  });
});

test('a recorded version moved: one restart patch (record + pod template), an event naming the secret', async () => {
  const object = workloadObject('team-a', 'web', {
    annotations: {
      'smk.dev/rollout-on': 'team-a/db',
      'smk.dev/rolled-versions': JSON.stringify({ [arn]: 'v1' }),
    },
  });
  const { rollout, objects, events } = setup({ object, version: 'v2' });
  await rollout.reconcile(key);
  const patch = objects.patches[0]?.patch as {
    metadata: { annotations: Record<string, string> };
    spec: { template: { metadata: { annotations: Record<string, string> } } };
  };
  assert.equal(patch.metadata.annotations['smk.dev/rolled-versions'], JSON.stringify({ [arn]: 'v2' }));
  assert.equal(patch.spec.template.metadata.annotations['smk.dev/restartedAt'], '2026-01-01T00:00:00.000Z');
  assert.deepEqual(
    events.recorded.map((e) => `${e.type}/${e.reason}`),
    ['Normal/RolloutRestarted'],
  );
  assert.match(
    events.recorded[0]?.message ?? '',
    /team-a\/db \(version v2, via annotation smk.dev\/rollout-on\)/,
  );
});

test('never onto the old value: a synced Secret behind holds the rollout, asks a re-sync, warns after syncWaitMs', async () => {
  const object = workloadObject('team-a', 'web', {
    annotations: {
      'smk.dev/rollout-on': 'team-a/db',
      'smk.dev/rolled-versions': JSON.stringify({ [arn]: 'v1' }),
    },
  });
  const { rollout, objects, events, queue, resyncs, advance } = setup({
    object,
    version: 'v2',
    unsynced: true,
  });
  await rollout.reconcile(key);
  assert.equal(objects.patches.length, 0);
  assert.deepEqual(resyncs, ['db@v2']);
  assert.equal(queue.delayed.length, 1);
  assert.equal(events.recorded.length, 0);
  advance(120_000);
  await rollout.reconcile(key);
  assert.deepEqual(
    events.recorded.map((e) => `${e.type}/${e.reason}`),
    ['Warning/WaitingForSync'],
  );
  assert.equal(queue.delayed.at(-1)?.ms, 30_000);
  assert.equal(objects.patches.length, 0, 'still no restart');
});

test('gone or invalid: nothing patched; an invalid opt-in is an event on the workload', async () => {
  const { rollout, objects } = setup({});
  await rollout.reconcile('Deployment/team-a/missing');
  await rollout.reconcile('Unknown/team-a/web');
  assert.equal(objects.patches.length, 0);

  const invalid = setup({
    object: workloadObject('team-a', 'web', { annotations: { 'smk.dev/rollout-on-sync': 'maybe' } }),
  });
  await invalid.rollout.reconcile(key);
  assert.equal(invalid.objects.patches.length, 0);
  assert.deepEqual(
    invalid.events.recorded.map((e) => `${e.type}/${e.reason}`),
    ['Warning/InvalidRolloutAnnotation'],
  );
});

test('on a change, each workload following the secret is queued after the debounce; a baseline at once', () => {
  const { rollout, queue } = setup({});
  const change: SecretChange = {
    secret: seen('v2'),
    previous: seen('v1'),
    source: 'event',
    reason: 'PutSecretValue',
    detectedAt: 0,
    changedAfter: undefined,
  };
  void rollout.rolloutSink.secretChanged(change);
  assert.deepEqual(queue.delayed, [{ key, ms: 500 }]);
  void rollout.rolloutSink.secretChanged({ ...change, previous: undefined });
  assert.deepEqual(queue.added, [key]);
  void rollout.rolloutSink.secretChanged({ ...change, secret: { ...seen('v2'), arn: 'arn:other' } });
  assert.equal(queue.added.length + queue.delayed.length, 2, 'a secret it does not follow queues nothing');
});

test('only workloads that follow something are queued when seen', () => {
  const { rollout, queue } = setup({});
  rollout.seen('Deployment', workloadObject('team-a', 'plain'));
  rollout.seen('Deployment', workloadObject('team-a', 'web', { annotations: { 'smk.dev/rollout-on': 'x' } }));
  assert.deepEqual(queue.added, [key]);
});

test("a named Secret's data changed: the workloads naming it in that namespace are queued after the debounce", () => {
  const object = workloadObject('team-a', 'web', { annotations: { 'smk.dev/reload-secrets': 'app-env' } });
  const { rollout, queue } = setup({ object });
  rollout.referenceChanged('Secret', 'team-a', 'app-env', 'changed');
  rollout.referenceChanged('Secret', 'team-b', 'app-env', 'changed');
  rollout.referenceChanged('ConfigMap', 'team-a', 'app-env', 'changed');
  assert.deepEqual(queue.delayed, [{ key, ms: 500 }]);
  rollout.referenceChanged('Secret', 'team-a', 'app-env', 'new');
  assert.deepEqual(queue.added, [key], 'a new one: at once (adoption)');
  rollout.leadershipTaken();
  assert.deepEqual(queue.added, [key, key]);
});
