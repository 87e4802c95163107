/**
 * Issue 14, finding 10 (first part): rotation watches secrets with the controller's own role, and
 * a tenant pointing a SecretsRotationMapping (or `smk.dev/rollout-on`, or a SecretSync) at another
 * team's secret got its ARN, current version and change times in its own objects — and learnt when
 * it rotated from its own Deployment being rolled. A namespace is now shown, and rolled for, only
 * what one of its own identities may DescribeSecret. The tenant acts with its own namespace's RBAC;
 * its ServiceAccount's role is refused by AWS (the proxy refuses its access key: moto does not
 * evaluate resource policies); a second account of the same namespace whose role may read its own
 * secret is the control that shows the controller did act.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { sessionNameFor } from '../../src/aws/identity.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  awsClients,
  createDeployment,
  createMapping,
  createSecret,
  createSecretSync,
  createServiceAccount,
  eventReasons,
  installCrds,
  putSecret,
  readDeployment,
  readMapping,
  roleArn,
  type Stack,
  sleep,
  startStack,
  waitFor,
} from './harness.ts';

let bed: TestBed;
let proxy: AwsProxy;
const moto = connectMoto();
let aws: ReturnType<typeof awsClients>;

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

/** A user with rights only in `namespace`: mappings, Deployments, SecretSyncs, and reading events. */
async function tenantIn(namespace: string): Promise<KubeConfig> {
  const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: 'team' },
      rules: [
        {
          apiGroups: ['awssecretsoperator.secretoperator'],
          resources: ['secretsrotationmappings'],
          verbs: ['*'],
        },
        { apiGroups: ['apps'], resources: ['deployments'], verbs: ['*'] },
        { apiGroups: ['smk.dev'], resources: ['secretsyncs'], verbs: ['*'] },
        { apiGroups: [''], resources: ['events'], verbs: ['get', 'list'] },
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

const restartedAt = async (namespace: string, name: string): Promise<string | undefined> =>
  (await readDeployment(bed.kubeConfig, namespace, name)).spec?.template?.metadata?.annotations?.[
    'smk.dev/restartedAt'
  ];

const rolledVersions = async (namespace: string, name: string): Promise<string> =>
  (await readDeployment(bed.kubeConfig, namespace, name)).metadata?.annotations?.[
    'smk.dev/rolled-versions'
  ] ?? '';

describe('rotation shows a namespace only what its own identities may describe', () => {
  it("another team's secret: no ARN, version or change in the tenant's mapping, no rollout, no re-sync stamp", async () => {
    const ns = await bed.newNamespace('rot-tenant');
    const victim = `victim-of-${ns}/db`;
    const victimArn = await createSecret(aws.secrets, victim, 'victim-value-1x9Q');
    const ownName = `${ns}/own`;
    const ownArn = await createSecret(aws.secrets, ownName, 'own-value-1x9Q');

    // ServiceAccount app: the tenant's role, which AWS refuses. ServiceAccount reader: allowed.
    await createServiceAccount(bed.kubeConfig, ns, 'tenant-refused');
    await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
      namespace: ns,
      body: {
        metadata: { name: 'reader', annotations: { 'eks.amazonaws.com/role-arn': roleArn('tenant-reader') } },
      },
    });
    const stack: Stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    try {
      const refused = await stack.clients.credentials({
        kind: 'webIdentity',
        roleArn: roleArn('tenant-refused'),
        subject: `${ns}/app`,
        sessionName: sessionNameFor(ns, 'app'),
        token: () => bed.serviceAccountToken(ns, 'app', 'sts.amazonaws.com'),
      })();
      proxy.refuseAccessKey(refused.accessKeyId);

      const tenant = await tenantIn(ns);
      await createMapping(tenant, ns, 'spy', victimArn, { spy: 'yes' });
      await createDeployment(tenant, ns, 'spy', { labels: { spy: 'yes' } });
      await createDeployment(tenant, ns, 'watcher', {
        labels: { watcher: 'yes' },
        annotations: { 'smk.dev/rollout-on': victimArn },
      });
      await createSecretSync(tenant, ns, 'grab', victimArn, 'grabbed');
      // The control: the same namespace, an account whose role may describe the namespace's own secret.
      await createMapping(tenant, ns, 'own', ownArn, { own: 'yes' });
      await createDeployment(tenant, ns, 'own', { labels: { own: 'yes' }, serviceAccountName: 'reader' });

      // Under load the first permission check may fail for a passing reason; it is asked again
      // within seconds by itself (permissions.ts), so the deadline leaves room for a few re-asks.
      const own = await waitFor('the control mapping Watching', 60_000, async () => {
        const status = (await readMapping(tenant, ns, 'own')).status;
        if (status?.conditions?.[0]?.reason === 'Watching') return status;
        // Thrown, so a timeout names what was seen last.
        throw new Error(`conditions: ${JSON.stringify(status?.conditions ?? [])}`);
      });
      assert.equal(own.secretArn, ownArn);
      await waitFor('the control Deployment adopted', 30_000, async () =>
        (await rolledVersions(ns, 'own')).includes(ownArn),
      );

      const spy = await waitFor('the tenant mapping judged', 30_000, async () => {
        const status = (await readMapping(tenant, ns, 'spy')).status;
        return status?.conditions?.[0] ? status : undefined;
      });
      const described = await aws.secrets.send(new DescribeSecretCommand({ SecretId: victim }));
      const versions = Object.keys(described.VersionIdsToStages ?? {});
      assert.equal(spy.conditions?.[0]?.reason, 'NotPermitted', JSON.stringify(spy.conditions));
      assert.equal(spy.secretArn, undefined, 'no ARN');
      assert.equal(spy.currentVersion, undefined, 'no version');
      for (const version of versions) assert.doesNotMatch(JSON.stringify(spy), new RegExp(version));
      await sleep(1_000); // the workloads were planned with the control's
      assert.doesNotMatch(await rolledVersions(ns, 'spy'), new RegExp(victimArn), 'spy not adopted for it');
      assert.doesNotMatch(await rolledVersions(ns, 'watcher'), new RegExp(victimArn), 'watcher neither');

      // Both secrets rotate; one poll finds both (and runs every change's sinks before it returns).
      await putSecret(aws.secrets, victim, 'victim-value-2x9Q');
      await putSecret(aws.secrets, ownName, 'own-value-2x9Q');
      await stack.rotation.detector.poll();
      await waitFor(
        'the control Deployment rolled',
        15_000,
        async () => (await restartedAt(ns, 'own')) !== undefined,
      );
      await sleep(1_000); // rollouts of one change run together (same debounce)
      assert.equal(await restartedAt(ns, 'spy'), undefined, 'the mapping rolled nothing');
      assert.equal(await restartedAt(ns, 'watcher'), undefined, 'smk.dev/rollout-on rolled nothing');
      const after = (await readMapping(tenant, ns, 'spy')).status;
      assert.equal(after?.lastChange, undefined, 'no change shown');
      assert.equal(after?.conditions?.[0]?.reason, 'NotPermitted');
      const grab = (await tenant.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
        group: 'smk.dev',
        version: 'v1alpha1',
        plural: 'secretsyncs',
        namespace: ns,
        name: 'grab',
      })) as { metadata?: { annotations?: Record<string, string> } };
      assert.equal(
        grab.metadata?.annotations?.['smk.dev/force-sync'],
        undefined,
        'no re-sync stamp with the version',
      );
      for (const name of ['spy', 'watcher']) {
        assert.ok(!(await eventReasons(tenant, ns, name)).includes('Normal/RolloutRestarted'), name);
      }
      assert.ok(!(await eventReasons(tenant, ns, 'spy')).includes('Normal/WorkloadRestarted'));
      proxy.allowAccessKey(refused.accessKeyId);
    } finally {
      await stack.stop();
    }
  });
});

