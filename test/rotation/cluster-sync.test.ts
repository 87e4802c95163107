/**
 * Rotation for the Secrets a ClusterSecretSync writes (issue 16's gap), on the real test bed and
 * moto: a change (an SQS event, then a poll) re-syncs the ClusterSecretSync at once (its refresh is
 * an hour), and each selected namespace's rollout-on-sync reader rolls once that namespace's
 * Secret holds the new version; a workload that did not opt in stays. Tenant rule (mode a, each
 * namespace reads as its own ServiceAccount): a tenant whose own role AWS refuses, selected too,
 * forges a Secret of that name carrying the ClusterSecretSync's owner marker and a reader of it;
 * its reader is never adopted or rolled for the secret. The ClusterSecretSync controller runs on a
 * manager serving every namespace (as in `smk controller`; this run's label selects its own
 * namespaces only); rotation is scoped to this test's namespaces, so other files' workloads are
 * never touched. With one identity the administrator names (mode b), a listed namespace's reader
 * rolls as that identity may describe the secret: the administrator gave the namespace its values.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { sessionNameFor } from '../../src/aws/identity.ts';
import { AwsClients, createQueueReader, createSecretReader, SecretCache } from '../../src/aws/index.ts';
import { addClusterSyncController } from '../../src/controller/cluster-sync/controller.ts';
import { coalescingReader } from '../../src/controller/coalesce.ts';
import { createIdentityResolver } from '../../src/controller/identity.ts';
import {
  createRotationController,
  type RotationController,
} from '../../src/controller/rotation/controller.ts';
import { silentLogger } from '../../src/core/log.ts';
import { createManager, type Manager } from '../../src/kube/manager.ts';
import { createServiceAccounts } from '../../src/kube/service-accounts.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  adopted,
  awsClients,
  cloudTrailEvent,
  createDeployment,
  createQueue,
  createSecret,
  createServiceAccount,
  installCrds,
  putSecret,
  readDeployment,
  replicaSets,
  secretValue,
  send,
  sleep,
  staticIdentity,
  waitFor,
} from './harness.ts';

let bed: TestBed;
let proxy: AwsProxy;
const moto = connectMoto();
let aws: ReturnType<typeof awsClients>;
/** A label only this run's namespaces carry: other test files' namespaces are never selected. */
const selectorLabel = `rotation-css.smk.dev/run-${randomBytes(4).toString('hex')}`;

before(async () => {
  bed = await connectTestBed();
  proxy = await startAwsProxy({ target: moto.endpoint });
  aws = awsClients(proxy.endpoint);
  await installCrds(bed.kubeConfig);
});

after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

