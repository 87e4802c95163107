/**
 * `npm run bench:rotation`: what keeping secrets fresh costs, and how fast a change arrives.
 *
 * 1. Secrets Manager calls per simulated hour for N secrets (default 1,000) consumed by P pods
 *    (default 5,000, each reading K=2 secrets) with 1 % of the secrets changing per hour, at ≤ 60 s
 *    freshness. Every figure comes from calls counted by the proxy in this run, against moto:
 *      smk   the change detector's ListSecrets polls (60 s), one DescribeSecret + one read per
 *            change (events), and the sync controller's hourly refresh of each SecretSync;
 *      (a)   the CSI driver's rotation: every pod re-fetches each of its secrets every 2 min
 *            (a sample of the pods is run and scaled);
 *      (b)   ESO's pattern: one GetSecretValue per object per refresh, refreshing every 60 s.
 *    Goal (issue 6): smk ≤ 1/100 of (a).
 * 2. Change → synced Secret updated, and change → rollout started, p50/p95, through the real
 *    path on the test bed: PutSecretValue, the CloudTrail event in SQS, detector, re-sync,
 *    rollout (default 500 ms debounce). Goal: p95 ≤ 2 s. The baselines' figures are their polling
 *    periods (modelled, not measured: neither restarts workloads at all).
 *
 *   node bench/rotation.ts [--secrets N] [--pods N] [--per-pod K] [--sample F] [--trials N]
 */
import { parseArgs } from 'node:util';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { AppsV1Api } from '@kubernetes/client-node';
import { AwsClients, createSecretReader, type Identity, SecretCache } from '../src/aws/index.ts';
import { createDetector } from '../src/controller/rotation/detector.ts';
import { silentLogger } from '../src/core/log.ts';
import type { SecretRequest } from '../src/core/source.ts';
import { startAwsProxy } from '../test/harness/aws-proxy.ts';
import { startWorld } from '../test/harness/world.ts';
import {
  awsClients,
  cloudTrailEvent,
  createDeployment,
  createQueue,
  createSecretSync,
  createServiceAccount,
  installCrds,
  send,
  startStack,
  waitFor,
} from '../test/rotation/harness.ts';
import { connectTestBed } from '../test/testbed/index.ts';
import { percentile, printTable } from './table.ts';

const { values } = parseArgs({
  options: {
    secrets: { type: 'string', default: '1000' },
    pods: { type: 'string', default: '5000' },
    'per-pod': { type: 'string', default: '2' },
    sample: { type: 'string', default: '0.1' },
    trials: { type: 'string', default: '20' },
  },
});
const secretCount = Number(values.secrets);
const pods = Number(values.pods);
const perPod = Number(values['per-pod']);
const sample = Number(values.sample);
const trials = Number(values.trials);
const changesPerHour = Math.max(1, Math.round(secretCount * 0.01));
const region = 'us-east-1';
const run = Math.random().toString(36).slice(2, 8);

process.stderr.write('starting moto and the Kubernetes test bed…\n');
const world = await startWorld();
Object.assign(process.env, world.env);
const proxy = await startAwsProxy({ target: world.env.AWS_ENDPOINT_URL });
const direct = new SecretsManagerClient({
  endpoint: world.env.AWS_ENDPOINT_URL,
  region,
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
});
const counted = new SecretsManagerClient({
  endpoint: proxy.endpoint,
  region,
  credentials: { accessKeyId: 'baseline', secretAccessKey: 'testing' },
  maxAttempts: 1,
});

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const item = items[next] as T;
        next += 1;
        await work(item);
      }
    }),
  );
}

const smCalls = (): number => proxy.count({ service: 'secretsmanager' });