describe('a passing fault at the first permission check', () => {
  it('does not leave the namespace unshown: the check is asked again by itself and the mapping watches', async () => {
    const ns = await bed.newNamespace('rot-tenant-fault');
    const ownName = `${ns}/own`;
    const ownArn = await createSecret(aws.secrets, ownName, 'own-value-7k2P');
    await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
      namespace: ns,
      body: {
        metadata: { name: 'reader', annotations: { 'eks.amazonaws.com/role-arn': roleArn('tenant-reader') } },
      },
    });
    const stack: Stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    try {
      // The reader's own session (the one the controller's cache holds): its first DescribeSecret,
      // every SDK attempt of it, answers 503.
      const reader = await stack.clients.credentials({
        kind: 'webIdentity',
        roleArn: roleArn('tenant-reader'),
        subject: `${ns}/reader`,
        sessionName: sessionNameFor(ns, 'reader'),
        token: () => bed.serviceAccountToken(ns, 'reader', 'sts.amazonaws.com'),
      })();
      proxy.addFault({
        fault: { kind: 'status', status: 503 },
        api: 'DescribeSecret',
        accessKeyId: reader.accessKeyId,
        times: 3,
      });
      const tenant = await tenantIn(ns);
      await createMapping(tenant, ns, 'own', ownArn, { own: 'yes' });
      await createDeployment(tenant, ns, 'own', { labels: { own: 'yes' }, serviceAccountName: 'reader' });
      // Nothing changes in the namespace after this: only the re-ask can bring the answer.
      const own = await waitFor('the mapping Watching after the fault passed', 30_000, async () => {
        const status = (await readMapping(tenant, ns, 'own')).status;
        if (status?.conditions?.[0]?.reason === 'Watching') return status;
        throw new Error(`conditions: ${JSON.stringify(status?.conditions ?? [])}`);
      });
      assert.equal(own.secretArn, ownArn);
      const failed = proxy
        .calls()
        .filter((call) => call.accessKeyId === reader.accessKeyId && call.api === 'DescribeSecret');
      assert.ok(
        failed.filter((call) => call.outcome === 503).length >= 3,
        `the fault was met: ${JSON.stringify(failed.map((call) => call.outcome))}`,
      );
    } finally {
      proxy.clearFaults();
      await stack.stop();
    }
  });
});
