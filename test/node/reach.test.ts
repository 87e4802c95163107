/**
 * Reach with real pods (issue 16): a ClusterSecretSync's Secret reaches the pods of each labelled
 * namespace and no other; role chaining gets the other account's value into a pod both through
 * the injected agent and through a SecretSync, and moto shows both AssumeRole calls; a CronJob
 * reading a synced Secret has its Job template restarted after a rotation, so its next Job prints
 * the new value; a Deployment with Stakater Reloader's annotation (chart value
 * controller.rotation.reloaderAnnotations) rolls when a Secret smk did not write changes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DescribeSecretCommand, ResourceNotFoundException } from '@aws-sdk/client-secrets-manager';
import {
  BatchV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Container,
  type V1CronJob,
  type V1Pod,
} from '@kubernetes/client-node';
import { sessionNameFor } from '../../src/aws/identity.ts';
import { connectMoto } from '../harness/moto.ts';
import { createSecretInOtherAccount, otherAccountRole } from '../harness/other-account.ts';
import {
  createIrsaServiceAccount,
  describePods,
  execInPod,
  installSmk,
  isNotFound,
  type NodeTestWorld,
  nodeTestWorld,
  podEnv,
  podLog,
  readyPods,
  recordTiming,
  secondsSince,
  upsertSecret,
  waitFor,
  waitForReadyPod,
} from './harness.ts';

let test: NodeTestWorld;
const moto = connectMoto();
/** The IRSA role of the workloads' ServiceAccounts (moto evaluates no policy: any role reads its own account). */
const appRole = 'arn:aws:iam::123456789012:role/app';
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

before(async () => {
  test = await nodeTestWorld();
  await installSmk(test);
});
after(async () => {
  await test.finish();
});

const custom = () => test.kubeConfig.makeApiClient(CustomObjectsApi);
const batch = () => test.kubeConfig.makeApiClient(BatchV1Api);
const smkGroup = { group: 'smk.dev', version: 'v1alpha1' } as const;

async function createSecretSync(
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await custom().createNamespacedCustomObject({
    ...smkGroup,
    plural: 'secretsyncs',
    namespace,
    body: { apiVersion: 'smk.dev/v1alpha1', kind: 'SecretSync', metadata: { name }, spec },
  });
}

/** A busybox container that gets env `name` from key `key` of Secret `secret`, and idles. */
function envReader(name: string, secret: string, key: string): V1Container {
  return {
    name: 'app',
    image: 'busybox:1.28',
    command: ['sh', '-c', 'sleep 3600'],
    env: [{ name, valueFrom: { secretKeyRef: { name: secret, key } } }],
  };
}