async function labelled(prefix: string): Promise<string> {
  const namespace = await bed.newNamespace(prefix);
  await bed.kubeConfig
    .makeApiClient(CoreV1Api)
    .patchNamespace(
      { name: namespace, body: { metadata: { labels: { [selectorLabel]: 'in' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  return namespace;
}

/** A user with rights only in `namespace`: Deployments and Secrets. */
async function tenantIn(namespace: string): Promise<KubeConfig> {
  const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: 'team' },
      rules: [
        { apiGroups: ['apps'], resources: ['deployments'], verbs: ['*'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['*'] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'team' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'team' },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: `tenant-${namespace}` }],
    },
  });
  return bed.kubeConfigFor(`tenant-${namespace}`);
}

interface Running {
  readonly manager: Manager;
  readonly rotation: RotationController;
  readonly clients: AwsClients;
  stop(): Promise<void>;
}

/** The ClusterSecretSync controller (every namespace) and rotation (`namespaces`), sharing one AWS cache. */
async function start(namespaces: readonly string[], queueUrl: string): Promise<Running> {
  const cache = new SecretCache();
  const clients = new AwsClients({ endpoint: proxy.endpoint, maxAttempts: 1, callTimeoutMs: 5_000 });
  const identities = createIdentityResolver({
    serviceAccounts: createServiceAccounts(bed.kubeConfig),
    makeReader: (identity) => coalescingReader(createSecretReader(identity, { cache, clients })),
    roleTtlMs: 500,
  });
  const manager = createManager({ kubeConfig: bed.kubeConfig, logger: silentLogger() });
  addClusterSyncController(manager, { identities, defaultRegion: 'us-east-1' });
  await manager.start();
  const rotation = createRotationController({
    kubeConfig: bed.kubeConfig,
    namespaces,
    reader: createSecretReader(staticIdentity, { cache, clients }),
    identities,
    queue: createQueueReader(staticIdentity, { clients }, queueUrl, 'us-east-1'),
    logger: silentLogger(),
    defaultRegion: 'us-east-1',
    sinks: [{ secretChanged: (change) => cache.stagesMoved(change.secret.region, change.secret.arn) }],
    // Rotation serves only this test's namespaces; ClusterSecretSyncs are cluster-scoped.
    clusterSecretSyncs: true,
    pollIntervalMs: 3_600_000,
    debounceMs: 300,
    queueWaitSeconds: 1,
  });
  await rotation.start();
  await waitFor('controllers ready', 30_000, async () => manager.ready && rotation.ready);
  return {
    manager,
    rotation,
    clients,
    async stop() {
      await rotation.stop();
      await manager.stop(2_000);
      clients.destroy();
    },
  };
}

const restartedAt = async (namespace: string, name: string): Promise<string | undefined> =>
  (await readDeployment(bed.kubeConfig, namespace, name)).spec?.template?.metadata?.annotations?.[
    'smk.dev/restartedAt'
  ];

describe('rotation: the Secrets a ClusterSecretSync writes', () => {
  it("a change re-syncs it at once and rolls each namespace's rollout-on-sync reader once its Secret holds the new version; a tenant forging its marker gets nothing", async () => {
    const nsA = await labelled('rot-css-a');
    const nsB = await labelled('rot-css-b');
    const nsT = await labelled('rot-css-t');
    const syncName = `rot-css-${randomBytes(4).toString('hex')}`;
    const awsName = `${syncName}/db`;
    const arn = await createSecret(aws.secrets, awsName, 'css-rollout-value-1Qx7');
    await createServiceAccount(bed.kubeConfig, nsA, 'rot-css-a');
    await createServiceAccount(bed.kubeConfig, nsB, 'rot-css-b');
    await createServiceAccount(bed.kubeConfig, nsT, 'rot-css-refused');
    const queueUrl = await createQueue(aws.sqs, `${nsA}-events`);
    const running = await start([nsA, nsB, nsT], queueUrl);
    try {
      // The tenant's own role, which AWS refuses (moto does not evaluate policies; the proxy does).
      const refused = await running.clients.credentials({
        kind: 'webIdentity',
        roleArn: 'arn:aws:iam::123456789012:role/rot-css-refused',
        subject: `${nsT}/app`,
        sessionName: sessionNameFor(nsT, 'app'),
        token: () => bed.serviceAccountToken(nsT, 'app', 'sts.amazonaws.com'),
      })();
      proxy.refuseAccessKey(refused.accessKeyId);

      await bed.kubeConfig.makeApiClient(CustomObjectsApi).createClusterCustomObject({
        group: 'smk.dev',
        version: 'v1alpha1',
        plural: 'clustersecretsyncs',
        body: {
          apiVersion: 'smk.dev/v1alpha1',
          kind: 'ClusterSecretSync',
          metadata: { name: syncName },
          spec: {
            namespaceSelector: { matchLabels: { [selectorLabel]: 'in' } },
            serviceAccountRef: { name: 'app' },
            objects: [{ objectName: awsName, objectType: 'secretsmanager', objectAlias: 'VALUE' }],
            target: { name: 'shared-env' },
            refreshInterval: '1h',
          },
        },
      });
      for (const ns of [nsA, nsB]) {
        await waitFor(
          `Secret ${ns}/shared-env synced`,
          30_000,
          async () => (await secretValue(bed.kubeConfig, ns, 'shared-env')) === 'css-rollout-value-1Qx7',
        );
      }

      // The tenant: a Secret of that name claiming the ClusterSecretSync wrote it, and a reader.
      const tenant = await tenantIn(nsT);
      await tenant.makeApiClient(CoreV1Api).createNamespacedSecret({
        namespace: nsT,
        body: {
          metadata: {
            name: 'shared-env',
            labels: { 'app.kubernetes.io/managed-by': 'smk' },
            annotations: { 'smk.dev/owner': `ClusterSecretSync/${syncName}` },
          },
          stringData: { VALUE: 'tenant-own' },
        },
      });
      await createDeployment(tenant, nsT, 'reader', {
        labels: { app: 'reader' },
        secretName: 'shared-env',
        annotations: { 'smk.dev/rollout-on-sync': 'true' },
      });

      for (const ns of [nsA, nsB]) {
        await createDeployment(bed.kubeConfig, ns, 'reader', {
          labels: { app: 'reader' },
          secretName: 'shared-env',
          annotations: { 'smk.dev/rollout-on-sync': 'true' },
        });
      }
      await createDeployment(bed.kubeConfig, nsA, 'bystander', {
        labels: { app: 'bystander' },
        secretName: 'shared-env',
      });
      for (const ns of [nsA, nsB]) {
        await waitFor(`${ns}/reader adopted`, 30_000, () => adopted(bed.kubeConfig, ns, 'reader'));
        await waitFor(
          `${ns}/reader's first ReplicaSet`,
          30_000,
          async () => (await replicaSets(bed.kubeConfig, ns, 'reader')) === 1,
        );
      }

      // An EventBridge event in the queue: the one-hour refresh is not waited for.
      await putSecret(aws.secrets, awsName, 'css-rollout-value-2Qx7');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', awsName, arn));
      for (const ns of [nsA, nsB]) {
        await waitFor(
          `${ns}/reader rolled`,
          20_000,
          async () => (await replicaSets(bed.kubeConfig, ns, 'reader')) === 2,
        );
        assert.equal(
          await secretValue(bed.kubeConfig, ns, 'shared-env'),
          'css-rollout-value-2Qx7',
          `${ns}: the Secret was updated before the rollout`,
        );
      }
      const object = (await bed.kubeConfig.makeApiClient(CustomObjectsApi).getClusterCustomObject({
        group: 'smk.dev',
        version: 'v1alpha1',
        plural: 'clustersecretsyncs',
        name: syncName,
      })) as { metadata?: { annotations?: Record<string, string> } };
      assert.match(
        object.metadata?.annotations?.['smk.dev/force-sync'] ?? '',
        /^\S+ \S+$/,
        'asked to re-sync (time and version), once for every namespace',
      );

      // A second change found by polling alone.
      await putSecret(aws.secrets, awsName, 'css-rollout-value-3Qx7');
      await running.rotation.detector.poll();
      for (const ns of [nsA, nsB]) {
        await waitFor(
          `${ns}/reader rolled again`,
          20_000,
          async () => (await replicaSets(bed.kubeConfig, ns, 'reader')) === 3,
        );
        assert.equal(await secretValue(bed.kubeConfig, ns, 'shared-env'), 'css-rollout-value-3Qx7');
      }

      await sleep(1_000); // rollouts of one change run together
      assert.equal(await replicaSets(bed.kubeConfig, nsA, 'bystander'), 1, 'not opted in: left alone');
      const tenantReader = await readDeployment(bed.kubeConfig, nsT, 'reader');
      assert.doesNotMatch(
        tenantReader.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '',
        new RegExp(arn),
        "the tenant's reader is not adopted for a secret its own role may not describe",
      );
      assert.equal(await restartedAt(nsT, 'reader'), undefined, "the tenant's reader is never rolled");
      proxy.allowAccessKey(refused.accessKeyId);
    } finally {
      await running.stop();
    }
  });

  it('one identity the administrator names (mode b): a listed namespace with no account of its own rolls, as that identity may describe the secret', async () => {
    const platform = await bed.newNamespace('rot-css-p');
    const target = await bed.newNamespace('rot-css-x');
    const syncName = `rot-css-${randomBytes(4).toString('hex')}`;
    const awsName = `${syncName}/db`;
    await createSecret(aws.secrets, awsName, 'css-named-value-1Qx7');
    await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
      namespace: platform,
      body: {
        metadata: {
          name: 'reader',
          annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/rot-css-platform' },
        },
      },
    });
    const queueUrl = await createQueue(aws.sqs, `${target}-events`);
    const running = await start([target], queueUrl);
    try {
      await bed.kubeConfig.makeApiClient(CustomObjectsApi).createClusterCustomObject({
        group: 'smk.dev',
        version: 'v1alpha1',
        plural: 'clustersecretsyncs',
        body: {
          apiVersion: 'smk.dev/v1alpha1',
          kind: 'ClusterSecretSync',
          metadata: { name: syncName },
          spec: {
            namespaces: [target],
            serviceAccountRef: { name: 'reader', namespace: platform },
            objects: [{ objectName: awsName, objectType: 'secretsmanager', objectAlias: 'VALUE' }],
            target: { name: 'named-env' },
            refreshInterval: '1h',
          },
        },
      });
      await waitFor(
        'Secret named-env synced',
        30_000,
        async () => (await secretValue(bed.kubeConfig, target, 'named-env')) === 'css-named-value-1Qx7',
      );
      // The workload runs as an account the namespace does not even have: only the named identity counts.
      await createDeployment(bed.kubeConfig, target, 'reader', {
        labels: { app: 'reader' },
        secretName: 'named-env',
        annotations: { 'smk.dev/rollout-on-sync': 'true' },
      });
      await waitFor('reader adopted', 30_000, () => adopted(bed.kubeConfig, target, 'reader'));
      await putSecret(aws.secrets, awsName, 'css-named-value-2Qx7');
      await running.rotation.detector.poll();
      await waitFor(
        'reader rolled',
        20_000,
        async () => (await replicaSets(bed.kubeConfig, target, 'reader')) === 2,
      );
      assert.equal(await secretValue(bed.kubeConfig, target, 'named-env'), 'css-named-value-2Qx7');
    } finally {
      await running.stop();
    }
  });
});
