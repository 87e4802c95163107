/**
 * Issue 14, finding 5, against the CSI provider: one SecretProviderClass with a 2^30-step
 * JMESPath expression (`[@,@]` chained 30 times) made every Mount on the node wait and the
 * provider's liveness probe time out for ~18 s, at every remount. Now such a path is refused by
 * default; with `--allow-jmespath-expressions` it runs in a worker thread and is stopped at its
 * CPU budget, while the probe (Version on the socket) and /healthz keep answering within 1 s.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { connectProvider, type ProviderClient } from '../../src/csi/client.ts';
import type { MountRequest } from '../../src/csi/protocol.ts';
import { freePort } from '../harness/ports.ts';
import { waitFor } from '../harness/wait.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { putSecret, uniqueName } from './harness.ts';

const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;

/** Finding 5's expression: each `| [@,@]` doubles the work of the comparison. */
const doubling = (steps: number): string => {
  const chain = `password${' | [@,@]'.repeat(steps)}`;
  return `to_string((${chain}) == (${chain}))`;
};

let bed: TestBed;
let directory: string;

before(async () => {
  bed = await connectTestBed();
  directory = await mkdtemp(join(tmpdir(), 'smk-csi-expr-'));
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
  await bed?.stop();
});

interface Provider {
  readonly socketPath: string;
  readonly healthUrl: string;
  readonly child: ChildProcess;
  output(): string;
}

async function startProvider(name: string, extraArgs: readonly string[]): Promise<Provider> {
  const volume = join(directory, name);
  const healthPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      main,
      'csi-provider',
      '--provider-volume',
      volume,
      '--provider-name',
      'aws',
      '--health-port',
      String(healthPort),
      ...extraArgs,
    ],
    { env: { ...process.env, SMK_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const socketPath = join(volume, 'aws.sock');
  await waitFor(
    `the socket of ${name}`,
    30_000,
    async () => (await stat(socketPath).catch(() => undefined)) !== undefined,
  );
  return { socketPath, healthUrl: `http://127.0.0.1:${healthPort}`, child, output: () => output };
}

/** SIGTERM, and SIGKILL if it has not exited 10 s later (a stalled provider cannot stop itself). */
async function stop(provider: Provider): Promise<void> {
  const { child } = provider;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
}

/** A Mount request for a pod of a fresh namespace whose role reads `${namespace}/db`. */
async function attackRequest(path: string): Promise<Partial<MountRequest>> {
  const namespace = await bed.newNamespace('csi-expr');
  const account = uniqueName('sa');
  await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
    namespace,
    body: {
      metadata: {
        name: account,
        annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/csi-expr' },
      },
    },
  });
  await putSecret('us-east-1', `${namespace}/db`, JSON.stringify({ password: `Vq5-${uniqueName('pw')}` }));
  const token = await bed.serviceAccountToken(namespace, account, 'sts.amazonaws.com');
  return {
    attributes: JSON.stringify({
      objects: JSON.stringify([
        {
          objectName: `${namespace}/db`,
          objectType: 'secretsmanager',
          jmesPath: [{ path, objectAlias: 'x' }],
        },
      ]),
      region: 'us-east-1',
      secretProviderClass: 'stall',
      'csi.storage.k8s.io/pod.name': 'victim-0',
      'csi.storage.k8s.io/pod.namespace': namespace,
      'csi.storage.k8s.io/serviceAccount.name': account,
      'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ 'sts.amazonaws.com': { token } }),
    }),
    permission: '420',
    target_path: '/var/lib/kubelet/pods/victim/volumes/kubernetes.io~csi/s/mount',
  };
}

async function mountError(client: ProviderClient, request: Partial<MountRequest>): Promise<string> {
  try {
    await client.mount(request, 40_000);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  assert.fail('the mount succeeded');
}

/**
 * Times `probe` every 100 ms until stopped (a failure counts with its duration); a probe still
 * waiting at the stop counts with the time it has waited.
 */
function sample(probe: () => Promise<unknown>): { stop(): number[] } {
  const latencies: number[] = [];
  let running = true;
  let inFlight: number | undefined;
  void (async () => {
    while (running) {
      inFlight = performance.now();
      await probe().catch(() => undefined);
      if (!running) return;
      latencies.push(performance.now() - inFlight);
      inFlight = undefined;
      await sleep(100);
    }
  })();
  return {
    stop() {
      running = false;
      if (inFlight !== undefined) latencies.push(performance.now() - inFlight);
      return latencies;
    },
  };
}

const slowest = (values: readonly number[]): number => Math.max(0, ...values);

describe('finding 5: an expression cannot stall the CSI provider', () => {
  it('refused at parse by default, naming the field', async () => {
    const provider = await startProvider('off', []);
    const client = connectProvider(provider.socketPath);
    try {
      const message = await mountError(client, await attackRequest(doubling(30)));
      assert.match(message, /jmesPath\[0\]\.path is not a plain field path/);
      assert.match(message, /--allow-jmespath-expressions/);
    } finally {
      client.close();
      await stop(provider);
    }
  });

  it('enabled: the liveness probe and /healthz answer within 1 s while mounts of it are stopped at the budget', async (t) => {
    const provider = await startProvider('on', ['--allow-jmespath-expressions']);
    const client = connectProvider(provider.socketPath);
    const probeClient = connectProvider(provider.socketPath);
    try {
      const request = await attackRequest(doubling(30));
      // What the liveness probe does (`smk csi-provider --probe`: Version on the socket), and /healthz.
      const versionSampler = sample(() => probeClient.version());
      const healthSampler = sample(async () => (await fetch(`${provider.healthUrl}/healthz`)).text());
      const messages: string[] = [];
      let versionLatencies: number[] = [];
      let healthLatencies: number[] = [];
      try {
        // The kubelet retries a failed mount; three in a row, as with a 1 s remount.
        for (let i = 0; i < 3; i++) {
          messages.push(await mountError(client, request));
          await sleep(1_000);
        }
      } finally {
        versionLatencies = versionSampler.stop();
        healthLatencies = healthSampler.stop();
        t.diagnostic(
          `CSI provider during the attack: Version ${versionLatencies.length} probes, slowest ${slowest(versionLatencies).toFixed(0)} ms; /healthz ${healthLatencies.length} probes, slowest ${slowest(healthLatencies).toFixed(0)} ms`,
        );
      }
      for (const message of messages) {
        assert.match(
          message,
          /jmesPath: an expression did not give a string within its budget \(100 ms of CPU/,
        );
      }
      assert.ok(versionLatencies.length >= 10 && healthLatencies.length >= 10, 'too few probes to judge');
      assert.ok(slowest(versionLatencies) < 1_000, `Version took ${slowest(versionLatencies).toFixed(0)} ms`);
      assert.ok(slowest(healthLatencies) < 1_000, `/healthz took ${slowest(healthLatencies).toFixed(0)} ms`);
      const metrics = await (await fetch(`${provider.healthUrl}/metrics`)).text();
      assert.match(metrics, /smk_jmespath_expressions_total\{outcome="failed",reason="OverBudget"\} 3/);
      assert.doesNotMatch(provider.output(), /Vq5-/, 'no secret value in the log');
    } finally {
      client.close();
      probeClient.close();
      await stop(provider);
    }
  });
});
