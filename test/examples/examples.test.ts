/**
 * Every manifest in examples/ on the test bed: each example directory applies with a server-side
 * dry run; and where it means something, for real against smk's roles — the injection examples
 * through `smk inject` (and the injected objects through a dry run), seed 001's pod mounted through
 * the CSI provider, the sync examples synced by the controller, seed 003's mapping adopting its
 * Deployment. The Helm values example renders with the chart.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
} from '@kubernetes/client-node';
import { AwsClients, createSecretReader, SecretCache } from '../../src/aws/index.ts';
import { addClusterSyncController } from '../../src/controller/cluster-sync/controller.ts';
import { coalescingReader } from '../../src/controller/coalesce.ts';
import { createIdentityResolver } from '../../src/controller/identity.ts';
import { silentLogger } from '../../src/core/log.ts';
import { connectProvider } from '../../src/csi/client.ts';
import { type CsiProvider, startCsiProvider } from '../../src/csi/provider.ts';
import { createManager, type Manager } from '../../src/kube/manager.ts';
import { createServiceAccounts } from '../../src/kube/service-accounts.ts';
import { find, renderChart } from '../deploy/helm.ts';
import { connectMoto } from '../harness/moto.ts';
import { runCommand } from '../harness/run.ts';
import { adopted, installCrds, readMapping, type Stack, startStack, waitFor } from '../rotation/harness.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { mountRequestFor } from './csi-request.ts';
import { applyExample, exampleNames, examplesDir, readExample } from './examples.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const moto = connectMoto();
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
let bed: TestBed;

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
});

after(async () => {
  await bed?.stop();
});

/** The examples name fixed secrets; other runs may have made them: create only when absent, never overwrite. */
async function ensureSecret(region: string, name: string, value: string): Promise<string> {
  const client = new SecretsManagerClient({ endpoint: moto.endpoint, region, credentials });
  try {
    await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
  }
  try {
    const current = await client.send(
      new GetSecretValueCommand({ SecretId: name, VersionStage: 'AWSCURRENT' }),
    );
    return current.SecretString ?? '';
  } finally {
    client.destroy();
  }
}

const decode = (data: string | undefined): string => Buffer.from(data ?? '', 'base64').toString('utf8');

