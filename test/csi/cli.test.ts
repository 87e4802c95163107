/**
 * `smk csi-provider` as a process, the way the DaemonSet runs it: flags, the socket under
 * --provider-volume, a probe, a mount of seed 004's class, /healthz and /metrics, and a clean
 * stop on SIGTERM (socket removed, exit 0).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { connectProvider } from '../../src/csi/client.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { filesAsText, putSecret, readSecretProviderClass, uniqueName } from './harness.ts';

const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function smk(args: readonly string[]): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [main, ...args], {
    env: { ...process.env, SMK_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  return Object.assign(child, { output: () => output });
}

async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

describe('smk csi-provider (process)', () => {
  let bed: TestBed;
  let directory: string;

  before(async () => {
    bed = await connectTestBed();
    directory = await mkdtemp(join(tmpdir(), 'smk-csi-cli-'));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
    await bed?.stop();
  });

  it('prints its options with --help', async () => {
    const child = smk(['csi-provider', '--help']);
    assert.equal(await exitCode(child), 0);
    assert.match(child.output(), /--provider-volume DIR/);
    assert.match(child.output(), /--authorization-window DUR/);
  });

  it('refuses an unknown flag and a bad duration with a clear message', async () => {
    const unknown = smk(['csi-provider', '--provider-volumes', '/tmp/x']);
    assert.equal(await exitCode(unknown), 2);
    assert.match(unknown.output(), /smk csi-provider: unknown flag --provider-volumes/);
    const duration = smk(['csi-provider', '--authorization-window', 'soon']);
    assert.equal(await exitCode(duration), 2);
    assert.match(duration.output(), /--authorization-window: expected a duration like 500ms, 30s or 5m/);
  });

  it('serves the socket, mounts, reports health and metrics, and stops cleanly on SIGTERM', async () => {
    const volume = join(directory, 'providers');
    const healthPort = await freePort();
    const child = smk([
      'csi-provider',
      '--provider-volume',
      volume,
      '--provider-name',
      'aws',
      '--health-port',
      String(healthPort),
      '--authorization-window',
      '2m',
    ]);
    try {
      const socketPath = join(volume, 'aws.sock');
      for (let i = 0; i < 100 && !(await stat(socketPath).catch(() => undefined)); i++) await sleep(100);

      const probe = smk(['csi-provider', '--provider-volume', volume, '--probe']);
      assert.equal(await exitCode(probe), 0, probe.output());
      assert.match(probe.output(), /^smk-csi-provider \d+\.\d+\.\d+ \(v1alpha1\)/);

      const namespace = await bed.newNamespace('csi-cli');
      const account = uniqueName('sa');
      await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
        namespace,
        body: {
          metadata: {
            name: account,
            annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/csi-cli' },
          },
        },
      });
      const token = await bed.serviceAccountToken(namespace, account, 'sts.amazonaws.com');
      await putSecret('us-east-1', 'CSI-driver-test-secret', 'secretkey');
      const spc = await readSecretProviderClass('seed-004-secretproviderclass.yaml');
      const client = connectProvider(socketPath);
      try {
        const response = await client.mount({
          attributes: JSON.stringify({
            ...spc.spec.parameters,
            secretProviderClass: spc.metadata.name,
            'csi.storage.k8s.io/pod.name': 'nginx-0',
            'csi.storage.k8s.io/pod.namespace': namespace,
            'csi.storage.k8s.io/serviceAccount.name': account,
            'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ 'sts.amazonaws.com': { token } }),
          }),
          permission: '420',
          target_path: '/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/s/mount',
        });
        assert.deepEqual(filesAsText(response.files), { 'CSI-driver-test-secret': 'secretkey' });
      } finally {
        client.close();
      }

      const health = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
      assert.equal(health.status, 200);
      const metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
      assert.match(metrics, /smk_csi_mounts_total\{outcome="ok"\} 1/);
      assert.match(metrics, /smk_aws_calls_total\{api="AssumeRoleWithWebIdentity",outcome="ok"\} 1/);

      child.kill('SIGTERM');
      assert.equal(await exitCode(child), 0, child.output());
      assert.equal(await stat(socketPath).catch(() => undefined), undefined, 'socket removed');
      assert.doesNotMatch(child.output(), /secretkey/);
      assert.doesNotMatch(child.output(), new RegExp(token.slice(-20)));
      assert.match(child.output(), /"msg":"mounted"/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
