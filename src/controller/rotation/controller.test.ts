/**
 * The controller's wiring on a manager with fakes (no API server): the watches it shares with the
 * sync controller, the optional kinds it probes, and a change flowing from the detector through the
 * sinks to a rollout patch only while this replica holds the Lease. The behaviours themselves are
 * proven beside each piece; the test bed runs the whole (test/rotation).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { silentLogger } from '../../core/log.ts';
import type { SecretReader, SecretVersions } from '../../core/source.ts';
import type { ListWatchSource } from '../../kube/informer.ts';
import type { ResourceKind } from '../../kube/kinds.ts';
import { createManager, type ManagerOptions } from '../../kube/manager.ts';
import type { CustomResource } from '../../kube/served.ts';
import { manualClock, memoryLease } from '../../kube/test-doubles.ts';
import type { IdentityResolver } from '../identity.ts';
import { addSyncController } from '../sync/controller.ts';
import { addRotationController } from './controller.ts';
import type { VersionReader } from './detector.ts';
import { fakeEvents, fakeObjects, workloadObject } from './test-doubles.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/db-AbCdEf';

/** Resolves once `condition` holds, letting queued work run between looks; fails after many turns. */
async function settled(what: string, condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 2_000; turn += 1) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never: ${what}`);
}

/** Lets every queued callback run (no timers). */
async function drain(): Promise<void> {
  for (let turn = 0; turn < 200; turn += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** A cluster whose lists hold `objects` (by kind), and the watches opened on it. */
function fakeCluster(objects: readonly KubernetesObject[]) {
  const opened: string[] = [];
  const sourceFor = <T>(kind: ResourceKind<T>, namespace: string | undefined): ListWatchSource<T> => {
    opened.push(`${kind.apiVersion}/${kind.plural}${kind.labelSelector ? `?${kind.labelSelector}` : ''}`);
    const items = objects
      .filter(
        (object) => object.kind === kind.kind && (!namespace || object.metadata?.namespace === namespace),
      )
      .map((object) => structuredClone(object));
    return {
      list: async () => ({ items: items as T[], resourceVersion: '1' }),
      watch: async () => ({ abort: () => undefined }),
    };
  };
  return { sourceFor, opened };
}

function setup(objectsInCluster: KubernetesObject[], extra: Partial<ManagerOptions> = {}) {
  let current = 'v1';
  const versions = (): SecretVersions => ({
    arn,
    name: 'team-a/db',
    versionsToStages: new Map([[current, ['AWSCURRENT']]]),
  });
  const reader: VersionReader = {
    listSecretVersions: async () => [versions()],
    describe: async () => versions(),
  };
  const identities: IdentityResolver = {
    resolve: async () => ({
      reader: { describe: async () => versions() } as unknown as SecretReader,
      roleArn: 'arn:aws:iam::123456789012:role/app',
      sessionName: 's',
    }),
  };
  const store = new Map(
    objectsInCluster.map((object) => [`${object.kind}/team-a/${object.metadata?.name}`, object]),
  );
  const objects = fakeObjects(store);
  const cluster = fakeCluster(objectsInCluster);
  const probed: string[] = [];
  const manager = createManager({
    kubeConfig: new KubeConfig(),
    logger: silentLogger(),
    sourceFor: cluster.sourceFor,
    // Only Argo's Rollout is installed.
    served: async (resource: CustomResource) => {
      probed.push(`${resource.group}/${resource.plural}`);
      return resource.group === 'argoproj.io';
    },
    ...extra,
  });
  const rotation = addRotationController(manager, {
    reader,
    identities,
    defaultRegion: 'us-east-1',
    pollIntervalMs: 3_600_000,
    debounceMs: 0,
    objects,
    events: fakeEvents(),
  });
  return {
    manager,
    rotation,
    identities,
    opened: cluster.opened,
    probed,
    objects,
    store,
    rotate: () => {
      current = 'v2';
    },
  };
}

test('shares one watch per kind with the sync controller; optional kinds only when their CRD is served', async () => {
  const { manager, identities, opened, probed } = setup([]);
  addSyncController(manager, {
    identities,
    defaultRegion: 'us-east-1',
    objects: fakeObjects(),
    events: fakeEvents(),
  });
  await manager.start();
  try {
    assert.deepEqual([...opened].sort(), [
      'apps/v1/daemonsets',
      'apps/v1/deployments',
      'apps/v1/statefulsets',
      'argoproj.io/v1alpha1/rollouts',
      'batch/v1/cronjobs',
      'smk.dev/v1alpha1/secretsyncs',
      'v1/configmaps',
      'v1/secrets',
      'v1/secrets?app.kubernetes.io/managed-by=smk',
    ]);
    assert.ok(
      !opened.some(
        (watch) => watch.includes('secretproviderclasses') || watch.includes('secretsrotationmappings'),
      ),
      'CRDs not served are not watched',
    );
    assert.equal(
      probed.filter((resource) => resource.includes('secretproviderclasses')).length,
      1,
      'one probe answers both controllers',
    );
    assert.equal(manager.ready, true);
  } finally {
    await manager.stop(100);
  }
});

test('a standby keeps its caches but rolls nothing; once it holds the Lease it adopts, then rolls on a change', async () => {
  const clock = manualClock();
  const lease = memoryLease({
    holderIdentity: 'other',
    leaseDurationSeconds: 12,
    leaseTransitions: 0,
    renewTime: new Date(clock.now()),
  });
  const web = workloadObject('team-a', 'web', { annotations: { 'smk.dev/rollout-on': 'team-a/db' } });
  const { manager, rotation, objects, store, rotate } = setup([web], {
    leaderElection: { namespace: 'smk', name: 'smk-controller', identity: 'me' },
    leaseStore: lease.store,
    clock,
  });
  await manager.start();
  try {
    await rotation.detector.poll();
    await drain();
    assert.equal(manager.leading, false);
    assert.equal(objects.patches.length, 0, 'a standby writes nothing');

    await clock.advance(15_000);
    assert.equal(manager.leading, true);
    await settled('adopted', () => objects.patches.length === 1);
    assert.ok(!('spec' in (objects.patches[0]?.patch ?? {})), 'adoption restarts nothing');
    // The cluster now holds the adopted record; then the secret moves.
    store.set(
      'Deployment/team-a/web',
      workloadObject('team-a', 'web', {
        annotations: {
          'smk.dev/rollout-on': 'team-a/db',
          'smk.dev/rolled-versions': JSON.stringify({ [arn]: 'v1' }),
        },
        resourceVersion: '2',
      }),
    );
    rotate();
    await rotation.detector.poll();
    await settled('rolled', () => objects.patches.length === 2);
    const patch = objects.patches[1]?.patch as {
      spec?: { template?: { metadata?: { annotations?: object } } };
    };
    assert.ok(patch.spec?.template?.metadata?.annotations, 'the pod template is restarted');
  } finally {
    await manager.stop(100);
  }
});

test('ClusterSecretSyncs are followed (auto) when their CRD is served and the manager serves every namespace', async () => {
  const served = async (resource: CustomResource) => resource.plural === 'clustersecretsyncs';
  const everywhere = setup([], { served });
  await everywhere.manager.start();
  try {
    assert.ok(everywhere.opened.includes('smk.dev/v1alpha1/clustersecretsyncs'));
  } finally {
    await everywhere.manager.stop(100);
  }
  // Limited to some namespaces the chart grants no cluster-scoped reads, and no ClusterSecretSync
  // controller runs there: not watched.
  const limited = setup([], { served, namespaces: ['team-a'] });
  await limited.manager.start();
  try {
    assert.ok(!limited.opened.some((watch) => watch.includes('clustersecretsyncs')));
  } finally {
    await limited.manager.stop(100);
  }
});
