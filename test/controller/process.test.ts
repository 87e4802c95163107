/**
 * `smk controller` as a person runs it (kubeconfig and AWS from the environment; only a free port
 * and this test's namespace given, so parallel tests do not meet) and two
 * replicas electing a leader through a Lease on the real API server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  createAwsSecret,
  createServiceAccount,
  decode,
  installCrds,
  type RunningController,
  readSecret,
  ready,
  secretSyncApi,
  secretsManager,
  startController,
  waitFor,
} from './harness.ts';

let bed: TestBed;
const moto = connectMoto();
const aws = secretsManager(moto.endpoint);
const root = new URL('../../', import.meta.url).pathname;

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
});

after(async () => {
  await bed?.stop();
});

async function syncedValue(namespace: string, name: string): Promise<string> {
  await waitFor(`SecretSync ${namespace}/${name} Ready`, 30_000, async () =>
    ready(await secretSyncApi(bed.kubeConfig).get(namespace, name))?.status === 'True' ? true : undefined,
  );
  return decode((await readSecret(bed.kubeConfig, namespace, name))?.data?.V);
}

describe('smk controller (the process)', () => {
  it('runs from the environment alone (kubeconfig, AWS), serves health and metrics, syncs, stops cleanly on SIGTERM', async () => {
    const ns = await bed.newNamespace('proc');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'proc-role');
    await createAwsSecret(aws, `${ns}/v`, 'from-the-process');
    const child = spawn(
      process.execPath,
      [`${root}src/cli/main.ts`, 'controller', '--health-port', '0', '--namespaces', ns],
      {
        // POD_NAMESPACE puts the Lease in this test's namespace, as the chart's downward API does.
        env: { ...process.env, POD_NAMESPACE: ns, POD_NAME: 'smk-controller-test', SMK_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const port = await waitFor('health port in the log', 30_000, async () => {
        const match = /"healthPort":(\d+)/.exec(stderr);
        return match ? Number(match[1]) : undefined;
      });
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      await waitFor('/readyz 200', 30_000, async () => (await fetch(`${base}/readyz`)).status === 200);

      await secretSyncApi(bed.kubeConfig).create(ns, 'v', {
        serviceAccountName: 'app',
        objects: [{ objectName: `${ns}/v`, objectType: 'secretsmanager', objectAlias: 'V' }],
      });
      assert.equal(await syncedValue(ns, 'v'), 'from-the-process');

      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /smk_sync_reconciles_total\{kind="SecretSync",outcome="created"\} 1/);
      assert.match(metrics, /smk_aws_calls_total\{[^}]*api="(BatchGetSecretValue|GetSecretValue)"/);
      assert.match(metrics, /smk_sync_reconcile_seconds_bucket/);
      const lease = await bed.kubeConfig
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: 'smk-controller', namespace: ns });
      assert.match(lease.spec?.holderIdentity ?? '', /^smk-controller-test-/);
      assert.doesNotMatch(stderr, /from-the-process/, 'no secret value in any log line');

      child.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise((resolve) => setTimeout(() => resolve('timeout'), 15_000)),
      ]);
      assert.equal(code, 0, `exit code (stderr tail: ${stderr.slice(-800)})`);
      const released = await bed.kubeConfig
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: 'smk-controller', namespace: ns });
      assert.equal(released.spec?.holderIdentity ?? '', '', 'the lease is released on shutdown');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

/** `smk controller` as a child process at the default log level, watching one namespace. */
async function spawnController(ns: string) {
  const child = spawn(
    process.execPath,
    [`${root}src/cli/main.ts`, 'controller', '--health-port', '0', '--namespaces', ns],
    {
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'SMK_LOG_LEVEL')),
        POD_NAMESPACE: ns,
        POD_NAME: 'smk-controller-test',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const port = await waitFor('health port in the log', 30_000, async () => {
    const match = /"healthPort":(\d+)/.exec(stderr);
    return match ? Number(match[1]) : undefined;
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor('/readyz 200', 30_000, async () => (await fetch(`${base}/readyz`)).status === 200);
  return {
    stderr: () => stderr,
    metrics: async () => (await fetch(`${base}/metrics`)).text(),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

describe('smk_status_condition on /metrics', () => {
  it('a SecretSync shows Ready False while its secret is missing, True once synced, and its series go on delete; the failure is logged at the default level', async () => {
    const ns = await bed.newNamespace('gauge');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'gauge-role');
    const controller = await spawnController(ns);
    try {
      const api = secretSyncApi(bed.kubeConfig);
      await api.create(ns, 'v', {
        serviceAccountName: 'app',
        objects: [{ objectName: `${ns}/later`, objectType: 'secretsmanager', objectAlias: 'V' }],
      });
      const series = (status: string) =>
        `smk_status_condition{kind="SecretSync",namespace="${ns}",name="v",condition="Ready",status="${status}"}`;
      const value = async (status: string): Promise<string | undefined> => {
        const line = (await controller.metrics()).split('\n').find((l) => l.startsWith(series(status)));
        return line?.slice(series(status).length + 1);
      };
      await waitFor('Ready False on /metrics', 30_000, async () =>
        (await value('False')) === '1' ? true : undefined,
      );
      assert.equal(await value('True'), '0');
      assert.match(
        await controller.metrics(),
        /smk_sync_reconciles_total\{kind="SecretSync",outcome="failed",reason="SecretNotFound"\} \d+/,
      );
      const failure = controller
        .stderr()
        .split('\n')
        .map((line) => (line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : {}))
        .find((line) => line.msg !== undefined && String(line.msg).startsWith('sync failed:'));
      assert.equal(failure?.level, 'warn', 'a failed sync is logged at the default level, its level a word');
      assert.equal(failure?.kind, 'SecretSync');
      assert.equal(failure?.namespace, ns);
      assert.equal(failure?.name, 'v');
      assert.equal(failure?.reason, 'SecretNotFound');

      await createAwsSecret(aws, `${ns}/later`, 'gauge-V4lue-9x');
      await api.poke(ns, 'v');
      await waitFor('Ready True on /metrics', 30_000, async () =>
        (await value('True')) === '1' ? true : undefined,
      );
      assert.equal(await value('False'), '0');
      assert.equal(decode((await readSecret(bed.kubeConfig, ns, 'v'))?.data?.V), 'gauge-V4lue-9x');

      await api.delete(ns, 'v');
      await waitFor('the series gone from /metrics', 30_000, async () =>
        (await controller.metrics()).includes(`namespace="${ns}",name="v"`) ? undefined : true,
      );
      assert.doesNotMatch(await controller.metrics(), /gauge-V4lue-9x/, 'no value in any metric');
      assert.doesNotMatch(controller.stderr(), /gauge-V4lue-9x/, 'no value in any log line');
    } finally {
      controller.stop();
    }
  });
});

describe('leader election', () => {
  it('only the leader syncs; when it stops, the other replica takes over', async () => {
    const ns = await bed.newNamespace('leader');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'leader-role');
    await createAwsSecret(aws, `${ns}/v`, 'led');
    const replicas: RunningController[] = [];
    try {
      for (const identity of ['replica-a', 'replica-b']) {
        replicas.push(
          await startController(bed.kubeConfig, moto.endpoint, {
            namespaces: [ns],
            leaderElection: { namespace: ns, name: 'smk-test-leader', identity },
          }),
        );
      }
      const leader = await waitFor('a leader', 30_000, async () => {
        const leading = replicas.filter((replica) => replica.controller.leading);
        return leading.length === 1 ? leading[0] : undefined;
      });
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      assert.equal(replicas.filter((replica) => replica.controller.leading).length, 1, 'never two leaders');

      const api = secretSyncApi(bed.kubeConfig);
      const objects = [{ objectName: `${ns}/v`, objectType: 'secretsmanager', objectAlias: 'V' }];
      await api.create(ns, 'v', { serviceAccountName: 'app', objects });
      assert.equal(await syncedValue(ns, 'v'), 'led');

      await leader.stop();
      const follower = replicas.find((replica) => replica !== leader);
      await waitFor('the follower leads', 30_000, async () => follower?.controller.leading || undefined);
      await api.create(ns, 'w', { serviceAccountName: 'app', objects, target: { name: 'w' } });
      await waitFor('w synced by the new leader', 30_000, async () =>
        decode((await readSecret(bed.kubeConfig, ns, 'w'))?.data?.V) === 'led' ? true : undefined,
      );
    } finally {
      for (const replica of replicas) await replica.stop();
    }
  });
});
