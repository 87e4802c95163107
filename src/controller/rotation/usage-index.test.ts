import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { SecretObservation, Watch } from './detector.ts';
import type { RolloutKind } from './kinds.ts';
import type { PermissionSubject } from './permissions.ts';
import {
  clusterSecretSyncObject,
  fakeInformer,
  fakePermissions,
  managedSecretObject,
  secretSyncObject,
  workloadObject,
} from './test-doubles.ts';
import { createUsageIndex } from './usage-index.ts';
import { parseWorkload } from './workloads.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/db-AbCdEf';
const observation = (version: string, deleted = false): SecretObservation => ({
  region: 'us-east-1',
  arn,
  name: 'team-a/db',
  stages: new Map([['AWSCURRENT', version]]),
  deleted,
});

function mappingObject(namespace: string, name: string, labels: Record<string, string>): KubernetesObject {
  return {
    apiVersion: 'awssecretsoperator.secretoperator/v1',
    kind: 'SecretsRotationMapping',
    metadata: { name, namespace, uid: `uid-${name}`, generation: 1, resourceVersion: '1' },
    spec: { SecretID: 'team-a/db', Labels: labels },
  } as KubernetesObject;
}

function setup(options: {
  workloads?: KubernetesObject[];
  syncs?: KubernetesObject[];
  clusterSyncs?: KubernetesObject[];
  secrets?: KubernetesObject[];
  mappings?: KubernetesObject[];
  allowed?: (subject: PermissionSubject) => boolean;
  seen?: (watch: Watch) => SecretObservation | undefined;
}) {
  const asked: PermissionSubject[] = [];
  const allowed = options.allowed ?? (() => true);
  const index = createUsageIndex({
    informers: {
      syncs: fakeInformer(options.syncs),
      managedSecrets: fakeInformer(options.secrets),
      spcs: undefined,
      clusterSyncs: options.clusterSyncs ? fakeInformer(options.clusterSyncs) : undefined,
      mappings: options.mappings ? fakeInformer(options.mappings) : undefined,
      workloads: new Map<RolloutKind, ReturnType<typeof fakeInformer>>([
        ['Deployment', fakeInformer(options.workloads)],
      ]),
    },
    defaultRegion: 'us-east-1',
    observed: options.seen ?? (() => observation('v2')),
    permissions: fakePermissions((subject) => {
      asked.push(subject);
      return allowed(subject);
    }),
  });
  return { index, asked };
}

test('watches: every secret a SecretSync reads, a mapping names and a workload annotation names', () => {
  const { index } = setup({
    syncs: [secretSyncObject('team-a', 'db', 'team-a/db', 'db-env')],
    mappings: [mappingObject('team-a', 'm', { app: 'web' })],
    workloads: [
      workloadObject('team-a', 'web', { annotations: { 'smk.dev/rollout-on': 'team-a/api, other' } }),
    ],
  });
  assert.deepEqual(
    index
      .watches()
      .map((watch) => watch.id)
      .sort(),
    ['other', 'team-a/api', 'team-a/db', 'team-a/db'],
  );
  assert.ok(index.watches().every((watch) => watch.region === 'us-east-1' && watch.stage === 'AWSCURRENT'));
});

test('a synced Secret is traced to the source its owner marker names; a marker naming nothing is no owner', () => {
  const { index } = setup({
    syncs: [secretSyncObject('team-a', 'db', 'team-a/db', 'db-env')],
    secrets: [
      managedSecretObject('team-a', 'db-env', 'SecretSync/db'),
      managedSecretObject('team-a', 'stray', 'SecretSync/gone'),
      managedSecretObject('team-a', 'odd', 'Unknown/db'),
    ],
  });
  const owner = index.ownerOf('team-a', 'db-env');
  assert.deepEqual(owner?.source, { kind: 'SecretSync', namespace: 'team-a', name: 'db' });
  assert.deepEqual(owner?.targets, ['db-env']);
  assert.equal(index.ownerOf('team-a', 'stray'), undefined);
  assert.equal(index.ownerOf('team-a', 'odd'), undefined);
  assert.equal(index.ownerOf('team-b', 'db-env'), undefined, 'never across namespaces');
});