describe('examples/', () => {
  it('has the examples the docs point to', async () => {
    assert.deepEqual(await exampleNames(), [
      'cluster-secret-sync',
      'cross-account',
      'csi-ascp',
      'injection-sidecar-injector',
      'injection-smk',
      'migration-eso',
      'rotation-mapping',
      'rotation-targets',
      'sync-discovery',
      'sync-extract-keys',
      'sync-secret-types',
      'sync-secretproviderclass',
      'sync-secretsync',
      'sync-template',
      'write-through',
    ]);
  });

  it('every example applies with a server-side dry run', async () => {
    for (const name of await exampleNames()) {
      const namespace = await bed.newNamespace(`example-${name}`);
      const applied = await applyExample(bed.kubeConfig, name, namespace, { dryRun: true });
      const expected = await readExample(name);
      assert.deepEqual(
        applied.map((object) => `${object.kind}/${object.metadata.name}`),
        expected.map(({ object }) => `${object.kind}/${object.metadata.name}`),
        name,
      );
    }
  });

  it('the injection examples: smk inject adds the agent, and the injected objects pass a dry run', async () => {
    for (const name of ['injection-sidecar-injector', 'injection-smk']) {
      const result = await runCommand(process.execPath, [
        cli,
        'inject',
        '-f',
        join(examplesDir, name, 'deployment.yaml'),
      ]);
      assert.equal(result.code, 0, result.stderr);
      const [deployment] = loadAllYaml(result.stdout) as V1Deployment[];
      const pod = deployment?.spec?.template.spec;
      assert.deepEqual(
        pod?.initContainers?.map((container) => container.name),
        ['smk-agent-init', ...(name === 'injection-smk' ? ['smk-agent-refresh'] : [])],
        name,
      );
      const namespace = await bed.newNamespace(`example-${name}-injected`);
      await applyExample(bed.kubeConfig, name, namespace);
      const client = KubernetesObjectApi.makeApiClient(bed.kubeConfig);
      assert.ok(deployment?.metadata);
      deployment.metadata.namespace = namespace;
      await client.patch(
        deployment as KubernetesObject,
        undefined,
        'All',
        'smk-examples',
        true,
        PatchStrategy.ServerSideApply,
      );
    }
  });

  it('migration-eso: smk convert prints the committed SecretSync, and the API server keeps every field of it', async () => {
    const result = await runCommand(process.execPath, [
      cli,
      'convert',
      '-f',
      join(examplesDir, 'migration-eso', 'eso'),
    ]);
    assert.equal(result.code, 0, result.stderr);
    const printed = loadAllYaml(result.stdout) as KubernetesObject[];
    const committed = (await readExample('migration-eso')).filter(
      ({ object }) => object.kind === 'SecretSync',
    );
    assert.deepEqual(
      printed,
      committed.map(({ object }) => object),
      'examples/migration-eso/secretsync.yaml is the output',
    );
    const namespace = await bed.newNamespace('example-migration-eso');
    const client = KubernetesObjectApi.makeApiClient(bed.kubeConfig);
    for (const object of printed) {
      object.metadata = { ...object.metadata, namespace };
      await client.patch(object, undefined, undefined, 'smk-examples', true, PatchStrategy.ServerSideApply);
    }
    const stored = (await bed.kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: 'smk.dev',
      version: 'v1alpha1',
      plural: 'secretsyncs',
      namespace,
      name: 'orders-db',
    })) as { spec: Record<string, unknown> };
    // Nothing pruned: every field the converter wrote is one the CRD knows. The CRD adds its
    // defaults for fields the converter left out; those are not the converter's.
    const crdDefaults: Record<string, unknown> = { refreshPolicy: 'Periodic' };
    const written = (printed[0] as unknown as { spec: Record<string, unknown> }).spec;
    const kept = Object.fromEntries(
      Object.entries(stored.spec).filter(([key, value]) => key in written || crdDefaults[key] !== value),
    );
    assert.deepEqual(kept, written);
  });

  it('csi-ascp for real: the CSI provider mounts dbusername, dbpassword and foobar for its pod', async () => {
    const user = await ensureSecret(
      'eu-west-1',
      'MySecret-00AACC',
      JSON.stringify({ user: { username: 'john.doe', password: '123456' } }),
    );
    const whole = await ensureSecret('eu-west-1', 'MySecret2-00AABB', 'example whole value');
    const namespace = await bed.newNamespace('example-csi');
    await applyExample(bed.kubeConfig, 'csi-ascp', namespace);
    const work = await mkdtemp(join(tmpdir(), 'smk-example-csi-'));
    let provider: CsiProvider | undefined;
    try {
      provider = await startCsiProvider({
        providerVolume: join(work, 'providers'),
        providerName: 'aws',
        kubeConfig: bed.kubeConfig,
        awsEndpoint: moto.endpoint,
        environmentRegion: 'us-east-1',
        logger: silentLogger(),
      });
      const pod = await bed.kubeConfig
        .makeApiClient(CoreV1Api)
        .readNamespacedPod({ namespace, name: 'test-secrets' });
      const spc = (await bed.kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
        group: 'secrets-store.csi.x-k8s.io',
        version: 'v1',
        plural: 'secretproviderclasses',
        namespace,
        name: 'aws-secrets',
      })) as { spec: { parameters: Record<string, string> } };
      const token = await bed.serviceAccountToken(namespace, 'default', 'sts.amazonaws.com');
      const client = connectProvider(provider.socketPath);
      try {
        const reply = await client.mount(mountRequestFor(pod, spc.spec.parameters, token));
        const files = Object.fromEntries(
          reply.files.map((file) => [file.path, Buffer.from(file.contents).toString('utf8')]),
        );
        const parsed = JSON.parse(user) as { user: { username: string; password: string } };
        assert.equal(files.dbusername, parsed.user.username);
        assert.equal(files.dbpassword, parsed.user.password);
        assert.equal(files.foobar, whole);
      } finally {
        client.close();
      }
    } finally {
      await provider?.close(1000);
      await rm(work, { recursive: true, force: true });
    }
  });

  describe('with the controller (sync + rotation) running for the example namespaces', () => {
    let stack: Stack;
    const namespaces: Record<string, string> = {};

    before(async () => {
      for (const name of [
        'sync-secretproviderclass',
        'sync-secretsync',
        'rotation-mapping',
        'rotation-targets',
        'sync-extract-keys',
        'sync-template',
        'sync-secret-types',
        'sync-discovery',
      ]) {
        namespaces[name] = await bed.newNamespace(`example-${name}`);
      }
      stack = await startStack(bed.kubeConfig, moto.endpoint, {
        namespaces: Object.values(namespaces),
        spc: true,
      });
    });

    after(async () => {
      await stack?.stop();
    });

    const secret = (namespace: string, name: string) =>
      bed.kubeConfig
        .makeApiClient(CoreV1Api)
        .readNamespacedSecret({ namespace, name })
        .catch(() => undefined);

    it('sync-secretproviderclass for real: foosecret carries SECRET_API_KEY', async () => {
      const value = await ensureSecret('us-east-1', 'CSI-driver-test-secret', 'secretkey');
      const namespace = namespaces['sync-secretproviderclass'] ?? '';
      await applyExample(bed.kubeConfig, 'sync-secretproviderclass', namespace);
      const synced = await waitFor('Secret foosecret', 30_000, () => secret(namespace, 'foosecret'));
      assert.deepEqual(Object.keys(synced.data ?? {}), ['SECRET_API_KEY']);
      assert.equal(decode(synced.data?.SECRET_API_KEY), value);
    });

    it('sync-secretsync for real: db-credentials has username and password; the worker Deployment is adopted for rollouts', async () => {
      const value = await ensureSecret(
        'us-east-1',
        'prod/app/db',
        JSON.stringify({ username: 'app', password: 'example-password-1' }),
      );
      const namespace = namespaces['sync-secretsync'] ?? '';
      await applyExample(bed.kubeConfig, 'sync-secretsync', namespace);
      const synced = await waitFor('Secret db-credentials', 30_000, () =>
        secret(namespace, 'db-credentials'),
      );
      assert.deepEqual(Object.keys(synced.data ?? {}).sort(), ['password', 'username']);
      const parsed = JSON.parse(value) as { username: string; password: string };
      assert.equal(decode(synced.data?.username), parsed.username);
      assert.equal(decode(synced.data?.password), parsed.password);
      await waitFor('Deployment worker adopted (smk.dev/rollout-on-sync)', 30_000, () =>
        adopted(bed.kubeConfig, namespace, 'worker'),
      );
    });

    const settings = { host: 'db.internal', port: 5432, username: 'app', password: 'example:pass@word-7' };

    it('sync-extract-keys for real: app-settings has every key of the JSON secret, prefixed', async () => {
      const value = JSON.parse(
        await ensureSecret('us-east-1', 'prod/app/settings', JSON.stringify(settings)),
      ) as typeof settings;
      const namespace = namespaces['sync-extract-keys'] ?? '';
      await applyExample(bed.kubeConfig, 'sync-extract-keys', namespace);
      const synced = await waitFor('Secret app-settings', 30_000, () => secret(namespace, 'app-settings'));
      assert.deepEqual(Object.keys(synced.data ?? {}).sort(), [
        'APP_host',
        'APP_password',
        'APP_port',
        'APP_username',
      ]);
      assert.equal(decode(synced.data?.APP_password), value.password);
      assert.equal(decode(synced.data?.APP_port), String(value.port));
    });

    it('sync-discovery for real: payments has one key per secret under the prefix, none from prod/paymentsX', async () => {
      const db = await ensureSecret('us-east-1', 'prod/payments/db', 'example-payments-db-3');
      await ensureSecret('us-east-1', 'prod/payments/stripe', 'example-payments-stripe-3');
      await ensureSecret('us-east-1', 'prod/paymentsX/other', 'example-payments-other-3');
      const namespace = namespaces['sync-discovery'] ?? '';
      await applyExample(bed.kubeConfig, 'sync-discovery', namespace);
      const synced = await waitFor('Secret payments', 30_000, () => secret(namespace, 'payments'));
      assert.deepEqual(Object.keys(synced.data ?? {}).sort(), ['db', 'stripe']);
      assert.equal(decode(synced.data?.db), db);
    });

    it("sync-template for real: app-dsn holds the rendered DSN and properties; its Deployment's agent gets the same templates", async () => {
      const value = JSON.parse(
        await ensureSecret('us-east-1', 'prod/app/settings', JSON.stringify(settings)),
      ) as typeof settings;
      const namespace = namespaces['sync-template'] ?? '';
      await applyExample(bed.kubeConfig, 'sync-template', namespace);
      const synced = await waitFor('Secret app-dsn', 30_000, () => secret(namespace, 'app-dsn'));
      assert.deepEqual(Object.keys(synced.data ?? {}).sort(), ['DATABASE_URL', 'db.properties']);
      assert.equal(
        decode(synced.data?.DATABASE_URL),
        `postgres://${value.username}:${encodeURIComponent(value.password)}@${value.host}:${value.port}/app`,
      );
      assert.equal(
        decode(synced.data?.['db.properties']),
        `db.user=${value.username}\ndb.password=${value.password}\n`,
      );
      const injected = await runCommand(process.execPath, [
        cli,
        'inject',
        '-f',
        join(examplesDir, 'sync-template', 'deployment.yaml'),
      ]);
      assert.equal(injected.code, 0, injected.stderr);
      const [deployment] = loadAllYaml(injected.stdout) as V1Deployment[];
      const init = deployment?.spec?.template.spec?.initContainers?.[0];
      const templates = init?.env?.find((variable) => variable.name === 'SMK_TEMPLATES');
      assert.deepEqual(Object.keys(JSON.parse(templates?.value ?? '{}') as object).sort(), [
        'DATABASE_URL',
        'db.properties',
      ]);
    });

    it('sync-secret-types for real: web-tls is a labelled, immutable kubernetes.io/tls Secret', async () => {
      const value = JSON.parse(
        await ensureSecret(
          'us-east-1',
          'prod/app/tls',
          JSON.stringify({ 'tls.crt': 'example-cert-PEM-9', 'tls.key': 'example-key-PEM-9' }),
        ),
      ) as Record<string, string>;
      const namespace = namespaces['sync-secret-types'] ?? '';
      await applyExample(bed.kubeConfig, 'sync-secret-types', namespace);
      const synced = await waitFor('Secret web-tls', 30_000, () => secret(namespace, 'web-tls'));
      assert.equal(synced.type, 'kubernetes.io/tls');
      assert.equal(synced.immutable, true);
      assert.equal(synced.metadata?.labels?.app, 'web');
      assert.equal(synced.metadata?.annotations?.team, 'payments');
      assert.equal(decode(synced.data?.['tls.key']), value['tls.key']);
    });

    it('rotation-mapping for real: app-secret synced, the mapping watches and adopts the labelled Deployment', async () => {
      const value = await ensureSecret('us-east-1', 'eks-controller-test-secret', 'testsqssec:oldsecret');
      const namespace = namespaces['rotation-mapping'] ?? '';
      await applyExample(bed.kubeConfig, 'rotation-mapping', namespace);
      await waitFor(
        'app-secret synced',
        30_000,
        async () => decode((await secret(namespace, 'app-secret'))?.data?.VALUE) === value,
      );
      await waitFor('Deployment operatortest adopted', 30_000, () =>
        adopted(bed.kubeConfig, namespace, 'operatortest'),
      );
      const mapping = await waitFor('the mapping Watching', 30_000, async () => {
        const current = await readMapping(bed.kubeConfig, namespace, 'secretsrotationmapping-sample');
        return current.status?.conditions?.find((condition) => condition.type === 'Ready')?.reason ===
          'Watching'
          ? current
          : undefined;
      });
      assert.match(mapping.status?.secretArn ?? '', /:secret:eks-controller-test-secret-/);
    });

    it('rotation-targets for real: the CronJob and the Deployment naming a Secret and a ConfigMap are adopted', async () => {
      await ensureSecret('us-east-1', 'prod/reports-db', 'example-reports-password');
      const namespace = namespaces['rotation-targets'] ?? '';
      // api-tls comes from another tool in real life; here, a stand-in.
      await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedSecret({
        namespace,
        body: {
          metadata: { name: 'api-tls' },
          data: { 'tls.crt': Buffer.from('stand-in').toString('base64') },
        },
      });
      await applyExample(bed.kubeConfig, 'rotation-targets', namespace);
      const deployment = await waitFor(
        'Deployment api adopted for its Secret and ConfigMap',
        30_000,
        async () => {
          const read = await bed.kubeConfig
            .makeApiClient(AppsV1Api)
            .readNamespacedDeployment({ namespace, name: 'api' });
          const record = JSON.parse(
            read.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '{}',
          ) as Record<string, string>;
          return record['Secret/api-tls'] && record['ConfigMap/api-config'] ? record : undefined;
        },
      );
      assert.deepEqual(Object.keys(deployment).sort(), ['ConfigMap/api-config', 'Secret/api-tls']);
      await waitFor('CronJob nightly-report adopted', 30_000, async () => {
        const cron = await bed.kubeConfig
          .makeApiClient(BatchV1Api)
          .readNamespacedCronJob({ namespace, name: 'nightly-report' });
        return cron.metadata?.annotations?.['smk.dev/rolled-versions'] !== undefined;
      });
    });
  });

  it('helm/values-eks.yaml renders with the chart: every role, the IRSA role and the rotation queue', async () => {
    const values = join(examplesDir, 'helm', 'values-eks.yaml');
    const { objects } = await renderChart({ release: 'smk', namespace: 'smk-system', valuesFiles: [values] });
    const controller = JSON.stringify(find(objects, 'Deployment', 'smk-controller'));
    assert.match(
      controller,
      /--rotation-queue-url=https:\/\/sqs\.eu-west-1\.amazonaws\.com\/111122223333\/smk-rotation-events/,
    );
    const account = find(objects, 'ServiceAccount', 'smk-controller') as {
      metadata: { annotations?: Record<string, string> };
    };
    assert.equal(
      account.metadata.annotations?.['eks.amazonaws.com/role-arn'],
      'arn:aws:iam::111122223333:role/smk-controller',
    );
    find(objects, 'DaemonSet', 'smk-csi-provider');
    find(objects, 'Deployment', 'smk-webhook');
    assert.match(await readFile(values, 'utf8'), /helm install smk deploy\/helm\/smk/);
  });

  describe('cluster-secret-sync for real', () => {
    let manager: Manager;

    before(async () => {
      const clients = new AwsClients({ endpoint: moto.endpoint, maxAttempts: 1, callTimeoutMs: 5_000 });
      const cache = new SecretCache();
      manager = createManager({ kubeConfig: bed.kubeConfig, logger: silentLogger() });
      addClusterSyncController(manager, {
        identities: createIdentityResolver({
          serviceAccounts: createServiceAccounts(bed.kubeConfig),
          makeReader: (identity) => coalescingReader(createSecretReader(identity, { cache, clients })),
        }),
        defaultRegion: 'us-east-1',
      });
      await manager.start();
    });

    after(async () => {
      await KubernetesObjectApi.makeApiClient(bed.kubeConfig)
        .delete({
          apiVersion: 'smk.dev/v1alpha1',
          kind: 'ClusterSecretSync',
          metadata: { name: 'shared-ca' },
        })
        .catch(() => undefined);
      await manager?.stop(2_000);
    });

    it('shared-ca lands in the labelled namespace, not in the other one', async () => {
      const value = await ensureSecret('us-east-1', 'shared/ca-bundle', 'example-ca-bundle');
      const core = bed.kubeConfig.makeApiClient(CoreV1Api);
      const labelled = await bed.newNamespace('example-cluster-secret-sync');
      const other = await bed.newNamespace('example-cluster-secret-sync-other');
      await core.patchNamespace(
        { name: labelled, body: { metadata: { labels: { 'example.com/shared-ca': 'true' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await applyExample(bed.kubeConfig, 'cluster-secret-sync', other);
      await applyExample(bed.kubeConfig, 'cluster-secret-sync', labelled);
      const synced = await waitFor('Secret shared-ca', 30_000, () =>
        core.readNamespacedSecret({ namespace: labelled, name: 'shared-ca' }).catch(() => undefined),
      );
      assert.equal(decode(synced.data?.['ca.crt']), value);
      const status = await waitFor('ClusterSecretSync Ready', 30_000, async () => {
        const object = (await bed.kubeConfig.makeApiClient(CustomObjectsApi).getClusterCustomObject({
          group: 'smk.dev',
          version: 'v1alpha1',
          plural: 'clustersecretsyncs',
          name: 'shared-ca',
        })) as {
          status?: { namespaces?: { namespace: string; ready: boolean }[] };
        };
        return object.status?.namespaces?.some((entry) => entry.namespace === labelled && entry.ready)
          ? object.status
          : undefined;
      });
      assert.equal(
        status.namespaces?.some((entry) => entry.namespace === other),
        false,
        'the unlabelled namespace is not selected',
      );
      assert.equal(
        await core.readNamespacedSecret({ namespace: other, name: 'shared-ca' }).catch(() => undefined),
        undefined,
      );
    });
  });
});