/** Waits for the Secret to exist (a pod started before it would only sit in CreateContainerConfigError). */
async function waitForSecret(namespace: string, name: string, timeoutMs = 120_000): Promise<void> {
  await waitFor(
    `Secret ${namespace}/${name}`,
    timeoutMs,
    async () => {
      try {
        await test.core.readNamespacedSecret({ namespace, name });
        return true;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    500,
  );
}

/** Adds the message of `describePods` (pod states and events) to a failed wait's error. */
async function withPods(namespace: string, error: unknown, extra = ''): Promise<never> {
  throw new Error(
    `${error instanceof Error ? error.message : String(error)}\n${extra}${await describePods(test, namespace)}`,
    { cause: error },
  );
}

describe('reach on a real node', () => {
  it('ClusterSecretSync: each labelled namespace gets the Secret and its pod reads the value; an unlabelled one gets nothing until labelled in', async () => {
    const run = hex(4);
    const selectorLabel = `reach.smk.dev/run-${run}`;
    const awsName = `node-reach/cluster-${run}`;
    const value = `cluster-${hex(6)}`;
    await upsertSecret(test.secretsManager, awsName, value);
    const labelled = [await test.node.bed.newNamespace('css-a'), await test.node.bed.newNamespace('css-b')];
    const unlabelled = await test.node.bed.newNamespace('css-none');
    // Every namespace has the ServiceAccount the object reads as: only the label differs.
    for (const namespace of [...labelled, unlabelled])
      await createIrsaServiceAccount(test, namespace, 'app', appRole);
    const label = (namespace: string) =>
      test.core.patchNamespace(
        { name: namespace, body: { metadata: { labels: { [selectorLabel]: 'in' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    for (const namespace of labelled) await label(namespace);
    const name = `node-reach-${run}`;
    const started = performance.now();
    await custom().createClusterCustomObject({
      ...smkGroup,
      plural: 'clustersecretsyncs',
      body: {
        apiVersion: 'smk.dev/v1alpha1',
        kind: 'ClusterSecretSync',
        metadata: { name },
        spec: {
          namespaceSelector: { matchLabels: { [selectorLabel]: 'in' } },
          serviceAccountRef: { name: 'app' },
          objects: [{ objectName: awsName, objectType: 'secretsmanager', objectAlias: 'password' }],
          target: { name: 'shared' },
          refreshInterval: '1h',
        },
      },
    });
    try {
      type Status = { namespaces?: { namespace: string; ready: boolean; reason: string }[] };
      let seen: Status | undefined;
      const status = await waitFor(
        'the ClusterSecretSync synced into both labelled namespaces',
        120_000,
        async () => {
          const object = (await custom().getClusterCustomObject({
            ...smkGroup,
            plural: 'clustersecretsyncs',
            name,
          })) as { status?: Status };
          seen = object.status;
          const entries = seen?.namespaces ?? [];
          return labelled.every((namespace) => entries.some((e) => e.namespace === namespace && e.ready))
            ? seen
            : undefined;
        },
        500,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(seen)}`, {
          cause: error,
        });
      });
      recordTiming('ClusterSecretSync create → synced in 2 namespaces', secondsSince(started));
      assert.deepEqual(
        (status.namespaces ?? []).map((entry) => entry.namespace).sort(),
        [...labelled].sort(),
        'the status names the labelled namespaces only',
      );

      for (const namespace of labelled) {
        const created = performance.now();
        await test.core.createNamespacedPod({
          namespace,
          body: {
            metadata: { name: 'reader', labels: { app: 'reader' } },
            spec: {
              serviceAccountName: 'app',
              terminationGracePeriodSeconds: 1,
              containers: [envReader('PASSWORD', 'shared', 'password')],
            },
          },
        });
        const pod = await waitForReadyPod(test, namespace, 'app=reader');
        recordTiming('ClusterSecretSync reader pod create→Ready', secondsSince(created));
        assert.equal(await podEnv(test, namespace, pod, 'app', 'PASSWORD'), value, `the pod in ${namespace}`);
      }
      await assert.rejects(
        test.core.readNamespacedSecret({ namespace: unlabelled, name: 'shared' }),
        (error: unknown) => isNotFound(error),
        'the unlabelled namespace has no Secret shared',
      );
      // Only the label kept it out: labelled in, the same namespace gets the Secret.
      const labelledIn = performance.now();
      await label(unlabelled);
      await waitForSecret(unlabelled, 'shared');
      recordTiming('ClusterSecretSync namespace labelled in → Secret', secondsSince(labelledIn));
    } finally {
      await custom().deleteClusterCustomObject({ ...smkGroup, plural: 'clustersecretsyncs', name });
    }
  });

  it("role chaining: the injected agent and a SecretSync read the other account's secret through the second role, in one pod", async () => {
    const namespace = await test.node.bed.newNamespace('chain');
    const secretName = `node-chain-${hex(4)}`;
    const value = `chained-${hex(6)}`;
    await createSecretInOtherAccount(moto.endpoint, secretName, value);
    // Only a session of the second role finds it: the workload's own account has no such secret.
    await assert.rejects(
      test.secretsManager.send(new DescribeSecretCommand({ SecretId: secretName })),
      ResourceNotFoundException,
    );
    await createIrsaServiceAccount(test, namespace, 'app', appRole);
    const agentExternalId = `agent-${hex(4)}`;
    const syncExternalId = `sync-${hex(4)}`;
    await moto.recorder.reset();
    await moto.recorder.start();
    let recorded: Awaited<ReturnType<typeof moto.recorder.download>>;
    const started = performance.now();
    try {
      await createSecretSync(namespace, 'chained', {
        serviceAccountName: 'app',
        assumeRole: { roleArn: otherAccountRole, externalId: syncExternalId },
        objects: [{ objectName: secretName, objectType: 'secretsmanager', objectAlias: 'VALUE' }],
      });
      await waitForSecret(namespace, 'chained');
      recordTiming('role chaining SecretSync create → Secret', secondsSince(started));
      await test.apps.createNamespacedDeployment({
        namespace,
        body: {
          metadata: { name: 'app' },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: 'chain' } },
            template: {
              metadata: {
                labels: { app: 'chain' },
                annotations: {
                  'smk.dev/inject': 'true',
                  'smk.dev/objects': `- objectName: ${secretName}\n  objectType: secretsmanager\n  objectAlias: chained\n`,
                  'smk.dev/assume-role-arn': otherAccountRole,
                  'smk.dev/assume-role-external-id': agentExternalId,
                },
              },
              spec: {
                serviceAccountName: 'app',
                terminationGracePeriodSeconds: 1,
                containers: [envReader('VALUE', 'chained', 'VALUE')],
              },
            },
          },
        },
      });
      const pod = await waitForReadyPod(test, namespace, 'app=chain');
      recordTiming('role chaining injected Deployment apply→Ready', secondsSince(started));
      const name = pod.metadata?.name ?? '';
      assert.equal(
        await execInPod(test, namespace, name, 'app', ['cat', '/var/run/secrets/smk/chained']),
        value,
        "the agent's file",
      );
      assert.equal(
        await podEnv(test, namespace, pod, 'app', 'VALUE'),
        value,
        "the SecretSync's Secret, as env",
      );
      recorded = await moto.recorder.download();
    } finally {
      await moto.recorder.stop();
    }

    // moto shares one recording with every caller: pick each AssumeRole by its own external id.
    const assumed = recorded
      .filter((call) => call.api === 'AssumeRole')
      .map((call) => ({ call, form: new URLSearchParams(call.body) }));
    const byExternalId = (externalId: string) =>
      assumed.filter(({ form }) => form.get('ExternalId') === externalId);
    const agent = byExternalId(agentExternalId);
    assert.ok(agent.length >= 1, 'the agent sent AssumeRole with its external id');
    for (const { form } of agent) {
      assert.equal(form.get('RoleArn'), otherAccountRole);
      assert.equal(form.get('RoleSessionName'), 'smk.agent');
    }
    const sync = byExternalId(syncExternalId);
    assert.ok(sync.length >= 1, 'the controller sent AssumeRole with the SecretSync’s external id');
    for (const { form } of sync) {
      assert.equal(form.get('RoleArn'), otherAccountRole);
      assert.equal(form.get('RoleSessionName'), sessionNameFor(namespace, 'app'));
    }
    // The first link is the workload's own role: the pod's and the ServiceAccount's web identity.
    const ownSessions = recorded
      .filter((call) => call.api === 'AssumeRoleWithWebIdentity')
      .map((call) => new URLSearchParams(call.body))
      .filter((form) => form.get('RoleArn') === appRole);
    assert.ok(ownSessions.length >= 1, 'the chain starts from the IRSA role of the ServiceAccount');
    // And the second role's keys, not the first's, read the secret.
    const signers = new Set([...agent, ...sync].map(({ call }) => call.accessKeyId));
    const reads = recorded.filter(
      (call) =>
        call.api !== undefined &&
        /GetSecretValue|BatchGetSecretValue/.test(call.api) &&
        call.body.includes(secretName),
    );
    assert.ok(reads.length >= 2, 'both the agent and the controller read the secret');
    for (const read of reads)
      assert.ok(!signers.has(read.accessKeyId), 'a read is signed by the chained keys');
  });

  it('CronJob: after a rotation its Job template is restarted and the next Job prints the new value', async () => {
    const namespace = await test.node.bed.newNamespace('cron');
    const secretName = `node-cron-${hex(4)}`;
    const first = `first-${hex(6)}`;
    const second = `second-${hex(6)}`;
    const { versionId: firstVersion } = await upsertSecret(test.secretsManager, secretName, first);
    await createIrsaServiceAccount(test, namespace, 'app', appRole);
    await createSecretSync(namespace, 'report-db', {
      serviceAccountName: 'app',
      refreshInterval: '1h',
      objects: [{ objectName: secretName, objectType: 'secretsmanager', objectAlias: 'password' }],
    });
    await waitForSecret(namespace, 'report-db');
    await batch().createNamespacedCronJob({
      namespace,
      body: {
        metadata: { name: 'report', annotations: { 'smk.dev/rollout-on-sync': 'true' } },
        spec: {
          // Never due: each Job is created from the template by hand, as `kubectl create job --from=cronjob/report`.
          schedule: '0 3 1 1 *',
          suspend: true,
          jobTemplate: {
            spec: {
              backoffLimit: 0,
              template: {
                metadata: { labels: { app: 'report' } },
                spec: {
                  serviceAccountName: 'app',
                  restartPolicy: 'Never',
                  containers: [
                    {
                      name: 'report',
                      image: 'busybox:1.28',
                      command: ['sh', '-c', 'printf %s "$PASSWORD"'],
                      env: [
                        {
                          name: 'PASSWORD',
                          valueFrom: { secretKeyRef: { name: 'report-db', key: 'password' } },
                        },
                      ],
                    },
                  ],
                },
              },
            },
          },
        },
      },
    });
    const readCron = () => batch().readNamespacedCronJob({ namespace, name: 'report' });
    const restartedAt = (cron: V1CronJob) =>
      cron.spec?.jobTemplate.spec?.template.metadata?.annotations?.['smk.dev/restartedAt'];
    // Adoption records the current version without a restart; only then is a change a change.
    const adopted = await waitFor(
      'the CronJob adopted at the first version',
      120_000,
      async () => {
        const cron = await readCron();
        return (cron.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '').includes(firstVersion)
          ? cron
          : undefined;
      },
      500,
    );
    assert.equal(restartedAt(adopted), undefined, 'adoption restarts nothing');
    assert.equal(await runJobOnce(namespace, adopted, 'report-1'), first);

    const rotated = performance.now();
    const { versionId: secondVersion } = await upsertSecret(test.secretsManager, secretName, second);
    const restarted = await waitFor(
      'the Job template restarted for the second version',
      180_000,
      async () => {
        const cron = await readCron();
        const rolled = cron.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '';
        return restartedAt(cron) !== undefined && rolled.includes(secondVersion) ? cron : undefined;
      },
      500,
    ).catch(async (error: unknown) => {
      const cron = await readCron();
      return withPods(namespace, error, `CronJob report: ${JSON.stringify(cron.metadata?.annotations)}\n`);
    });
    recordTiming('CronJob put-secret-value → Job template restarted', secondsSince(rotated));
    assert.equal(restarted.spec?.suspend, true, 'the schedule is untouched');
    const next = performance.now();
    assert.equal(
      await runJobOnce(namespace, restarted, 'report-2'),
      second,
      'the next Job sees the new value',
    );
    recordTiming('CronJob next Job create → printed the new value', secondsSince(next));
  });

  it("Reloader's annotation (chart value controller.rotation.reloaderAnnotations): a change of a Secret smk did not write rolls the Deployment", async () => {
    await installSmk(test, ['controller.rotation.reloaderAnnotations=true']);
    const namespace = await test.node.bed.newNamespace('reloader');
    const run = hex(4);
    const first = `first-${hex(6)}`;
    const second = `second-${hex(6)}`;
    // The leak scan looks for what moto holds: these values live only in a Kubernetes Secret, so
    // they are put into moto as well, never read from there.
    await upsertSecret(test.secretsManager, `node-reach/reloader-${run}-first`, first);
    await upsertSecret(test.secretsManager, `node-reach/reloader-${run}-second`, second);
    // Written by "another tool": a plain Secret, no smk label, no SecretSync.
    await test.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'app-env', labels: { 'app.kubernetes.io/managed-by': 'another-tool' } },
        stringData: { VALUE: first },
      },
    });
    const started = performance.now();
    await test.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'api', annotations: { 'secret.reloader.stakater.com/reload': 'app-env' } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'api' } },
          template: {
            metadata: { labels: { app: 'api' } },
            spec: { terminationGracePeriodSeconds: 1, containers: [envReader('VALUE', 'app-env', 'VALUE')] },
          },
        },
      },
    });
    const before = await waitForReadyPod(test, namespace, 'app=api');
    recordTiming('Reloader-annotated Deployment apply→Ready', secondsSince(started));
    assert.equal(await podEnv(test, namespace, before, 'app', 'VALUE'), first);
    const readDeployment = () => test.apps.readNamespacedDeployment({ namespace, name: 'api' });
    // Adopted: the Secret's resourceVersion is recorded (without the flag this never happens).
    await waitFor(
      'the Deployment adopted with Secret/app-env recorded',
      120_000,
      async () =>
        (await readDeployment()).metadata?.annotations?.['smk.dev/rolled-versions']?.includes(
          'Secret/app-env',
        ),
      500,
    ).catch(async (error: unknown) => {
      const deployment = await readDeployment();
      return withPods(
        namespace,
        error,
        `Deployment api: ${JSON.stringify(deployment.metadata?.annotations)}\n`,
      );
    });

    const changed = performance.now();
    await test.core.patchNamespacedSecret(
      { namespace, name: 'app-env', body: { stringData: { VALUE: second } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const after = await waitFor(
      'a new Ready pod of the rolled Deployment',
      180_000,
      async () => {
        const ready = await readyPods(test, namespace, 'app=api');
        return ready.find((pod) => pod.metadata?.uid !== before.metadata?.uid);
      },
      500,
    ).catch(async (error: unknown) => {
      const deployment = await readDeployment();
      return withPods(
        namespace,
        error,
        `Deployment api: ${JSON.stringify(deployment.metadata?.annotations)}\n`,
      );
    });
    recordTiming('Reloader-annotated Secret change → new pod Ready', secondsSince(changed));
    assert.equal(
      await podEnv(test, namespace, after, 'app', 'VALUE'),
      second,
      'the new pod has the new value',
    );
    const deployment = await readDeployment();
    assert.ok(deployment.spec?.template.metadata?.annotations?.['smk.dev/restartedAt'], 'smk restarted it');
  });
});

/**
 * `kubectl create job NAME --from=cronjob/…`: a Job from the CronJob's Job template, owned by it;
 * waits for its pod to finish and returns what it printed.
 */
async function runJobOnce(namespace: string, cron: V1CronJob, name: string): Promise<string> {
  const template = cron.spec?.jobTemplate;
  assert.ok(template?.spec, 'the CronJob has a Job template');
  await batch().createNamespacedJob({
    namespace,
    body: {
      metadata: {
        name,
        labels: template.metadata?.labels,
        annotations: { ...template.metadata?.annotations, 'cronjob.kubernetes.io/instantiate': 'manual' },
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'CronJob',
            name: cron.metadata?.name ?? '',
            uid: cron.metadata?.uid ?? '',
            controller: true,
          },
        ],
      },
      spec: template.spec,
    },
  });
  const pod: V1Pod = await waitFor(
    `the pod of Job ${name} to finish`,
    180_000,
    async () => {
      const pods = await test.core.listNamespacedPod({ namespace, labelSelector: `job-name=${name}` });
      return pods.items.find((item) => item.status?.phase === 'Succeeded' || item.status?.phase === 'Failed');
    },
    500,
  ).catch((error: unknown) => withPods(namespace, error));
  assert.equal(pod.status?.phase, 'Succeeded', `the pod of Job ${name} succeeded`);
  return podLog(test, namespace, pod.metadata?.name ?? '', 'report');
}
