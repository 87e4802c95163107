import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { silentLogger } from '../../core/log.ts';
import type { SecretChange, SecretObservation } from './detector.ts';
import type { RolloutKind } from './kinds.ts';
import type { PermissionSubject } from './permissions.ts';
import { createSyncGate, forceSyncPatch, type ResyncRequest } from './sync-gate.ts';
import {
  clusterSecretSyncObject,
  fakeInformer,
  fakePermissions,
  managedSecretObject,
  secretSyncObject,
  workloadObject,
} from './test-doubles.ts';
import type { SourceRef } from './usage.ts';
import { createUsageIndex } from './usage-index.ts';
import { type Dependency, parseWorkload } from './workloads.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/db-AbCdEf';
const observation = (version: string): SecretObservation => ({
  region: 'us-east-1',
  arn,
  name: 'team-a/db',
  stages: new Map([['AWSCURRENT', version]]),
  deleted: false,
});
const dependency = (versionId: string): Dependency => ({
  key: arn,
  name: 'team-a/db',
  versionId,
  via: ['x'],
});

function spcObject(namespace: string, name: string, target: string): KubernetesObject {
  return {
    apiVersion: 'secrets-store.csi.x-k8s.io/v1',
    kind: 'SecretProviderClass',
    metadata: {
      name,
      namespace,
      resourceVersion: '1',
      annotations: { 'smk.dev/sync': 'true', 'smk.dev/service-account': 'app' },
    },
    spec: {
      provider: 'aws',
      secretObjects: [{ secretName: target, type: 'Opaque', data: [{ objectName: 'VALUE', key: 'VALUE' }] }],
      parameters: {
        objects: '- objectName: "team-a/db"\n  objectType: "secretsmanager"\n  objectAlias: "VALUE"\n',
      },
    },
  } as KubernetesObject;
}

function setup(
  options: {
    syncs?: KubernetesObject[];
    spcs?: KubernetesObject[];
    clusterSyncs?: KubernetesObject[];
    secrets?: KubernetesObject[];
  },
  allowed: boolean | ((subject: PermissionSubject) => boolean) = true,
) {
  let clock = 1_000_000;
  const asked: { source: SourceRef; request: ResyncRequest }[] = [];
  const secrets = fakeInformer(options.secrets);
  const syncs = fakeInformer(options.syncs);
  const permissions = fakePermissions(typeof allowed === 'function' ? allowed : () => allowed);
  const index = createUsageIndex({
    informers: {
      syncs,
      managedSecrets: secrets,
      spcs: fakeInformer(options.spcs),
      clusterSyncs: fakeInformer(options.clusterSyncs),
      mappings: undefined,
      workloads: new Map<RolloutKind, ReturnType<typeof fakeInformer>>(),
    },
    defaultRegion: 'us-east-1',
    observed: () => observation('v2'),
    permissions,
  });
  let failing = false;
  const gate = createSyncGate({
    index,
    permissions,
    resync: async (source, request) => {
      asked.push({ source, request });
      if (failing) throw new Error('API down');
    },
    logger: silentLogger(),
    resyncRetryMs: 30_000,
    now: () => clock,
  });
  return {
    gate,
    asked,
    secrets,
    syncs,
    advance: (ms: number) => {
      clock += ms;
    },
    fail: (value: boolean) => {
      failing = value;
    },
  };
}

const reader = parseWorkload('Deployment', workloadObject('team-a', 'web', { secretNames: ['db-env'] }));

test('a SecretSync is behind until its status records the new version for every file the secret produces', () => {
  const { gate, syncs } = setup({
    syncs: [secretSyncObject('team-a', 'db', 'team-a/db', 'db-env', 'v1')],
    secrets: [managedSecretObject('team-a', 'db-env', 'SecretSync/db')],
  });
  assert.deepEqual(
    gate.unsyncedSources(reader, dependency('v2')).map((owner) => owner.source.name),
    ['db'],
  );
  syncs.set(secretSyncObject('team-a', 'db', 'team-a/db', 'db-env', 'v2'));
  assert.deepEqual(gate.unsyncedSources(reader, dependency('v2')), []);
  assert.deepEqual(
    gate.unsyncedSources(reader, { ...dependency('v2'), key: 'arn:other', name: 'other' }),
    [],
    'a Secret that does not carry the secret never holds a rollout',
  );
});

