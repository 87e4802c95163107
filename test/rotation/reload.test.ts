/**
 * Reloader-style restarts through the real API server (issue 16): a workload names Kubernetes
 * Secrets and ConfigMaps (synced by something else, or plain ones) and restarts when their data
 * changes — not their metadata — and only for objects in its own namespace (the tenant rule).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  createDeployment,
  eventReasons,
  installCrds,
  readDeployment,
  replicaSets,
  startStack,
  waitFor,
} from './harness.ts';

let bed: TestBed;
let proxy: AwsProxy;
const moto = connectMoto();

before(async () => {
  bed = await connectTestBed();
  proxy = await startAwsProxy({ target: moto.endpoint });
  await installCrds(bed.kubeConfig);
});

after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

const core = () => bed.kubeConfig.makeApiClient(CoreV1Api);
const b64 = (text: string): string => Buffer.from(text).toString('base64');

async function putSecret(
  namespace: string,
  name: string,
  value: string,
  labels: Record<string, string> = {},
) {
  const body = { metadata: { name, namespace, labels }, data: { VALUE: b64(value) } };
  const existing = await core()
    .readNamespacedSecret({ namespace, name })
    .catch(() => undefined);
  return existing
    ? core().replaceNamespacedSecret({
        namespace,
        name,
        body: {
          ...body,
          metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion },
        },
      })
    : core().createNamespacedSecret({ namespace, body });
}

async function setConfig(namespace: string, name: string, data: Record<string, string>) {
  const existing = await core()
    .readNamespacedConfigMap({ namespace, name })
    .catch(() => undefined);
  const body = { metadata: { name, namespace, resourceVersion: existing?.metadata?.resourceVersion }, data };
  return existing
    ? core().replaceNamespacedConfigMap({ namespace, name, body })
    : core().createNamespacedConfigMap({ namespace, body: { metadata: { name, namespace }, data } });
}

async function record(namespace: string, name: string): Promise<Record<string, string>> {
  const deployment = await readDeployment(bed.kubeConfig, namespace, name);
  return JSON.parse(deployment.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '{}') as Record<
    string,
    string
  >;
}

describe('rotation: workloads that name Secrets and ConfigMaps', () => {
  it('a data change restarts the reader once; a metadata-only change restarts nothing; Reloader annotations when honoured', async () => {
    const ns = await bed.newNamespace('rot-reload');
    const first = await putSecret(ns, 'app-env', 'one');
    await setConfig(ns, 'app-config', { 'app.properties': 'level=info' });
    await createDeployment(bed.kubeConfig, ns, 'web', {
      labels: { app: 'web' },
      secretName: 'app-env',
      annotations: { 'smk.dev/reload-secrets': 'app-env', 'smk.dev/reload-configmaps': 'app-config' },
    });
    await createDeployment(bed.kubeConfig, ns, 'legacy', {
      labels: { app: 'legacy' },
      annotations: { 'secret.reloader.stakater.com/reload': 'app-env' },
    });
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, {
      namespaces: [ns],
      withSync: false,
      reloaderAnnotations: true,
    });
    try {
      await waitFor('both adopted at the Secret as created', 30_000, async () => {
        const web = await record(ns, 'web');
        const legacy = await record(ns, 'legacy');
        return (
          web['Secret/app-env'] === first.metadata?.resourceVersion && legacy['Secret/app-env'] !== undefined
        );
      });
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'web'), 1);

      // Metadata only: a new resourceVersion, the same data.
      await putSecret(ns, 'app-env', 'one', { relabelled: 'yes' });
      // Then the ConfigMap's data: the rollout it causes shows what the controller made of both.
      await setConfig(ns, 'app-config', { 'app.properties': 'level=debug' });
      await waitFor(
        'web rolled for its ConfigMap',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'web')) === 2,
      );
      const afterConfig = await record(ns, 'web');
      assert.equal(
        afterConfig['Secret/app-env'],
        first.metadata?.resourceVersion,
        'the relabelled Secret still counts at its first data version',
      );

      const changed = await putSecret(ns, 'app-env', 'two');
      await waitFor(
        'web rolled for its Secret',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'web')) === 3,
      );
      assert.equal((await record(ns, 'web'))['Secret/app-env'], changed.metadata?.resourceVersion);
      await waitFor(
        'legacy (Reloader annotation) rolled too',
        15_000,
        async () => (await record(ns, 'legacy'))['Secret/app-env'] === changed.metadata?.resourceVersion,
      );
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'legacy'), 2);
      const reasons = await eventReasons(bed.kubeConfig, ns, 'web');
      assert.ok(reasons.includes('Normal/RolloutRestarted'));
    } finally {
      await stack.stop();
    }
  });

  it("tenant rule: a name is always in the workload's own namespace; another namespace's change restarts nothing", async () => {
    const mine = await bed.newNamespace('rot-reload-a');
    const theirs = await bed.newNamespace('rot-reload-b');
    const own = await putSecret(mine, 'shared', 'mine');
    await putSecret(theirs, 'shared', 'theirs');
    await setConfig(mine, 'app-config', { a: '1' });
    await createDeployment(bed.kubeConfig, mine, 'reader', {
      labels: { app: 'reader' },
      annotations: { 'smk.dev/reload-secrets': 'shared', 'smk.dev/reload-configmaps': 'app-config' },
    });
    await createDeployment(bed.kubeConfig, mine, 'reacher', {
      labels: { app: 'reacher' },
      annotations: { 'smk.dev/reload-secrets': `${theirs}/shared` },
    });
    await createDeployment(bed.kubeConfig, theirs, 'owner', {
      labels: { app: 'owner' },
      annotations: { 'smk.dev/reload-secrets': 'shared' },
    });
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, {
      namespaces: [mine, theirs],
      withSync: false,
    });
    try {
      await waitFor('the reacher is told its annotation names another namespace', 30_000, async () =>
        (await eventReasons(bed.kubeConfig, mine, 'reacher')).includes('Warning/InvalidRolloutAnnotation'),
      );
      await waitFor('reader and owner adopted', 30_000, async () => {
        return (
          (await record(mine, 'reader'))['Secret/shared'] !== undefined &&
          (await record(theirs, 'owner'))['Secret/shared'] !== undefined
        );
      });
      await putSecret(theirs, 'shared', 'theirs, rotated');
      await waitFor(
        'their own workload rolled',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, theirs, 'owner')) === 2,
      );
      await setConfig(mine, 'app-config', { a: '2' });
      await waitFor(
        'reader rolled for its own ConfigMap',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, mine, 'reader')) === 2,
      );
      assert.equal(
        (await record(mine, 'reader'))['Secret/shared'],
        own.metadata?.resourceVersion,
        "the reader still runs at its own Secret's version: the other namespace's change is not its change",
      );
      assert.equal(await replicaSets(bed.kubeConfig, mine, 'reacher'), 1, 'the reacher was never restarted');
      assert.equal(
        (await readDeployment(bed.kubeConfig, mine, 'reacher')).metadata?.annotations?.[
          'smk.dev/rolled-versions'
        ],
        undefined,
      );
    } finally {
      await stack.stop();
    }
  });
});