test("a workload's dependencies: a mapping's and rollout-on's secret asked as the workload's account, a synced Secret's as its source's", () => {
  const object = workloadObject('team-a', 'web', {
    labels: { app: 'web' },
    annotations: { 'smk.dev/rollout-on-sync': 'true' },
    secretNames: ['db-env'],
    serviceAccountName: 'web-sa',
  });
  const { index, asked } = setup({
    workloads: [object],
    syncs: [secretSyncObject('team-a', 'db', 'team-a/db', 'db-env')],
    secrets: [managedSecretObject('team-a', 'db-env', 'SecretSync/db')],
    mappings: [
      mappingObject('team-a', 'm', { app: 'web' }),
      mappingObject('team-b', 'other', { app: 'web' }),
    ],
  });
  const workload = parseWorkload('Deployment', object);
  const { dependencies, mappings } = index.dependenciesOf(workload);
  assert.deepEqual(dependencies, [
    {
      key: arn,
      name: 'team-a/db',
      versionId: 'v2',
      via: ['Secret db-env', 'SecretsRotationMapping team-a/m'],
    },
  ]);
  assert.deepEqual(
    mappings.map((m) => `${m.namespace}/${m.name}`),
    ['team-a/m'],
    'a mapping in another namespace never selects the workload',
  );
  assert.deepEqual(asked.map((subject) => `${subject.namespace}/${subject.serviceAccountName}`).sort(), [
    'team-a/sync',
    'team-a/web-sa',
  ]);
});

test('a secret the answering identity may not describe is no dependency; a deleted one has no version', () => {
  const object = workloadObject('team-a', 'web', {
    annotations: { 'smk.dev/rollout-on': 'team-a/db' },
    serviceAccountName: 'web-sa',
  });
  const refused = setup({ workloads: [object], allowed: () => false });
  assert.deepEqual(refused.index.dependenciesOf(parseWorkload('Deployment', object)).dependencies, []);

  const deleted = setup({ workloads: [object], seen: () => observation('v2', true) });
  assert.deepEqual(
    deleted.index.dependenciesOf(parseWorkload('Deployment', object)).dependencies.map((d) => d.versionId),
    [undefined],
  );

  const unseen = setup({ workloads: [object], seen: () => undefined });
  assert.deepEqual(unseen.index.dependenciesOf(parseWorkload('Deployment', object)).dependencies, []);
});

test('parsing is memoised per resourceVersion: an unchanged object is not parsed again', () => {
  const object = workloadObject('team-a', 'web', { annotations: { 'smk.dev/rollout-on': 'a' } });
  const { index } = setup({ workloads: [object] });
  const first = index.workloads()[0];
  assert.equal(index.workloads()[0], first, 'same parse for the same version');
  const invalid = workloadObject('team-a', 'bad', { annotations: { 'smk.dev/rollout-on-sync': 'maybe' } });
  const withInvalid = setup({ workloads: [object, invalid] });
  assert.deepEqual(
    withInvalid.index.workloads().map((w) => w.name),
    ['web'],
    'a workload that does not parse is left out (reported when reconciled)',
  );
});

