/**
 * The in-pod agent under AWS faults, as `smk agent` processes through the counting/fault proxy.
 * Refresh sidecar: under throttling, 5xx and resets the files stay exactly as they were (same
 * bytes, same ..data version), the process keeps running, version checks back off (counted),
 * and a rotation made during the fault lands once it clears. Init: a short fault is retried
 * through; a lasting one fails closed — non-zero exit, nothing written, no value in the output.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { type AwsProxy, type Fault, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { delay, waitFor } from './controller-world.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Agent {
  readonly child: ChildProcessWithoutNullStreams;
  output(): string;
  exit(): Promise<number>;
}

function startAgent(mode: 'init' | 'refresh', env: Readonly<Record<string, string>>): Agent {
  const child = spawn(process.execPath, [cli, 'agent', mode], {
    env: { ...process.env, SMK_LOG_LEVEL: 'debug', ...env },
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code]) => (typeof code === 'number' ? code : 1));
  return { child, output: () => output, exit: () => exited };
}

describe('smk agent under AWS faults', () => {
  const moto = connectMoto();
  const client = new SecretsManagerClient({ endpoint: moto.endpoint });
  const prefix = `agent-faults-${randomUUID().slice(0, 8)}`;
  const value = (n: number): string =>
    JSON.stringify({ username: 'app', password: `pw-${n}-${randomUUID()}` });
  let proxy: AwsProxy;
  let work: string;
  let generation = 1;
  const objects = JSON.stringify([
    {
      objectName: `${prefix}/db`,
      objectType: 'secretsmanager',
      objectAlias: 'db.json',
      jmesPath: [{ path: 'password', objectAlias: 'db-password' }],
    },
  ]);
  const envFor = (dir: string, extra: Record<string, string> = {}): Record<string, string> => ({
    SMK_OBJECTS: objects,
    SMK_DIR: dir,
    SMK_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: proxy.endpoint,
    ...extra,
  });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'smk-agent-faults-'));
    proxy = await startAwsProxy({ target: moto.endpoint });
    await client.send(new CreateSecretCommand({ Name: `${prefix}/db`, SecretString: value(generation) }));
  });
  after(async () => {
    client.destroy();
    await proxy.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** What the app sees: every visible file's bytes, and which version directory ..data points at. */
  async function snapshot(dir: string): Promise<Record<string, string>> {
    const files: Record<string, string> = { '..data': await readlink(join(dir, '..data')) };
    for (const name of await readdir(dir)) {
      if (!name.startsWith('..')) files[name] = await readFile(join(dir, name), 'utf8');
    }
    return files;
  }

  const faults: { name: string; fault: Fault }[] = [
    { name: 'throttling', fault: { kind: 'throttle' } },
    { name: 'HTTP 503', fault: { kind: 'status', status: 503 } },
    { name: 'connection resets', fault: { kind: 'reset' } },
  ];

  it('refresh sidecar: last good files kept exactly under each fault, checks back off, the change lands after', async (t) => {
    const dir = join(work, 'refresh');
    const init = startAgent('init', envFor(dir));
    assert.equal(await init.exit(), 0, init.output());
    const intervalSeconds = 1;
    const agent = startAgent('refresh', envFor(dir, { SMK_REFRESH_INTERVAL: String(intervalSeconds) }));
    t.after(() => agent.child.kill('SIGTERM'));
    // A failed assertion must not leave a fault on for the next test.
    t.after(() => proxy.clearFaults());
    await waitFor(
      'the sidecar checking versions',
      20_000,
      async () => proxy.count({ api: 'DescribeSecret' }) >= 2,
    );

    for (const { name, fault } of faults) {
      const before = await snapshot(dir);
      proxy.resetCounts();
      proxy.addFault({ fault });
      await proxy.idle();
      generation += 1;
      const rotated = value(generation);
      await client.send(new PutSecretValueCommand({ SecretId: `${prefix}/db`, SecretString: rotated }));
      const windowMs = 8_000;
      await delay(windowMs);
      const calls = proxy.calls().length + proxy.refusedConnections();
      assert.deepEqual(await snapshot(dir), before, `files changed during ${name}`);
      assert.equal(
        agent.child.exitCode,
        null,
        `the sidecar exited during ${name}:\n${agent.output().slice(-2000)}`,
      );
      // The sidecar's backoff doubles up to its interval (never past it, so a fix lands within one
      // interval): at most one version check per interval, each with the SDK's 3 attempts.
      const ceiling = (windowMs / 1000 / intervalSeconds + 1) * 3;
      assert.ok(calls >= 1 && calls <= ceiling, `${calls} AWS calls in ${windowMs / 1000} s of ${name}`);
      proxy.clearFaults();
      const cleared = performance.now();
      const password = (JSON.parse(rotated) as { password: string }).password;
      await waitFor(`the rotation made during ${name} on disk`, 60_000, async () =>
        (await readFile(join(dir, 'db-password'), 'utf8')) === password ? true : undefined,
      );
      t.diagnostic(
        `${name}: ${calls} AWS calls in ${windowMs / 1000} s, files unchanged; new value on disk ${((performance.now() - cleared) / 1000).toFixed(1)} s after recovery`,
      );
    }
    assert.doesNotMatch(agent.output(), /pw-\d+-/, 'no value in the sidecar output');
  });

  it('init: a short fault is retried through; a lasting outage fails closed with nothing written', async (t) => {
    t.after(() => proxy.clearFaults());
    const retried = join(work, 'init-retried');
    proxy.addFault({ fault: { kind: 'status', status: 503 }, times: 1 });
    const first = startAgent('init', envFor(retried));
    assert.equal(await first.exit(), 0, first.output());
    assert.ok((await readdir(retried)).includes('db.json'));
    proxy.clearFaults();

    const closed = join(work, 'init-closed');
    proxy.addFault({ fault: { kind: 'outage' } });
    try {
      const second = startAgent('init', envFor(closed));
      assert.notEqual(await second.exit(), 0, 'init must fail while AWS is unreachable');
      const written = await readdir(closed).catch(() => []);
      assert.deepEqual(
        written.filter((name) => !name.startsWith('..')),
        [],
        'no file for the app to start with',
      );
      assert.doesNotMatch(second.output(), /pw-\d+-/);
      assert.match(second.output(), new RegExp(`${prefix}/db`), 'the failure names the object');
    } finally {
      proxy.clearFaults();
    }
  });
});