test("a SecretProviderClass's Secret: its smk.dev/versions annotation, else a rewrite after the change was seen", () => {
  const annotated = setup({
    spcs: [spcObject('team-a', 'db', 'db-env')],
    secrets: [
      managedSecretObject('team-a', 'db-env', 'SecretProviderClass/db', {
        'smk.dev/versions': JSON.stringify({ VALUE: 'v2' }),
      }),
    ],
  });
  assert.deepEqual(annotated.gate.unsyncedSources(reader, dependency('v2')), []);
  assert.equal(annotated.gate.unsyncedSources(reader, dependency('v3')).length, 1);

  const bare = setup({
    spcs: [spcObject('team-a', 'db', 'db-env')],
    secrets: [managedSecretObject('team-a', 'db-env', 'SecretProviderClass/db', {}, '10')],
  });
  assert.equal(bare.gate.unsyncedSources(reader, dependency('v2')).length, 1, 'first look: baseline taken');
  assert.equal(bare.gate.unsyncedSources(reader, dependency('v2')).length, 1, 'not rewritten yet');
  bare.secrets.set(managedSecretObject('team-a', 'db-env', 'SecretProviderClass/db', {}, '11'));
  assert.deepEqual(bare.gate.unsyncedSources(reader, dependency('v2')), [], 'rewritten since');
});

test('a source is asked to re-sync once per version per retry window, and again at once after a failed ask', async () => {
  const { gate, asked, advance, fail } = setup({});
  const source: SourceRef = { kind: 'SecretSync', namespace: 'team-a', name: 'db' };
  await gate.askResync(source, 'v2');
  await gate.askResync(source, 'v2');
  assert.equal(asked.length, 1);
  await gate.askResync(source, 'v3');
  assert.equal(asked.length, 2, 'another version asks at once');
  advance(30_000);
  await gate.askResync(source, 'v2');
  assert.equal(asked.length, 3, 'still waiting after the window: asked again');
  fail(true);
  await gate.askResync(source, 'v4');
  fail(false);
  await gate.askResync(source, 'v4');
  assert.equal(asked.length, 5, 'a failed ask is not remembered');
});

test('on a change: each source reading the secret re-syncs, unless its identity may not describe it', async () => {
  const change: SecretChange = {
    secret: observation('v2'),
    previous: observation('v1'),
    source: 'event',
    reason: 'PutSecretValue',
    detectedAt: 0,
    changedAfter: undefined,
  };
  const allowed = setup({ syncs: [secretSyncObject('team-a', 'db', 'team-a/db', 'db-env', 'v1')] });
  await allowed.gate.resyncSink.secretChanged(change);
  assert.deepEqual(
    allowed.asked.map(({ source, request }) => `${source.name}@${request.versionId}`),
    ['db@v2'],
  );
  await allowed.gate.resyncSink.secretChanged({ ...change, previous: undefined });
  assert.equal(allowed.asked.length, 1, 'a first observation (baseline) asks nothing');

  const refused = setup({ syncs: [secretSyncObject('team-a', 'db', 'team-a/db', 'db-env', 'v1')] }, false);
  await refused.gate.resyncSink.secretChanged(change);
  assert.deepEqual(refused.asked, [], 'the stamp would name the version to a namespace that may not know it');
});

test('syncedStages: what the sources last synced; a source that differs from AWS wins', () => {
  const { gate } = setup({
    syncs: [
      secretSyncObject('team-a', 'a', 'team-a/db', 'a-env', 'v2'),
      secretSyncObject('team-a', 'b', 'team-a/db', 'b-env', 'v1'),
    ],
  });
  assert.deepEqual([...gate.syncedStages(observation('v2'))], [['AWSCURRENT', 'v1']]);
});

test('the default re-sync stamps smk.dev/force-sync with the time and version on the right API', () => {
  const { ref, patch } = forceSyncPatch(
    { kind: 'SecretProviderClass', namespace: 'team-a', name: 'db' },
    { versionId: 'v2', at: Date.UTC(2026, 0, 1) },
  );
  assert.equal(ref.apiVersion, 'secrets-store.csi.x-k8s.io/v1');
  assert.deepEqual(patch, {
    metadata: { annotations: { 'smk.dev/force-sync': '2026-01-01T00:00:00.000Z v2' } },
  });
});

