/**
 * Rollout targets beyond the apps kinds, through the real API server (issue 16): a CronJob gets
 * the new value in its Job template (the next Job reads it; a running one is left alone), and an
 * Argo Rollout is restarted through its own API (`spec.restartAt`) once its CRD is served.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BatchV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { installCrds as installCrdFiles } from '../harness/crds.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  awsClients,
  cloudTrailEvent,
  createQueue,
  createSecret,
  createServiceAccount,
  eventReasons,
  installCrds,
  putSecret,
  send,
  startStack,
  waitFor,
} from './harness.ts';

const argoCrd = new URL('fixtures/argo-rollout-crd.yaml', import.meta.url);

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

const podSpec = {
  serviceAccountName: 'app',
  restartPolicy: 'Never',
  containers: [{ name: 'job', image: 'registry.invalid/job:1' }],
};

describe('rotation: a CronJob', () => {
  it('is adopted, then its Job template alone is restarted for a new version; the record follows', async () => {
    const ns = await bed.newNamespace('rot-cron');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const secretName = `${ns}/report-db`;
    const arn = await createSecret(aws.secrets, secretName, 'report-1');
    await createServiceAccount(bed.kubeConfig, ns, 'rot-cron');
    const batch = bed.kubeConfig.makeApiClient(BatchV1Api);
    await batch.createNamespacedCronJob({
      namespace: ns,
      body: {
        metadata: { name: 'report', annotations: { 'smk.dev/rollout-on': secretName } },
        spec: {
          schedule: '0 3 1 1 *',
          suspend: true,
          jobTemplate: { spec: { template: { metadata: { labels: { app: 'report' } }, spec: podSpec } } },
        },
      },
    });
    const read = () => batch.readNamespacedCronJob({ namespace: ns, name: 'report' });
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], queueUrl });
    try {
      await waitFor('CronJob adopted', 30_000, async () => {
        const cron = await read();
        return cron.metadata?.annotations?.['smk.dev/rolled-versions'] !== undefined;
      });
      const adopted = await read();
      assert.equal(
        adopted.spec?.jobTemplate.spec?.template.metadata?.annotations?.['smk.dev/restartedAt'],
        undefined,
        'adoption restarts nothing',
      );
      const version = await putSecret(aws.secrets, secretName, 'report-2');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      const restarted = await waitFor('Job template restarted', 15_000, async () => {
        const cron = await read();
        return cron.spec?.jobTemplate.spec?.template.metadata?.annotations?.['smk.dev/restartedAt'] !==
          undefined
          ? cron
          : undefined;
      });
      assert.equal(
        JSON.parse(restarted.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '{}')[arn],
        version,
      );
      assert.deepEqual(
        restarted.spec?.jobTemplate.spec?.template.spec,
        adopted.spec?.jobTemplate.spec?.template.spec,
        'the pods the next Job starts are the same but for the annotation',
      );
      assert.equal(restarted.spec?.suspend, true, 'the schedule is untouched');
      await waitFor('RolloutRestarted event on the CronJob', 10_000, async () =>
        (await eventReasons(bed.kubeConfig, ns, 'report')).includes('Normal/RolloutRestarted'),
      );
    } finally {
      await stack.stop();
    }
  });
});

describe('rotation: an Argo Rollout', () => {
  it('once rollouts.argoproj.io is served: adopted, then restarted through spec.restartAt, its template untouched', async () => {
    await installCrdFiles(bed.kubeConfig, [argoCrd]);
    const ns = await bed.newNamespace('rot-argo');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const secretName = `${ns}/api-key`;
    const arn = await createSecret(aws.secrets, secretName, 'key-1');
    await createServiceAccount(bed.kubeConfig, ns, 'rot-argo');
    const custom = bed.kubeConfig.makeApiClient(CustomObjectsApi);
    const resource = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts', namespace: ns };
    await custom.createNamespacedCustomObject({
      ...resource,
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Rollout',
        metadata: { name: 'api', annotations: { 'smk.dev/rollout-on': secretName } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'api' } },
          strategy: { canary: { steps: [{ setWeight: 20 }] } },
          template: {
            metadata: { labels: { app: 'api' } },
            spec: { ...podSpec, restartPolicy: 'Always' },
          },
        },
      },
    });
    type Rollout = {
      metadata?: { annotations?: Record<string, string> };
      spec?: { restartAt?: string; template?: unknown };
    };
    const read = async () =>
      (await custom.getNamespacedCustomObject({ ...resource, name: 'api' })) as Rollout;
    // 'auto' (the default): the probe finds the CRD served.
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], queueUrl });
    try {
      await waitFor(
        'Rollout adopted',
        30_000,
        async () => (await read()).metadata?.annotations?.['smk.dev/rolled-versions'] !== undefined,
      );
      const adopted = await read();
      assert.equal(adopted.spec?.restartAt, undefined, 'adoption restarts nothing');
      const version = await putSecret(aws.secrets, secretName, 'key-2');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      const restarted = await waitFor('restartAt set', 15_000, async () => {
        const rollout = await read();
        return rollout.spec?.restartAt ? rollout : undefined;
      });
      assert.ok(!Number.isNaN(Date.parse(restarted.spec?.restartAt ?? '')));
      assert.deepEqual(
        restarted.spec?.template,
        adopted.spec?.template,
        'no new revision: the template is unchanged',
      );
      assert.equal(
        JSON.parse(restarted.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '{}')[arn],
        version,
      );
      await waitFor('RolloutRestarted event on the Rollout', 10_000, async () =>
        (await eventReasons(bed.kubeConfig, ns, 'api')).includes('Normal/RolloutRestarted'),
      );
    } finally {
      await stack.stop();
    }
  });
});
