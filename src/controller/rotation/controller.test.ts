/**
 * The controller's wiring with fakes (no API server): the informers it asks for, and a change
 * flowing from the detector through the sinks to a rollout patch. The behaviours themselves are
 * proven beside each piece; the test bed runs the whole (test/rotation).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { silentLogger } from '../../core/log.ts';
import type { SecretReader, SecretVersions } from '../../core/source.ts';
import type { KubeConfig } from '../../kube/client.ts';
import type { IdentityResolver } from '../identity.ts';
import { createRotationController } from './controller.ts';
import type { VersionReader } from './detector.ts';
import type { WatchedKind } from './informers.ts';
import { type FakeInformer, fakeEvents, fakeInformer, fakeObjects, workloadObject } from './test-doubles.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/db-AbCdEf';

/** Resolves once `condition` holds, letting queued work run between looks; fails after many turns. */
async function settled(what: string, condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 2_000; turn += 1) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never: ${what}`);
}

function setup(objectsInCluster: KubernetesObject[], argo = false) {
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
  const asked: WatchedKind[] = [];
  const informers = new Map<WatchedKind, FakeInformer>();
  const store = new Map(
    objectsInCluster.map((object) => [`${object.kind}/team-a/${object.metadata?.name}`, object]),
  );
  const objects = fakeObjects(store);
  const controller = createRotationController({
    kubeConfig: {} as KubeConfig,
    reader,
    identities,
    logger: silentLogger(),
    defaultRegion: 'us-east-1',
    secretProviderClasses: false,
    mappings: false,
    rolloutKinds: { Rollout: argo },
    pollIntervalMs: 3_600_000,
    debounceMs: 0,
    objects,
    events: fakeEvents(),
    informerFor: (kind) => {
      asked.push(kind);
      const informer = fakeInformer(
        objectsInCluster.filter(
          (object) => object.kind === kind || (kind === 'ManagedSecret' && object.kind === 'Secret'),
        ),
      );
      informers.set(kind, informer);
      return informer;
    },
  });
  return {
    controller,
    asked,
    informers,
    objects,
    store,
    rotate: () => {
      current = 'v2';
    },
  };
}

test('asks informerFor once per kind it watches, starts them, stops them', async () => {
  const { controller, asked, informers } = setup([]);
  assert.deepEqual(asked.sort(), [
    'ConfigMap',
    'CronJob',
    'DaemonSet',
    'Deployment',
    'ManagedSecret',
    'Secret',
    'SecretSync',
    'StatefulSet',
  ]);
  await controller.start();
  assert.ok([...informers.values()].every((informer) => informer.started));
  assert.ok(controller.ready && controller.leading);
  await controller.stop();
  assert.ok([...informers.values()].every((informer) => !informer.started));
});

test('an optional rollout kind (Argo Rollout) is watched only when on, and from start', async () => {
  const { controller, asked } = setup([], true);
  assert.ok(!asked.includes('Rollout'));
  await controller.start();
  try {
    assert.ok(asked.includes('Rollout'));
  } finally {
    await controller.stop();
  }
});

test('an annotated Deployment is adopted, then rolled once its secret changes (detector → sinks → rollout)', async () => {
  const web = workloadObject('team-a', 'web', { annotations: { 'smk.dev/rollout-on': 'team-a/db' } });
  const { controller, objects, store, rotate } = setup([web]);
  await controller.start();
  try {
    await controller.detector.poll();
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
    await controller.detector.poll();
    await settled('rolled', () => objects.patches.length === 2);
    const patch = objects.patches[1]?.patch as {
      spec?: { template?: { metadata?: { annotations?: object } } };
    };
    assert.ok(patch.spec?.template?.metadata?.annotations, 'the pod template is restarted');
  } finally {
    await controller.stop();
  }
});