test("a ClusterSecretSync's Secret in a namespace is behind until that namespace's status entry records the new version", () => {
  const secrets = ['team-a', 'team-b', 'left'].map((namespace) =>
    managedSecretObject(namespace, 'db-env', 'ClusterSecretSync/shared'),
  );
  const { gate } = setup({
    clusterSyncs: [
      clusterSecretSyncObject('shared', 'team-a/db', 'db-env', { 'team-a': 'v1', 'team-b': 'v2' }),
    ],
    secrets,
  });
  const readerIn = (namespace: string) =>
    parseWorkload('Deployment', workloadObject(namespace, 'web', { secretNames: ['db-env'] }));
  assert.deepEqual(
    gate.unsyncedSources(readerIn('team-a'), dependency('v2')).map(({ source }) => source),
    [{ kind: 'ClusterSecretSync', namespace: 'team-a', name: 'shared' }],
    "team-b's entry does not count for team-a",
  );
  assert.deepEqual(gate.unsyncedSources(readerIn('team-b'), dependency('v2')), []);
  assert.deepEqual(
    gate.unsyncedSources(readerIn('left'), dependency('v2')),
    [],
    'a Secret left in a namespace the status no longer lists is not synced any more: nothing to wait for',
  );

  const failed = setup({
    clusterSyncs: [clusterSecretSyncObject('shared', 'team-a/db', 'db-env', { 'team-a': undefined })],
    secrets,
  });
  assert.equal(
    failed.gate.unsyncedSources(readerIn('team-a'), dependency('v2')).length,
    1,
    'an entry without versions (its sync failed) is behind, never "rewritten since"',
  );
});

test("on a change: a ClusterSecretSync is asked once, as the cluster-scoped object, when one namespace's identity may describe the secret", async () => {
  const change: SecretChange = {
    secret: observation('v2'),
    previous: observation('v1'),
    source: 'event',
    reason: 'PutSecretValue',
    detectedAt: 0,
    changedAfter: undefined,
  };
  const object = clusterSecretSyncObject('shared', 'team-a/db', 'db-env', {
    'team-a': 'v1',
    'team-b': 'v1',
    'team-c': 'v1',
  });
  const questions: string[] = [];
  const onlyB = setup({ clusterSyncs: [object] }, (subject) => {
    questions.push(`${subject.namespace}/${subject.serviceAccountName}`);
    return subject.namespace === 'team-b';
  });
  await onlyB.gate.resyncSink.secretChanged(change);
  assert.deepEqual(
    onlyB.asked.map(({ source }) => source),
    [{ kind: 'ClusterSecretSync', namespace: '', name: 'shared' }],
  );
  assert.deepEqual(
    questions,
    ['team-a/reader', 'team-b/reader'],
    'each namespace as its own account, until one may',
  );

  const none = setup({ clusterSyncs: [object] }, false);
  await none.gate.resyncSink.secretChanged(change);
  assert.deepEqual(none.asked, [], 'no namespace may describe it: no stamp naming the version');

  const named: string[] = [];
  const modeB = setup(
    {
      clusterSyncs: [
        clusterSecretSyncObject(
          'shared',
          'team-a/db',
          'db-env',
          { 'team-a': 'v1', 'team-b': 'v1' },
          'platform',
        ),
      ],
    },
    (subject) => {
      named.push(`${subject.namespace}/${subject.serviceAccountName}`);
      return subject.namespace === 'platform';
    },
  );
  await modeB.gate.resyncSink.secretChanged(change);
  assert.equal(modeB.asked.length, 1);
  assert.deepEqual(named, ['platform/reader'], 'mode (b): the identity the administrator named is asked');
});

test("a ClusterSecretSync run's re-sync goes to the cluster-scoped object, once per version for all its namespaces", async () => {
  const { gate, asked } = setup({});
  await gate.askResync({ kind: 'ClusterSecretSync', namespace: 'team-a', name: 'shared' }, 'v2');
  await gate.askResync({ kind: 'ClusterSecretSync', namespace: 'team-b', name: 'shared' }, 'v2');
  assert.deepEqual(
    asked.map(({ source }) => source),
    [{ kind: 'ClusterSecretSync', namespace: '', name: 'shared' }],
  );
  const { ref } = forceSyncPatch(
    { kind: 'ClusterSecretSync', namespace: 'team-a', name: 'shared' },
    { versionId: 'v2', at: 0 },
  );
  assert.deepEqual(ref, {
    apiVersion: 'smk.dev/v1alpha1',
    kind: 'ClusterSecretSync',
    namespace: '',
    name: 'shared',
  });
});

test('syncedStages reads each namespace of a ClusterSecretSync: one behind wins', () => {
  const { gate } = setup({
    clusterSyncs: [
      clusterSecretSyncObject('shared', 'team-a/db', 'db-env', { 'team-a': 'v2', 'team-b': 'v1' }),
    ],
  });
  assert.deepEqual([...gate.syncedStages(observation('v2'))], [['AWSCURRENT', 'v1']]);
});