try {
  // ---- 1. calls per simulated hour --------------------------------------------------------
  process.stderr.write(`creating ${secretCount} secrets…\n`);
  const names = Array.from(
    { length: secretCount },
    (_, index) => `bench-${run}/s${String(index).padStart(5, '0')}`,
  );
  await mapLimit(names, 16, async (name) => {
    await direct.send(
      new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ password: name }) }),
    );
  });

  const cache = new SecretCache();
  const clients = new AwsClients({ endpoint: proxy.endpoint, maxAttempts: 1 });
  const controllerIdentity: Identity = {
    kind: 'static',
    accessKeyId: 'controller',
    secretAccessKey: 'testing',
  };
  const syncIdentity: Identity = { kind: 'static', accessKeyId: 'sync', secretAccessKey: 'testing' };
  const detectorReader = createSecretReader(controllerIdentity, { cache, clients });
  const syncReader = createSecretReader(syncIdentity, { cache, clients });
  const detector = createDetector({
    reader: detectorReader,
    watches: () => names.map((id) => ({ region, id, stage: 'AWSCURRENT' })),
    sinks: [{ secretChanged: (change) => cache.stagesMoved(change.secret.region, change.secret.arn) }],
    logger: silentLogger(),
  });
  await detector.poll(); // baseline
  proxy.resetCounts();
  const polls = 3;
  for (let i = 0; i < polls; i += 1) await detector.poll();
  const perPoll = smCalls() / polls;

  const changed = names.slice(0, changesPerHour);
  for (const name of changed) {
    await direct.send(
      new PutSecretValueCommand({ SecretId: name, SecretString: JSON.stringify({ password: 'new' }) }),
    );
  }
  proxy.resetCounts();
  for (const name of changed) {
    await detector.hint({ secretId: name, region, reason: 'PutSecretValue' });
    const request: SecretRequest = {
      objectType: 'secretsmanager',
      id: name,
      region,
      versionStage: 'AWSCURRENT',
    };
    await syncReader.read([request]);
  }
  const perChange = smCalls() / changed.length;

  // The sync controller refreshes each SecretSync once an hour (default), spread out: single reads.
  const refreshSample = names.slice(changesPerHour, changesPerHour + 100);
  const refreshCache = new SecretCache();
  const refreshReader = createSecretReader(syncIdentity, { cache: refreshCache, clients });
  proxy.resetCounts();
  for (const name of refreshSample) {
    await refreshReader.read([
      { objectType: 'secretsmanager', id: name, region, versionStage: 'AWSCURRENT' },
    ]);
  }
  const perRefresh = smCalls() / refreshSample.length;
  const smkHour = perPoll * 60 + perChange * changesPerHour + perRefresh * secretCount;

  // (a) CSI rotation: each pod re-reads each of its secrets every 2 min — run a sample of pods.
  const samplePods = Math.max(1, Math.round(pods * sample));
  const podSecrets = Array.from(
    { length: samplePods * perPod },
    (_, index) => names[index % names.length] as string,
  );
  proxy.resetCounts();
  await mapLimit(podSecrets, 16, async (name) => {
    await counted.send(new GetSecretValueCommand({ SecretId: name, VersionStage: 'AWSCURRENT' }));
  });
  const csiCycle = (smCalls() / samplePods) * pods;
  const csiHour = csiCycle * 30;

  // (b) ESO: one GetSecretValue per object per refresh; one object per secret, refreshed every 60 s.
  proxy.resetCounts();
  await mapLimit(names, 16, async (name) => {
    await counted.send(new GetSecretValueCommand({ SecretId: name, VersionStage: 'AWSCURRENT' }));
  });
  const esoHour = smCalls() * 60;

  printTable(
    `Secrets Manager calls per hour: ${secretCount} secrets, ${pods} pods × ${perPod} secrets, ${changesPerHour} changes/h, ≤ 60 s freshness`,
    ['pattern', 'how', 'calls/h', 'vs (a)'],
    [
      [
        'smk',
        `${perPoll.toFixed(0)} ListSecrets/poll × 60 + ${perChange.toFixed(0)}/change + ${perRefresh.toFixed(0)}/SecretSync hourly refresh`,
        Math.round(smkHour),
        `1/${Math.round(csiHour / smkHour)}`,
      ],
      [
        '(a) CSI rotation, 2 min',
        `${Math.round(csiCycle)} GetSecretValue/cycle (sample ${samplePods} pods) × 30`,
        Math.round(csiHour),
        '1',
      ],
      [
        '(b) ESO, 60 s refresh',
        `${Math.round(esoHour / 60)} GetSecretValue/refresh × 60`,
        Math.round(esoHour),
        `1/${Math.round(csiHour / esoHour)}`,
      ],
    ],
  );
  const goalMet = smkHour * 100 <= csiHour;
  process.stdout.write(`goal smk ≤ 1/100 of (a): ${goalMet ? 'met' : 'NOT met'}\n`);
  clients.destroy();

  // ---- 2. latency through the whole path on the bed ----------------------------------------
  process.stderr.write(`latency: ${trials} changes through SQS → detector → re-sync → rollout…\n`);
  const bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
  const ns = await bed.newNamespace('bench-rotation');
  const aws = awsClients(proxy.endpoint);
  const queueUrl = await createQueue(aws.sqs, `${ns}-events`);
  await createServiceAccount(bed.kubeConfig, ns, 'bench-rotation');
  const apps = bed.kubeConfig.makeApiClient(AppsV1Api);
  const workloads = Math.min(10, trials);
  const arns: string[] = [];
  for (let i = 0; i < workloads; i += 1) {
    const name = `${ns}/lat-${i}`;
    const created = await direct.send(new CreateSecretCommand({ Name: name, SecretString: 'v0' }));
    arns.push(created.ARN ?? '');
    await createSecretSync(bed.kubeConfig, ns, `lat-${i}`, name, `lat-${i}`);
    await createDeployment(bed.kubeConfig, ns, `lat-${i}`, {
      labels: { app: `lat-${i}` },
      secretName: `lat-${i}`,
      annotations: { 'smk.dev/rollout-on': name },
    });
  }
  const stack = await startStack(bed.kubeConfig, proxy.endpoint, {
    namespaces: [ns],
    queueUrl,
    debounceMs: 500,
    pollIntervalMs: 60_000,
    queueWaitSeconds: 20,
  });
  const secretLatency: number[] = [];
  const rolloutLatency: number[] = [];
  try {
    const core = bed.kubeConfig.makeApiClient((await import('@kubernetes/client-node')).CoreV1Api);
    for (let i = 0; i < workloads; i += 1) {
      await waitFor(`lat-${i} adopted`, 60_000, async () => {
        const deployment = await apps.readNamespacedDeployment({ namespace: ns, name: `lat-${i}` });
        return deployment.metadata?.annotations?.['smk.dev/rolled-versions'] !== undefined;
      });
    }
    for (let trial = 0; trial < trials; trial += 1) {
      const index = trial % workloads;
      const name = `${ns}/lat-${index}`;
      const value = `v${trial + 1}`;
      const before = await apps.readNamespacedDeployment({ namespace: ns, name: `lat-${index}` });
      const restartedBefore = before.spec?.template?.metadata?.annotations?.['smk.dev/restartedAt'];
      const started = performance.now();
      await direct.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
      await send(aws.sqs, queueUrl, await cloudTrailEvent('PutSecretValue', name, arns[index] ?? ''));
      let secretAt: number | undefined;
      let rolloutAt: number | undefined;
      const deadline = started + 30_000;
      while ((secretAt === undefined || rolloutAt === undefined) && performance.now() < deadline) {
        if (secretAt === undefined) {
          const secret = await core.readNamespacedSecret({ namespace: ns, name: `lat-${index}` });
          const data = secret.data?.VALUE;
          if (data !== undefined && Buffer.from(data, 'base64').toString('utf8') === value) {
            secretAt = performance.now();
          }
        }
        if (rolloutAt === undefined) {
          const deployment = await apps.readNamespacedDeployment({ namespace: ns, name: `lat-${index}` });
          const restarted = deployment.spec?.template?.metadata?.annotations?.['smk.dev/restartedAt'];
          if (restarted !== undefined && restarted !== restartedBefore) rolloutAt = performance.now();
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (secretAt === undefined || rolloutAt === undefined)
        throw new Error(`trial ${trial}: no update within 30 s`);
      secretLatency.push(secretAt - started);
      rolloutLatency.push(rolloutAt - started);
    }
  } finally {
    await stack.stop();
    await bed.stop();
  }
  const ms = (value: number): string => `${(value / 1000).toFixed(2)} s`;
  printTable(
    `Change → effect latency (${trials} changes; smk via SQS events, 500 ms rollout debounce)`,
    ['pattern', 'Secret/file updated p50', 'p95', 'rollout started p50', 'p95'],
    [
      [
        'smk (measured)',
        ms(percentile(secretLatency, 50)),
        ms(percentile(secretLatency, 95)),
        ms(percentile(rolloutLatency, 50)),
        ms(percentile(rolloutLatency, 95)),
      ],
      ['(a) CSI rotation, 2 min (model)', '60 s', '114 s', 'never', 'never'],
      ['(b) ESO, 60 s refresh (model)', '30 s', '57 s', 'never (needs Reloader)', '-'],
    ],
  );
  process.stdout.write(
    `goal rollout p95 ≤ 2 s: ${percentile(rolloutLatency, 95) <= 2_000 ? 'met' : 'NOT met'}\n`,
  );
} finally {
  direct.destroy();
  counted.destroy();
  await proxy.stop();
  await world.stop();
}
