/**
 * ClusterSecretSync (issue 16, "one spec, many namespaces") through the real API server and moto:
 * the namespaces a label selector picks get the Secret and the others do not; labelling a
 * namespace in adds it and labelling it out removes it; a tenant's own Secret of that name is never
 * overwritten; with each namespace's own ServiceAccount reading (mode a), a tenant with rights
 * only in its namespace cannot make smk read with another identity's access; with one
 * ServiceAccount the administrator names (mode b), only listed namespaces receive the values, and
 * they cost one AWS read per refresh, not one per namespace. With deletionPolicy Retain, deleting
 * the object (foreground, the bed's garbage collector running) leaves its Secrets everywhere.
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
import { AwsClients, createSecretReader, SecretCache } from '../../src/aws/index.ts';
import { addClusterSyncController } from '../../src/controller/cluster-sync/controller.ts';
import { coalescingReader } from '../../src/controller/coalesce.ts';
import { createIdentityResolver } from '../../src/controller/identity.ts';
import { createLogger, silentLogger } from '../../src/core/log.ts';
import { withConnectionReuse } from '../../src/kube/client.ts';
import { createManager, type Manager } from '../../src/kube/manager.ts';
import { createServiceAccounts } from '../../src/kube/service-accounts.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { crdFiles, installCrds } from '../harness/crds.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  createAwsSecret,
  createServiceAccount,
  decode,
  readSecret,
  roleArn,
  secretsManager,
  waitFor,
} from './harness.ts';

const moto = connectMoto();
const aws = secretsManager(moto.endpoint);
let bed: TestBed;
let proxy: AwsProxy;
let manager: Manager;
let clients: AwsClients;
/** A label only this run's namespaces carry: other test files' namespaces are never selected. */
const selectorLabel = `cluster-sync.smk.dev/run-${randomBytes(4).toString('hex')}`;
const value = 'cluster-shared-V9k3';
let awsName: string;

