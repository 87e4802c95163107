/**
 * `smk controller` as a process, rotation wired in: a workload annotated smk.dev/rollout-on is
 * adopted, a change arriving as a CloudTrail event in the queue updates its synced Secret and rolls
 * it once; with --reloader-annotations true, Reloader's own annotation rolls a ConfigMap's reader;
 * and SIGTERM stops the process cleanly.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
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
  createSecretSync,
  createServiceAccount,
  installCrds,
  putSecret,
  queueDepth,
  replicaSets,
  secretValue,
  send,
  sleep,
  waitFor,
} from './harness.ts';

const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const moto = connectMoto();
let bed: TestBed;
let proxy: AwsProxy;

before(async () => {
  bed = await connectTestBed();
  proxy = await startAwsProxy({ target: moto.endpoint });
  await installCrds(bed.kubeConfig);
});

after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

test('smk controller rolls an annotated Deployment once after a queued change, honours Reloader annotations when told, then exits on SIGTERM', async () => {
  const ns = await bed.newNamespace('rot-cli');
  const aws = awsClients(proxy.endpoint);
  const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
  const secretName = `${ns}/api-token`;
  const arn = await createSecret(aws.secrets, secretName, 'token-1');
  await createServiceAccount(bed.kubeConfig, ns, 'rot-cli');
  await createSecretSync(bed.kubeConfig, ns, 'api', secretName, 'api-token');
  await createDeployment(bed.kubeConfig, ns, 'api', {
    labels: { app: 'api' },
    secretName: 'api-token',
    annotations: { 'smk.dev/rollout-on': secretName },
  });
  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'settings', namespace: ns }, data: { level: 'info' } },
  });
  await createDeployment(bed.kubeConfig, ns, 'legacy', {
    labels: { app: 'legacy' },
    annotations: { 'configmap.reloader.stakater.com/reload': 'settings' },
  });
  let output = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [
      main,
      'controller',
      '--namespaces',
      ns,
      '--leader-elect',
      'false',
      '--health-port',
      '0',
      '--secret-provider-classes',
      'false',
      '--rotation-queue-url',
      queueUrl,
      '--reloader-annotations',
      'true',
    ],
    {
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: proxy.endpoint,
        KUBECONFIG: bed.kubeConfigPath,
        SMK_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exited = once(child, 'exit');
  try {
    await waitFor(
      'Secret synced by the process',
      30_000,
      async () => (await secretValue(bed.kubeConfig, ns, 'api-token')) === 'token-1',
    );
    await waitFor('Deployment adopted', 30_000, () => adopted(bed.kubeConfig, ns, 'api'));
    await waitFor(
      'first ReplicaSet',
      30_000,
      async () => (await replicaSets(bed.kubeConfig, ns, 'api')) === 1,
    );
    await putSecret(aws.secrets, secretName, 'token-2');
    await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', secretName, arn));
    await waitFor(
      'Secret updated',
      20_000,
      async () => (await secretValue(bed.kubeConfig, ns, 'api-token')) === 'token-2',
    );
    await waitFor(
      'a new ReplicaSet',
      20_000,
      async () => (await replicaSets(bed.kubeConfig, ns, 'api')) === 2,
    );
    await waitFor('queue drained', 30_000, async () => (await queueDepth(aws.sqs, queueUrl)) === 0);
    await sleep(2_000);
    assert.equal(await replicaSets(bed.kubeConfig, ns, 'api'), 2, 'one rollout');
    // Reloader's annotation (the flag reached rotation): a data change of the ConfigMap rolls its reader.
    await waitFor('legacy adopted', 30_000, () => adopted(bed.kubeConfig, ns, 'legacy'));
    await waitFor(
      'legacy: first ReplicaSet',
      30_000,
      async () => (await replicaSets(bed.kubeConfig, ns, 'legacy')) === 1,
    );
    await core.replaceNamespacedConfigMap({
      namespace: ns,
      name: 'settings',
      body: { metadata: { name: 'settings', namespace: ns }, data: { level: 'debug' } },
    });
    await waitFor(
      'legacy rolled for its ConfigMap',
      20_000,
      async () => (await replicaSets(bed.kubeConfig, ns, 'legacy')) === 2,
    );
    assert.match(output, /rotation controller started/);
    assert.match(output, /secret changed/);
    assert.doesNotMatch(output, /token-1|token-2/, 'no value in the logs');
  } finally {
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, `exit code; output:\n${output.slice(-3000)}`);
  }
});
