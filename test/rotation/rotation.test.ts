/**
 * Rotation end to end on the real test bed (kube-apiserver + controller manager, so a rollout
 * shows as a new ReplicaSet) and moto (Secrets Manager + SQS): seed 003's scenario with smk's
 * fixes — events confirmed by DescribeSecret, AWSPENDING alone rolls nothing, one rollout per
 * change however often the event comes, mappings stay in their namespace, polling without a
 * queue, and no double rollout across a leader change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import { registry } from '../../src/core/metrics.ts';
import { createObjects, type ObjectRef, type Objects } from '../../src/kube/apply.ts';
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
  createSyncedSpc,
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

      // A new mapping schedules one detector poll shortly after it is seen; let it pass before
      // counting, so the counts below are the event path's alone.
      await waitFor('the detector quiet', 10_000, async () => {
        const polls = proxy.count({ api: 'ListSecrets' });
        await sleep(1_000);
        return proxy.count({ api: 'ListSecrets' }) === polls;
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

describe('rotation: what does not roll, or rolls once', () => {
  it('duplicate, late and out-of-order events and two changes inside the debounce window make one rollout', async () => {
    const ns = await bed.newNamespace('rot-dup');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, {
      namespaces: [ns],
      queueUrl,
      debounceMs: 2_000,
    });
    try {
      const { secretName, arn } = await seedScenario(ns, 'rot-dup');
      const early = new Date(Date.now() - 60_000);
      await putSecret(aws.secrets, secretName, 'second');
      const event = await cloudTrailEvent('PutSecretValue', secretName, arn);
      await send(aws.sqs, queueUrl, event);
      const third = await putSecret(aws.secrets, secretName, 'third');
      for (const body of [
        event,
        event,
        await cloudTrailEvent('PutSecretValue', secretName, arn, early),
        event,
      ]) {
        await send(aws.sqs, queueUrl, body);
      }
      await waitFor(
        'a new ReplicaSet',
        20_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'operatortest')) >= 2,
      );
      await waitFor('queue drained', 10_000, async () => (await queueDepth(aws.sqs, queueUrl)) === 0);
      await sleep(2_500);
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'operatortest'), 2, 'one rollout for both changes');
      assert.equal(await secretValue(bed.kubeConfig, ns, 'app-secret'), 'third');
      const deployment = await readDeployment(bed.kubeConfig, ns, 'operatortest');
      assert.equal(
        JSON.parse(deployment.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '{}')[arn],
        third,
      );
    } finally {
      await stack.stop();
    }
  });

  it('a PutSecretValue that only stages AWSPENDING rolls nothing until AWSCURRENT moves to it', async () => {
    const ns = await bed.newNamespace('rot-pending');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], queueUrl });
    try {
      const { secretName, arn } = await seedScenario(ns, 'rot-pending');
      const before = await readDeployment(bed.kubeConfig, ns, 'operatortest');
      const current = JSON.parse(before.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '{}')[
        arn
      ] as string;
      assert.ok(current);
      const pending = await putSecret(aws.secrets, secretName, 'rotated', ['AWSPENDING']);
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      await waitFor('queue drained', 10_000, async () => (await queueDepth(aws.sqs, queueUrl)) === 0);
      await sleep(2_000);
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'operatortest'), 1, 'AWSPENDING alone: no rollout');
      assert.equal(await secretValue(bed.kubeConfig, ns, 'app-secret'), 'testsqssec:oldsecret');
      assert.equal(
        (await readMapping(bed.kubeConfig, ns, 'secretsrotationmapping-sample')).status?.lastChange,
        undefined,
      );

      await promote(aws.secrets, secretName, pending, current);
      await send(aws.sqs, queueUrl, await cloudTrailEvent('UpdateSecretVersionStage', secretName, arn));
      await waitFor(
        'Secret carries the rotated value',
        15_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'app-secret')) === 'rotated',
      );
      await waitFor(
        'a new ReplicaSet',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'operatortest')) === 2,
      );
      const status = (await readMapping(bed.kubeConfig, ns, 'secretsrotationmapping-sample')).status;
      assert.equal(status?.lastChange?.versionId, pending);
      assert.equal(status?.lastChange?.previousVersionId, current);
      assert.equal(status?.lastChange?.reason, 'UpdateSecretVersionStage');
    } finally {
      await stack.stop();
    }
  });

  it('a mapping in namespace A never touches a matching Deployment in namespace B', async () => {
    const a = await bed.newNamespace('rot-ns-a');
    const b = await bed.newNamespace('rot-ns-b');
    const queueUrl = await createQueue(aws.sqs, `${a}-events`);
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [a, b], queueUrl });
    try {
      await createDeployment(bed.kubeConfig, b, 'operatortest', { labels: { environment: 'operatortest' } });
      const { secretName, arn } = await seedScenario(a, 'rot-ns');
      await putSecret(aws.secrets, secretName, 'new');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      await waitFor(
        'rollout in A',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, a, 'operatortest')) === 2,
      );
      await sleep(1_000);
      assert.equal(await replicaSets(bed.kubeConfig, b, 'operatortest'), 1, 'B was not restarted');
      const inB = await readDeployment(bed.kubeConfig, b, 'operatortest');
      assert.equal(
        inB.metadata?.annotations?.['smk.dev/rolled-versions'],
        undefined,
        'B was not even adopted',
      );
    } finally {
      await stack.stop();
    }
  });
});

describe('rotation: a mapping smk cannot use', () => {
  it('empty Labels (the seed would restart every workload) is refused with a condition and an event', async () => {
    const ns = await bed.newNamespace('rot-badmap');
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    try {
      await createDeployment(bed.kubeConfig, ns, 'web', { labels: { app: 'web' } });
      await createMapping(bed.kubeConfig, ns, 'everything', 'some-secret', {});
      const status = await waitFor('InvalidSpec condition', 15_000, async () => {
        const current = (await readMapping(bed.kubeConfig, ns, 'everything')).status;
        return current?.conditions?.[0]?.reason === 'InvalidSpec' ? current : undefined;
      });
      assert.equal(status.conditions?.[0]?.status, 'False');
      await waitFor('Warning event', 10_000, async () =>
        (await eventReasons(bed.kubeConfig, ns, 'everything')).includes('Warning/InvalidSpec'),
      );
      assert.equal(await adopted(bed.kubeConfig, ns, 'web'), false);
    } finally {
      await stack.stop();
    }
  });

  it("a mapping's Ready condition is on smk_status_condition, and its series go when the mapping is deleted", async () => {
    const ns = await bed.newNamespace('rot-gauge');
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    const series = async (): Promise<Record<string, number>> => {
      const metric = await registry.getSingleMetric('smk_status_condition')?.get();
      return Object.fromEntries(
        (metric?.values ?? [])
          .filter((v) => v.labels.kind === 'SecretsRotationMapping' && v.labels.namespace === ns)
          .map((v) => [`${v.labels.name}/${v.labels.condition}/${v.labels.status}`, v.value]),
      );
    };
    try {
      await createMapping(bed.kubeConfig, ns, 'everything', 'some-secret', {});
      await waitFor('Ready False on the gauge', 15_000, async () =>
        (await series())['everything/Ready/False'] === 1 ? true : undefined,
      );
      assert.deepEqual(await series(), { 'everything/Ready/True': 0, 'everything/Ready/False': 1 });
      await bed.kubeConfig.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({
        group: 'awssecretsoperator.secretoperator',
        version: 'v1',
        plural: 'secretsrotationmappings',
        namespace: ns,
        name: 'everything',
      });
      await waitFor('the series gone', 15_000, async () =>
        Object.keys(await series()).length === 0 ? true : undefined,
      );
    } finally {
      await stack.stop();
    }
  });
});

describe('rotation: detection without events, and across a leader change', () => {
  it('polling alone (no queue) finds the change with ListSecrets and never reads a value itself', async () => {
    const ns = await bed.newNamespace('rot-poll');
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, {
      namespaces: [ns],
      pollIntervalMs: 1_000,
    });
    try {
      const { secretName } = await seedScenario(ns, 'rot-poll');
      proxy.resetCounts();
      await putSecret(aws.secrets, secretName, 'polled');
      await waitFor(
        'Secret updated by the poll path',
        20_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'app-secret')) === 'polled',
      );
      await waitFor(
        'a new ReplicaSet',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'operatortest')) === 2,
      );
      assert.ok(proxy.count({ api: 'ListSecrets', accessKeyId: 'testing' }) >= 1);
      for (const api of ['GetSecretValue', 'BatchGetSecretValue', 'DescribeSecret']) {
        assert.equal(proxy.count({ api, accessKeyId: 'testing' }), 0, `the detector made no ${api} call`);
      }
      await sleep(1_500);
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'operatortest'), 2);
    } finally {
      await stack.stop();
    }
  });

  it('a change made while no controller ran is synced at start, not at the next refresh (1 h)', async () => {
    const ns = await bed.newNamespace('rot-down');
    // No workload reads the Secret: nothing but the detector can notice the synced version is old.
    const secretName = `${ns}/while-down`;
    await createSecret(aws.secrets, secretName, 'before');
    await createServiceAccount(bed.kubeConfig, ns, 'rot-down');
    const first = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    let second: Stack | undefined;
    try {
      await createSecretSync(bed.kubeConfig, ns, 'app', secretName, 'app-secret');
      await waitFor(
        'Secret synced',
        30_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'app-secret')) === 'before',
      );
      await first.stop();
      await putSecret(aws.secrets, secretName, 'changed-while-down');
      // A fresh process: the sync controller skips the recently synced SecretSync (cold start), so
      // only the detector comparing AWS with `status.syncedVersions` can pick the change up now.
      second = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
      await waitFor(
        'Secret updated after the restart',
        15_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'app-secret')) === 'changed-while-down',
      );
    } finally {
      await first.stop().catch(() => undefined);
      await second?.stop();
    }
  });

  it('the leader stops between detecting a change and rolling: the next leader rolls once', async () => {
    const ns = await bed.newNamespace('rot-leader');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const leaderElection = (identity: string) => ({ namespace: ns, name: 'smk-controller', identity });
    const first = await startStack(bed.kubeConfig, proxy.endpoint, {
      namespaces: [ns],
      queueUrl,
      debounceMs: 60_000,
      leaderElection: leaderElection('replica-a'),
    });
    let second: Stack | undefined;
    try {
      await waitFor('replica a leads', 15_000, async () => first.rotation.leading);
      second = await startStack(bed.kubeConfig, proxy.endpoint, {
        namespaces: [ns],
        queueUrl,
        pollIntervalMs: 1_000,
        leaderElection: leaderElection('replica-b'),
      });
      const { secretName, arn } = await seedScenario(ns, 'rot-leader');
      const version = await putSecret(aws.secrets, secretName, 'after-failover');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      await waitFor(
        'replica a saw the change',
        15_000,
        async () =>
          first.rotation.detector
            .observed({ region: 'us-east-1', id: secretName })
            ?.stages.get('AWSCURRENT') === version,
      );
      assert.equal(
        await replicaSets(bed.kubeConfig, ns, 'operatortest'),
        1,
        'a is still inside its debounce window',
      );
      await first.stop();
      const next = second;
      await waitFor('replica b leads', 30_000, async () => next.rotation.leading);
      await waitFor(
        'a new ReplicaSet',
        20_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'operatortest')) === 2,
      );
      assert.equal(await secretValue(bed.kubeConfig, ns, 'app-secret'), 'after-failover');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      await sleep(3_000);
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'operatortest'), 2, 'no second rollout');
    } finally {
      await first.stop().catch(() => undefined);
      await second?.stop();
    }
  });
});

describe('rotation: opt-in by annotation', () => {
  it('rollout-on-sync follows the smk-synced Secret a Deployment reads; rollout-on names secrets for a StatefulSet', async () => {
    const ns = await bed.newNamespace('rot-annot');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], queueUrl });
    try {
      const secretName = `${ns}/db`;
      const arn = await createSecret(aws.secrets, secretName, 'db-1');
      await createServiceAccount(bed.kubeConfig, ns, 'rot-annot');
      await createSecretSync(bed.kubeConfig, ns, 'db', secretName, 'db-env');
      await waitFor(
        'Secret db-env synced',
        30_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'db-env')) === 'db-1',
      );
      await createDeployment(bed.kubeConfig, ns, 'reader', {
        labels: { app: 'reader' },
        secretName: 'db-env',
        annotations: { 'smk.dev/rollout-on-sync': 'true' },
      });
      await createDeployment(bed.kubeConfig, ns, 'bystander', {
        labels: { app: 'bystander' },
        secretName: 'db-env',
      });
      const apps = bed.kubeConfig.makeApiClient(AppsV1Api);
      await apps.createNamespacedStatefulSet({
        namespace: ns,
        body: {
          metadata: { name: 'store', annotations: { 'smk.dev/rollout-on': secretName } },
          spec: {
            serviceName: 'store',
            replicas: 0,
            selector: { matchLabels: { app: 'store' } },
            template: {
              metadata: { labels: { app: 'store' } },
              spec: {
                serviceAccountName: 'app',
                containers: [{ name: 'store', image: 'registry.invalid/store:1' }],
              },
            },
          },
        },
      });
      await waitFor('both adopted', 30_000, async () => {
        const store = await apps.readNamespacedStatefulSet({ namespace: ns, name: 'store' });
        return (
          (await adopted(bed.kubeConfig, ns, 'reader')) &&
          store.metadata?.annotations?.['smk.dev/rolled-versions'] !== undefined
        );
      });
      await putSecret(aws.secrets, secretName, 'db-2');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      await waitFor(
        'reader rolled',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'reader')) === 2,
      );
      assert.equal(
        await secretValue(bed.kubeConfig, ns, 'db-env'),
        'db-2',
        'the Secret was updated before the rollout',
      );
      await waitFor('StatefulSet template restarted', 15_000, async () => {
        const store = await apps.readNamespacedStatefulSet({ namespace: ns, name: 'store' });
        return store.spec?.template?.metadata?.annotations?.['smk.dev/restartedAt'] !== undefined;
      });
      await sleep(1_000);
      assert.equal(
        await replicaSets(bed.kubeConfig, ns, 'bystander'),
        1,
        'a workload that did not opt in is left alone',
      );
      await waitFor('RolloutRestarted event on the StatefulSet', 10_000, async () =>
        (await eventReasons(bed.kubeConfig, ns, 'store')).includes('Normal/RolloutRestarted'),
      );
    } finally {
      await stack.stop();
    }
  });
});

describe('rotation: never onto the old value', () => {
  it('while the re-sync fails the rollout waits (and warns); it happens once the Secret carries the new version', async () => {
    const ns = await bed.newNamespace('rot-wait');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, {
      namespaces: [ns],
      queueUrl,
      syncWaitMs: 1_500,
    });
    try {
      const { secretName, arn } = await seedScenario(ns, 'rot-wait');
      for (const api of ['GetSecretValue', 'BatchGetSecretValue'])
        proxy.addFault({ fault: { kind: 'deny' }, api });
      await proxy.idle();
      await putSecret(aws.secrets, secretName, 'testsqssec:blocked');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      await waitFor('WaitingForSync warning', 15_000, async () =>
        (await eventReasons(bed.kubeConfig, ns, 'operatortest')).includes('Warning/WaitingForSync'),
      );
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'operatortest'), 1, 'no rollout onto the old value');
      assert.equal(await secretValue(bed.kubeConfig, ns, 'app-secret'), 'testsqssec:oldsecret');
      proxy.clearFaults();
      await waitFor(
        'Secret carries the new value',
        30_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'app-secret')) === 'testsqssec:blocked',
      );
      await waitFor(
        'then the rollout',
        45_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'operatortest')) === 2,
      );
    } finally {
      proxy.clearFaults();
      await stack.stop();
    }
  });
});

describe('rotation: the sync leader is another replica', () => {
  it('its cache still holds the old stage when asked to re-sync: the rollout asks again, and rolls once the Secret carries the new version', async () => {
    const ns = await bed.newNamespace('rot-replica');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, {
      namespaces: [ns],
      queueUrl,
      separateSyncCache: true,
      resyncRetryMs: 2_000,
    });
    try {
      // The sync read the secret's stage just now; the change follows within that cache's 15 s.
      const { secretName, arn } = await seedScenario(ns, 'rot-replica');
      await putSecret(aws.secrets, secretName, 'testsqssec:newsecret');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      await waitFor(
        'Secret carries the new value',
        45_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'app-secret')) === 'testsqssec:newsecret',
      );
      await waitFor(
        'then the rollout',
        30_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'operatortest')) === 2,
      );
    } finally {
      await stack.stop();
    }
  });
});

describe('rotation: the SecretProviderClass drop-in', () => {
  it('a Deployment reading an SPC-synced Secret rolls once, after smk rewrote that Secret', async () => {
    const ns = await bed.newNamespace('rot-spc');
    const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], queueUrl, spc: true });
    try {
      const secretName = `${ns}/csi-secret`;
      const arn = await createSecret(aws.secrets, secretName, 'spc-1');
      await createServiceAccount(bed.kubeConfig, ns, 'rot-spc');
      await createSyncedSpc(bed.kubeConfig, ns, 'aws-secrets', secretName, 'spc-env');
      await waitFor(
        'Secret spc-env synced',
        30_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'spc-env')) === 'spc-1',
      );
      await createDeployment(bed.kubeConfig, ns, 'web', {
        labels: { app: 'web' },
        secretName: 'spc-env',
        annotations: { 'smk.dev/rollout-on-sync': 'true' },
      });
      await waitFor('adopted', 30_000, () => adopted(bed.kubeConfig, ns, 'web'));
      await waitFor(
        'first ReplicaSet',
        30_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'web')) === 1,
      );
      await putSecret(aws.secrets, secretName, 'spc-2');
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
      await waitFor(
        'Secret rewritten',
        15_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'spc-env')) === 'spc-2',
      );
      await waitFor(
        'a new ReplicaSet',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'web')) === 2,
      );
      await sleep(1_500);
      assert.equal(await replicaSets(bed.kubeConfig, ns, 'web'), 2);
    } finally {
      await stack.stop();
    }
  });
});

describe('rotation: a SecretProviderClass Secret changed while no controller ran', () => {
  it('its Secret records the synced versions, so a new version put while down rolls the reader once at start', async () => {
    const ns = await bed.newNamespace('rot-spc-down');
    const secretName = `${ns}/csi-secret`;
    await createSecret(aws.secrets, secretName, 'SpcDownValue-1');
    await createServiceAccount(bed.kubeConfig, ns, 'rot-spc-down');
    const first = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], spc: true });
    let second: Stack | undefined;
    try {
      await createSyncedSpc(bed.kubeConfig, ns, 'aws-secrets', secretName, 'spc-env');
      await waitFor(
        'Secret spc-env synced',
        30_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'spc-env')) === 'SpcDownValue-1',
      );
      await createDeployment(bed.kubeConfig, ns, 'web', {
        labels: { app: 'web' },
        secretName: 'spc-env',
        annotations: { 'smk.dev/rollout-on-sync': 'true' },
      });
      await waitFor('adopted', 30_000, () => adopted(bed.kubeConfig, ns, 'web'));
      await waitFor(
        'first ReplicaSet',
        30_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'web')) === 1,
      );
      await first.stop();
      // A new version (a rotation that kept the value): only the versions recorded on the Secret
      // tell a fresh process that what was synced is older than what AWS now calls AWSCURRENT.
      const version = await putSecret(aws.secrets, secretName, 'SpcDownValue-1');
      second = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], spc: true });
      await waitFor('the Secret records the new version', 15_000, async () => {
        const secret = await bed.kubeConfig
          .makeApiClient(CoreV1Api)
          .readNamespacedSecret({ namespace: ns, name: 'spc-env' });
        return secret.metadata?.annotations?.['smk.dev/versions']?.includes(version) === true;
      });
      await waitFor(
        'a new ReplicaSet',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'web')) === 2,
      );
    } finally {
      await first.stop().catch(() => undefined);
      await second?.stop();
    }
  });
});

describe('rotation: adoption once the secret is known', () => {
  it('a rollout-on-sync Deployment reconciled before its Secret was synced is adopted when the Secret appears, and rolls at the next change', async () => {
    const ns = await bed.newNamespace('rot-late');
    // Every reconcile starts with a read of the workload: counting them tells the test that the
    // controller has looked at the Deployment (and found nothing to follow) before the Secret exists.
    const objects = createObjects(bed.kubeConfig);
    let workloadReads = 0;
    const counted: Objects = {
      ...objects,
      async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
        const found = await objects.read<T>(ref);
        if (ref.kind === 'Deployment' && ref.name === 'reader') workloadReads += 1;
        return found;
      },
    };
    // The sync is held (the Secret cannot be written) while the detector and the reconcile run.
    for (const api of ['GetSecretValue', 'BatchGetSecretValue'])
      proxy.addFault({ fault: { kind: 'deny' }, api });
    const stack = await startStack(bed.kubeConfig, proxy.endpoint, { namespaces: [ns], objects: counted });
    try {
      const secretName = `${ns}/db`;
      const arn = await createSecret(aws.secrets, secretName, 'db-1');
      await createServiceAccount(bed.kubeConfig, ns, 'rot-late');
      await createSecretSync(bed.kubeConfig, ns, 'db', secretName, 'db-env');
      await createDeployment(bed.kubeConfig, ns, 'reader', {
        labels: { app: 'reader' },
        secretName: 'db-env',
        annotations: { 'smk.dev/rollout-on-sync': 'true' },
      });
      const seen = await waitFor("the detector's first sight of the secret", 15_000, async () =>
        stack.rotation.detector.observed({ region: 'us-east-1', id: secretName }),
      );
      await waitFor('the Deployment reconciled', 15_000, async () => workloadReads > 0);
      // The rest of a reconcile that finds nothing to follow is synchronous after its read.
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(await secretValue(bed.kubeConfig, ns, 'db-env'), undefined, 'the sync is still held');
      assert.equal(await adopted(bed.kubeConfig, ns, 'reader'), false, 'nothing to adopt yet');

      proxy.clearFaults();
      await objects.mergePatch(
        { apiVersion: 'smk.dev/v1alpha1', kind: 'SecretSync', namespace: ns, name: 'db' },
        { metadata: { annotations: { 'smk.dev/force-sync': 'now' } } },
      );
      await waitFor(
        'Secret db-env synced',
        15_000,
        async () => (await secretValue(bed.kubeConfig, ns, 'db-env')) === 'db-1',
      );
      await waitFor('Deployment adopted', 15_000, () => adopted(bed.kubeConfig, ns, 'reader'));
      const record = JSON.parse(
        (await readDeployment(bed.kubeConfig, ns, 'reader')).metadata?.annotations?.[
          'smk.dev/rolled-versions'
        ] ?? '{}',
      ) as Record<string, string>;
      assert.deepEqual(record, { [arn]: seen.stages.get('AWSCURRENT') });
      await waitFor(
        'first ReplicaSet',
        30_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'reader')) === 1,
      );

      // Adopted with the version it runs, the next change is a rollout, not a silent adoption.
      const next = await putSecret(aws.secrets, secretName, 'db-2');
      await stack.rotation.detector.poll();
      await waitFor(
        'reader rolled',
        15_000,
        async () => (await replicaSets(bed.kubeConfig, ns, 'reader')) === 2,
      );
      assert.equal(await secretValue(bed.kubeConfig, ns, 'db-env'), 'db-2');
      const rolled = JSON.parse(
        (await readDeployment(bed.kubeConfig, ns, 'reader')).metadata?.annotations?.[
          'smk.dev/rolled-versions'
        ] ?? '{}',
      ) as Record<string, string>;
      assert.equal(rolled[arn], next);
    } finally {
      proxy.clearFaults();
      await stack.stop();
    }
  });
});