interface ClusterSyncResource {
  status?: {
    namespaceCount?: number;
    readyCount?: number;
    namespaces?: { namespace: string; ready: boolean; reason: string; message?: string }[];
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

const custom = () => bed.kubeConfig.makeApiClient(CustomObjectsApi);
const base = { group: 'smk.dev', version: 'v1alpha1', plural: 'clustersecretsyncs' };
const getSync = (name: string) =>
  custom().getClusterCustomObject({ ...base, name }) as Promise<ClusterSyncResource>;

async function createSync(name: string, spec: Record<string, unknown>): Promise<void> {
  await custom().createClusterCustomObject({
    ...base,
    body: { apiVersion: 'smk.dev/v1alpha1', kind: 'ClusterSecretSync', metadata: { name }, spec },
  });
}

async function label(kubeConfig: KubeConfig, namespace: string, present: boolean): Promise<void> {
  await kubeConfig
    .makeApiClient(CoreV1Api)
    .patchNamespace(
      { name: namespace, body: { metadata: { labels: { [selectorLabel]: present ? 'in' : null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
}

async function labelled(prefix: string): Promise<string> {
  const namespace = await bed.newNamespace(prefix);
  await label(bed.kubeConfig, namespace, true);
  return namespace;
}

function entry(resource: ClusterSyncResource | undefined, namespace: string) {
  return resource?.status?.namespaces?.find((item) => item.namespace === namespace);
}

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig, [crdFiles.secretSync, crdFiles.clusterSecretSync]);
  proxy = await startAwsProxy({ target: moto.endpoint });
  awsName = `cluster-sync/${randomBytes(4).toString('hex')}/db`;
  await createAwsSecret(aws, awsName, value);
  clients = new AwsClients({ endpoint: proxy.endpoint, maxAttempts: 1, callTimeoutMs: 5_000 });
  const cache = new SecretCache();
  const identities = createIdentityResolver({
    serviceAccounts: createServiceAccounts(withConnectionReuse(bed.kubeConfig)),
    makeReader: (identity) => coalescingReader(createSecretReader(identity, { cache, clients })),
    roleTtlMs: 500,
  });
  // Every namespace: a ClusterSecretSync chooses among all of them (the selector label keeps this
  // run's choice to its own namespaces).
  manager = createManager({
    kubeConfig: bed.kubeConfig,
    logger: process.env.SMK_TEST_LOG ? createLogger({ level: process.env.SMK_TEST_LOG }) : silentLogger(),
  });
  addClusterSyncController(manager, { identities, defaultRegion: 'us-east-1' });
  await manager.start();
  await waitFor('cluster sync controller ready', 30_000, async () => manager.ready);
});

after(async () => {
  await manager?.stop(2_000);
  await proxy?.stop();
  await bed?.stop();
});

const spec = () => ({
  namespaceSelector: { matchLabels: { [selectorLabel]: 'in' } },
  serviceAccountRef: { name: 'app' },
  objects: [{ objectName: awsName, objectType: 'secretsmanager', objectAlias: 'password' }],
  target: { name: 'db' },
  refreshInterval: '1h',
});

describe('ClusterSecretSync', () => {
  let nsA: string;
  let nsB: string;
  let nsC: string;

  it('writes into each labelled namespace and not into an unlabelled one; labelling adds, unlabelling removes', async () => {
    nsA = await labelled('css-a');
    nsB = await labelled('css-b');
    nsC = await bed.newNamespace('css-c');
    for (const namespace of [nsA, nsB, nsC])
      await createServiceAccount(bed.kubeConfig, namespace, 'app', 'css-team');
    await createSync('css-main', spec());

    const synced = await waitFor('both labelled namespaces synced', 30_000, async () => {
      const resource = await getSync('css-main');
      return resource.status?.readyCount === 2 ? resource : undefined;
    });
    assert.equal(synced.status?.namespaceCount, 2);
    assert.equal(synced.status?.conditions?.[0]?.status, 'True');
    for (const namespace of [nsA, nsB]) {
      const secret = await readSecret(bed.kubeConfig, namespace, 'db');
      assert.equal(decode(secret?.data?.password), value, `${namespace} holds the value`);
      assert.equal(secret?.metadata?.annotations?.['smk.dev/owner'], 'ClusterSecretSync/css-main');
      assert.equal(secret?.metadata?.ownerReferences?.[0]?.kind, 'ClusterSecretSync');
    }
    // The run above completed with the status written: an unselected namespace got nothing.
    assert.equal(entry(synced, nsC), undefined);
    assert.equal(
      await readSecret(bed.kubeConfig, nsC, 'db'),
      undefined,
      'unlabelled namespace has no Secret',
    );

    await label(bed.kubeConfig, nsC, true);
    await waitFor('the newly labelled namespace gets the Secret', 30_000, async () =>
      decode((await readSecret(bed.kubeConfig, nsC, 'db'))?.data?.password) === value ? true : undefined,
    );

    await label(bed.kubeConfig, nsC, false);
    await waitFor('the unlabelled namespace loses the Secret (deletionPolicy Delete)', 30_000, async () =>
      (await readSecret(bed.kubeConfig, nsC, 'db')) === undefined ? true : undefined,
    );
    const after = await waitFor('status back to two namespaces', 30_000, async () => {
      const resource = await getSync('css-main');
      return resource.status?.namespaceCount === 2 ? resource : undefined;
    });
    assert.equal(entry(after, nsC), undefined);
  });

  it('never overwrites a Secret of that name it does not own, and says why in that namespace’s status', async () => {
    const nsD = await bed.newNamespace('css-d');
    await createServiceAccount(bed.kubeConfig, nsD, 'app', 'css-team');
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: nsD,
      body: { metadata: { name: 'db' }, type: 'Opaque', stringData: { password: 'tenant-own' } },
    });
    await label(bed.kubeConfig, nsD, true);
    const refused = await waitFor('the refusal in the status', 30_000, async () => {
      const resource = await getSync('css-main');
      return entry(resource, nsD)?.reason === 'SecretNotOwned' ? resource : undefined;
    });
    assert.match(
      entry(refused, nsD)?.message ?? '',
      new RegExp(`Secret ${nsD}/db exists and was not created by smk`),
    );
    assert.equal(refused.status?.conditions?.[0]?.status, 'False');
    const secret = await readSecret(bed.kubeConfig, nsD, 'db');
    assert.equal(decode(secret?.data?.password), 'tenant-own', 'the tenant Secret is untouched');
    assert.equal(secret?.metadata?.annotations?.['smk.dev/owner'], undefined);
    // Labelled out again: a Secret it does not own is not deleted either.
    await label(bed.kubeConfig, nsD, false);
    await waitFor('namespace D out of the status', 30_000, async () =>
      entry(await getSync('css-main'), nsD) === undefined ? true : undefined,
    );
    assert.equal(decode((await readSecret(bed.kubeConfig, nsD, 'db'))?.data?.password), 'tenant-own');
  });

  it('a tenant with rights only in its namespace can label it in but still reads only as its own identity', async () => {
    const nsT = await bed.newNamespace('css-tenant');
    await createServiceAccount(bed.kubeConfig, nsT, 'app', 'css-tenant-role');
    const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    // A namespace owner: every right a Role in its namespace can give, nothing cluster-wide.
    await rbac.createNamespacedRole({
      namespace: nsT,
      body: {
        metadata: { name: 'namespace-owner' },
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: nsT,
      body: {
        metadata: { name: 'namespace-owner' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'namespace-owner' },
        subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: `tenant-${nsT}` }],
      },
    });
    const tenant = await bed.kubeConfigFor(`tenant-${nsT}`);

    // The tenant points its ServiceAccount at the role namespaces A and B read with. AWS refuses
    // that role to this namespace's token (its trust policy names their subjects only; moto does
    // not check trust, so the proxy refuses the credentials).
    await tenant.makeApiClient(CoreV1Api).patchNamespacedServiceAccount(
      {
        namespace: nsT,
        name: 'app',
        body: { metadata: { annotations: { 'eks.amazonaws.com/role-arn': roleArn('css-team') } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const identityT = {
      kind: 'webIdentity' as const,
      roleArn: roleArn('css-team'),
      subject: `${nsT}/app`,
      sessionName: sessionNameFor(nsT, 'app'),
      token: () => bed.serviceAccountToken(nsT, 'app', 'sts.amazonaws.com'),
    };
    const keyT = (await clients.credentials(identityT)()).accessKeyId;
    proxy.refuseAccessKey(keyT);
    proxy.resetCounts();

    // The tenant opts its own namespace in. RBAC authorises a request on Namespace X as a request
    // in namespace X, so a Role in X with `*` on `*` may update X's labels: a namespace label is
    // no proof of an administrator's choice. Mode (a) does not need one: the namespace still
    // reads only as its own ServiceAccount.
    await label(tenant, nsT, true);

    const denied = await waitFor('the tenant namespace refused', 30_000, async () => {
      const resource = await getSync('css-main');
      return entry(resource, nsT)?.reason === 'AccessDenied' ? resource : undefined;
    });
    assert.equal(entry(denied, nsA)?.ready, true, 'namespace A still synced');
    assert.equal(await readSecret(bed.kubeConfig, nsT, 'db'), undefined, 'the tenant got no Secret');
    assert.ok(
      proxy.count({ accessKeyId: keyT }) > 0,
      'AWS was asked as the tenant namespace’s own identity, not served what A and B read',
    );
    await label(bed.kubeConfig, nsT, false);
  });

  it('deleting the ClusterSecretSync deletes its Secrets (deletionPolicy Delete)', async () => {
    await custom().deleteClusterCustomObject({ ...base, name: 'css-main' });
    for (const namespace of [nsA, nsB]) {
      await waitFor(`Secret in ${namespace} deleted`, 30_000, async () =>
        (await readSecret(bed.kubeConfig, namespace, 'db')) === undefined ? true : undefined,
      );
    }
  });
});

describe('ClusterSecretSync deletionPolicy Retain, with the garbage collector running', () => {
  const core = () => bed.kubeConfig.makeApiClient(CoreV1Api);
  const listed = (namespaces: string[], deletionPolicy: string) => ({
    serviceAccountRef: { name: 'app' },
    namespaces,
    objects: [{ objectName: awsName, objectType: 'secretsmanager', objectAlias: 'password' }],
    target: { name: 'kept' },
    refreshInterval: '1h',
    deletionPolicy,
  });

  async function namespacesWithAccount(prefix: string): Promise<string[]> {
    const names = [await bed.newNamespace(`${prefix}-1`), await bed.newNamespace(`${prefix}-2`)];
    for (const namespace of names) await createServiceAccount(bed.kubeConfig, namespace, 'app', 'css-team');
    return names;
  }

  /**
   * Deletes the ClusterSecretSync in the foreground (the garbage collector removes every dependent
   * before the object goes), with a ConfigMap it owns in each namespace as a witness: once the
   * object and the witnesses are gone, the collector has acted on every dependent it saw.
   */
  async function deleteWithCollector(name: string, namespaces: string[]): Promise<void> {
    const uid = (await getSync(name)) as { metadata?: { uid?: string } };
    for (const namespace of namespaces) {
      await core().createNamespacedConfigMap({
        namespace,
        body: {
          metadata: {
            name: 'gc-witness',
            ownerReferences: [
              {
                apiVersion: 'smk.dev/v1alpha1',
                kind: 'ClusterSecretSync',
                name,
                uid: uid.metadata?.uid ?? '',
              },
            ],
          },
        },
      });
    }
    await custom().deleteClusterCustomObject({ ...base, name, propagationPolicy: 'Foreground' });
    await waitFor(`${name} and its witnesses collected`, 60_000, async () => {
      const object = await getSync(name).catch(() => undefined);
      if (object) return undefined;
      for (const namespace of namespaces) {
        const witness = await core()
          .readNamespacedConfigMap({ namespace, name: 'gc-witness' })
          .catch(() => undefined);
        if (witness) return undefined;
      }
      return true;
    });
  }

  /** As a SecretSync with Retain leaves it: the value, smk's owner marker, no owner reference. */
  async function assertRetained(namespaces: string[], name: string): Promise<void> {
    for (const namespace of namespaces) {
      const secret = await readSecret(bed.kubeConfig, namespace, 'kept');
      assert.equal(decode(secret?.data?.password), value, `${namespace}/kept survived the deletion`);
      assert.deepEqual(
        secret?.metadata?.ownerReferences ?? [],
        [],
        `${namespace}/kept has no owner reference`,
      );
      assert.equal(secret?.metadata?.annotations?.['smk.dev/owner'], `ClusterSecretSync/${name}`);
    }
  }

  it('deleting it (foreground, collector running) leaves its Secrets in every namespace', async () => {
    const namespaces = await namespacesWithAccount('css-keep');
    await createSync('css-keep', listed(namespaces, 'Retain'));
    await waitFor('both namespaces synced', 30_000, async () =>
      (await getSync('css-keep')).status?.readyCount === 2 ? true : undefined,
    );
    await deleteWithCollector('css-keep', namespaces);
    await assertRetained(namespaces, 'css-keep');
  });

  it('a switch from Delete to Retain on a live object drops the owner references, so a later deletion keeps them', async () => {
    const namespaces = await namespacesWithAccount('css-switch');
    await createSync('css-switch', listed(namespaces, 'Delete'));
    await waitFor('both namespaces synced', 30_000, async () =>
      (await getSync('css-switch')).status?.readyCount === 2 ? true : undefined,
    );
    for (const namespace of namespaces) {
      const secret = await readSecret(bed.kubeConfig, namespace, 'kept');
      assert.equal(secret?.metadata?.ownerReferences?.[0]?.kind, 'ClusterSecretSync', 'Delete: owned');
    }
    // The second namespace's sync fails from now on (no identity): its reference must go all the
    // same. Runs are forced until one reports the failure (the identity may be cached briefly).
    const second = namespaces[1] ?? '';
    await core().deleteNamespacedServiceAccount({ namespace: second, name: 'app' });
    let force = 0;
    await waitFor(
      'a run that fails in the second namespace',
      30_000,
      async () => {
        if (entry(await getSync('css-switch'), second)?.ready === false) return true;
        force += 1;
        await custom().patchClusterCustomObject(
          {
            ...base,
            name: 'css-switch',
            body: { metadata: { annotations: { 'smk.dev/force-sync': String(force) } } },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        return undefined;
      },
      500,
    );
    await custom().patchClusterCustomObject(
      { ...base, name: 'css-switch', body: { spec: { deletionPolicy: 'Retain' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitFor('owner references dropped after the switch', 30_000, async () => {
      for (const namespace of namespaces) {
        const secret = await readSecret(bed.kubeConfig, namespace, 'kept');
        if (!secret || (secret.metadata?.ownerReferences ?? []).length > 0) return undefined;
      }
      return true;
    });
    await deleteWithCollector('css-switch', namespaces);
    await assertRetained(namespaces, 'css-switch');
  });
});

describe('ClusterSecretSync as one ServiceAccount the administrator names (mode b)', () => {
  const valueReads = () =>
    proxy.count({ api: 'BatchGetSecretValue' }) + proxy.count({ api: 'GetSecretValue' });

  it('writes into the listed namespaces only, with one AWS read for all of them', async () => {
    const platform = await bed.newNamespace('css-platform');
    await createServiceAccount(bed.kubeConfig, platform, 'reader', 'css-platform-reader');
    // The targets have no ServiceAccount of their own: the administrator's identity reads for them.
    const targets = [
      await bed.newNamespace('css-x'),
      await bed.newNamespace('css-y'),
      await bed.newNamespace('css-z'),
    ];
    // Labelled like mode (a)'s namespaces, but not listed: not selected.
    const bystander = await labelled('css-bystander');
    const objectName = `cluster-sync/${randomBytes(4).toString('hex')}/platform`;
    await createAwsSecret(aws, objectName, 'platform-value-M4q8');
    proxy.resetCounts();

    await createSync('css-platform', {
      namespaces: targets,
      serviceAccountRef: { name: 'reader', namespace: platform },
      objects: [{ objectName, objectType: 'secretsmanager', objectAlias: 'token' }],
      target: { name: 'platform' },
      refreshInterval: '1h',
    });
    const synced = await waitFor('every listed namespace synced', 30_000, async () => {
      const resource = await getSync('css-platform');
      return resource.status?.readyCount === 3 ? resource : undefined;
    });
    assert.match(entry(synced, targets[0] ?? '')?.message ?? '', /role\/css-platform-reader/);
    for (const namespace of targets) {
      assert.equal(
        decode((await readSecret(bed.kubeConfig, namespace, 'platform'))?.data?.token),
        'platform-value-M4q8',
      );
    }
    assert.equal(
      await readSecret(bed.kubeConfig, bystander, 'platform'),
      undefined,
      'a labelled, unlisted namespace',
    );
    assert.equal(valueReads(), 1, 'one read of the object for three namespaces');
    await custom().deleteClusterCustomObject({ ...base, name: 'css-platform' });
  });

  it('the API server refuses a label selector with the administrator’s identity', async () => {
    await assert.rejects(
      createSync('css-platform-selector', {
        namespaceSelector: { matchLabels: { [selectorLabel]: 'in' } },
        namespaces: ['default'],
        serviceAccountRef: { name: 'reader', namespace: 'default' },
        objects: [{ objectName: 'x', objectType: 'secretsmanager' }],
      }),
      (error: { code?: number; body?: string }) =>
        error.code === 422 && /list the target namespaces in namespaces/.test(String(error.body)),
    );
  });

  it('a namespace owner cannot create a ClusterSecretSync', async () => {
    const nsT = await bed.newNamespace('css-owner');
    const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: nsT,
      body: {
        metadata: { name: 'namespace-owner' },
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: nsT,
      body: {
        metadata: { name: 'namespace-owner' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'namespace-owner' },
        subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: `owner-${nsT}` }],
      },
    });
    const owner = await bed.kubeConfigFor(`owner-${nsT}`);
    await assert.rejects(
      owner.makeApiClient(CustomObjectsApi).createClusterCustomObject({
        ...base,
        body: {
          apiVersion: 'smk.dev/v1alpha1',
          kind: 'ClusterSecretSync',
          metadata: { name: `css-${nsT}` },
          spec: {
            namespaces: [nsT],
            serviceAccountRef: { name: 'reader', namespace: 'kube-system' },
            objects: [{ objectName: 'x', objectType: 'secretsmanager' }],
          },
        },
      }),
      (error: { code?: number }) => error.code === 403,
    );
  });
});