test("a named Secret is a dependency at its data version, looked up in the workload's own namespace only", () => {
  const object = workloadObject('team-a', 'web', { annotations: { 'smk.dev/reload-secrets': 'app-env' } });
  const asked: string[] = [];
  const index = createUsageIndex({
    informers: {
      syncs: fakeInformer(),
      managedSecrets: fakeInformer(),
      spcs: undefined,
      clusterSyncs: undefined,
      mappings: undefined,
      workloads: new Map<RolloutKind, ReturnType<typeof fakeInformer>>([
        ['Deployment', fakeInformer([object])],
      ]),
    },
    defaultRegion: 'us-east-1',
    observed: () => undefined,
    permissions: fakePermissions(() => true),
    references: {
      dataVersion: (kind, namespace, name) => {
        asked.push(`${kind}/${namespace}/${name}`);
        return namespace === 'team-a' ? '42' : 'other';
      },
    },
  });
  assert.deepEqual(index.dependenciesOf(parseWorkload('Deployment', object)).dependencies, [
    {
      key: 'Secret/app-env',
      name: 'Secret app-env',
      versionId: '42',
      via: ['annotation smk.dev/reload-secrets'],
    },
  ]);
  assert.deepEqual(asked, ['Secret/team-a/app-env']);
});

test('a ClusterSecretSync: its secrets watched once, whatever the namespaces; each namespace it ran for owns its Secret', () => {
  const object = clusterSecretSyncObject('shared', 'team-a/db', 'db-env', { 'team-a': 'v1', 'team-b': 'v1' });
  const { index } = setup({
    clusterSyncs: [object],
    secrets: [
      managedSecretObject('team-a', 'db-env', 'ClusterSecretSync/shared'),
      managedSecretObject('gone', 'db-env', 'ClusterSecretSync/shared'),
    ],
  });
  assert.deepEqual(
    index.watches().map((watch) => watch.id),
    ['team-a/db'],
  );
  assert.deepEqual(
    index.usages().map(({ source }) => `${source.kind} ${source.namespace}/${source.name}`),
    ['ClusterSecretSync team-a/shared', 'ClusterSecretSync team-b/shared'],
  );
  assert.equal(index.ownerOf('team-a', 'db-env')?.identityNamespace, 'team-a');
  assert.equal(index.ownerOf('gone', 'db-env'), undefined, 'a namespace its status does not list');

  const before = clusterSecretSyncObject('fresh', 'team-a/other', 'x', {});
  assert.deepEqual(
    setup({ clusterSyncs: [before] })
      .index.watches()
      .map((watch) => watch.id),
    ['team-a/other'],
    'watched before its first status: a change right after it first synced is not missed',
  );
});

test("rollout-on-sync of a ClusterSecretSync's Secret asks as the identity that reads for that namespace", () => {
  const reader = workloadObject('team-a', 'web', {
    secretNames: ['db-env'],
    annotations: { 'smk.dev/rollout-on-sync': 'true' },
  });
  const secrets = [managedSecretObject('team-a', 'db-env', 'ClusterSecretSync/shared')];
  const own = setup({
    workloads: [reader],
    clusterSyncs: [clusterSecretSyncObject('shared', 'team-a/db', 'db-env', { 'team-a': 'v1' })],
    secrets,
  });
  const workload = parseWorkload('Deployment', reader);
  assert.deepEqual(
    own.index.candidatesOf(workload).map(({ subject, via }) => ({ ...subject, via })),
    [
      {
        namespace: 'team-a',
        serviceAccountName: 'reader',
        region: 'us-east-1',
        id: 'team-a/db',
        via: 'Secret db-env',
      },
    ],
    "mode (a): the namespace's own ServiceAccount",
  );
  const named = setup({
    workloads: [reader],
    clusterSyncs: [clusterSecretSyncObject('shared', 'team-a/db', 'db-env', { 'team-a': 'v1' }, 'platform')],
    secrets,
  });
  assert.equal(
    named.index.candidatesOf(workload)[0]?.subject.namespace,
    'platform',
    'mode (b): the ServiceAccount the administrator named, which put the value there',
  );
  const refused = setup({
    workloads: [reader],
    clusterSyncs: [clusterSecretSyncObject('shared', 'team-a/db', 'db-env', { 'team-a': 'v1' })],
    secrets,
    allowed: () => false,
  });
  assert.deepEqual(refused.index.dependenciesOf(workload).dependencies, [], 'no answer yes: not followed');
  assert.equal(own.index.dependenciesOf(workload).dependencies[0]?.via[0], 'Secret db-env');
});
