/**
 * Issue 14, findings 1 and 5, against the sync controller on the test bed.
 *
 * 1. A tenant who may only create and read SecretSyncs (and SecretProviderClasses) in its namespace
 *    — no Secret read — gives one jmesPath entry per guess, `starts_with(password,'<c>') && `1`
 *    || 'no'`: the entry whose guess is right gives a number, not a string. Before, the status
 *    named the failing entry, so it spelled the value out. Now such a path is refused as an invalid
 *    spec (by default), or, where the administrator enabled expressions, the failure reads the same
 *    whatever the guess.
 * 5. `[@,@]` chained 30 times costs 2^30 steps; with refreshInterval 1s it stalled the controller
 *    (health endpoint dead for ~20 s, again at every refresh). Now it is refused at parse by
 *    default; with expressions enabled it runs in a worker thread, stopped at its CPU budget, while
 *    /healthz keeps answering.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { createExpressionEvaluator } from '../../src/core/expressions.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  createAwsSecret,
  createServiceAccount,
  installCrds,
  median,
  type RunningController,
  readSecret,
  ready,
  type SecretSyncResource,
  sampleLatency,
  secretsManager,
  startController,
  tenant,
  waitFor,
} from './harness.ts';

let bed: TestBed;
const moto = connectMoto();
const aws = secretsManager(moto.endpoint);
const controllers: RunningController[] = [];
const root = new URL('../../', import.meta.url).pathname;

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
});

after(async () => {
  for (const running of controllers.splice(0)) await running.stop();
  await bed?.stop();
});

const alphabet = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'];

/** The finding's probe: a number (no string) exactly when `guess` starts the password. */
const probe = (guess: string): string => `starts_with(password,'${guess}') && \`1\` || 'no'`;

/** Finding 5's expression: each `| [@,@]` doubles the work of the comparison. */
const doubling = (steps: number): string => {
  const chain = `password${' | [@,@]'.repeat(steps)}`;
  return `to_string((${chain}) == (${chain}))`;
};

/** What an attacker reads off a message: the guess of the entry it names, if it names one. */
function learned(message: string, guesses: readonly string[]): string | undefined {
  const entry = /jmesPath\[(\d+)\] \(starts_with/.exec(message);
  return entry ? guesses[Number(entry[1])] : undefined;
}

const secretSyncs = { group: 'smk.dev', version: 'v1alpha1', plural: 'secretsyncs' };

async function createProbe(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  guesses: readonly string[],
): Promise<void> {
  await kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    ...secretSyncs,
    namespace,
    body: {
      apiVersion: 'smk.dev/v1alpha1',
      kind: 'SecretSync',
      metadata: { name, namespace },
      spec: {
        serviceAccountName: 'app',
        objects: [
          {
            objectName: `${namespace}/db`,
            objectType: 'secretsmanager',
            jmesPath: guesses.map((guess, i) => ({ path: probe(guess), objectAlias: `g${i}` })),
          },
        ],
      },
    },
  });
}

/** The Ready condition as the tenant reads it, once the controller has judged the object. */
async function readyAsTenant(kubeConfig: KubeConfig, namespace: string, name: string) {
  return waitFor(`SecretSync ${namespace}/${name} judged`, 30_000, async () => {
    const resource = (await kubeConfig
      .makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({ ...secretSyncs, namespace, name })) as SecretSyncResource;
    const condition = ready(resource);
    return condition && condition.reason !== 'Pending' ? condition : undefined;
  });
}

/** A namespace with the app's ServiceAccount and a JSON secret whose password starts with `first`. */
async function namespaceWithSecret(prefix: string, first: string): Promise<string> {
  const namespace = await bed.newNamespace(prefix);
  await createServiceAccount(bed.kubeConfig, namespace, 'app', `${prefix}-role`);
  const password = `${first}8x-${randomBytes(6).toString('hex')}`;
  await createAwsSecret(
    aws,
    `${namespace}/db`,
    JSON.stringify({ username: 'app', password, port: 5432, hosts: ['db-1', 'db-2'] }),
  );
  return namespace;
}

const sameText = (message: string, name: string): string => message.replaceAll(name, '<name>');

describe('finding 1: no value through SecretSync status', () => {
  it('plain field paths by default: the probe is an invalid spec naming the field, whatever the guess', async (t) => {
    const ns = await namespaceWithSecret('expr-default', 'K');
    const running = await startController(bed.kubeConfig, moto.endpoint, { namespaces: [ns] });
    controllers.push(running);
    const attacker = await tenant(bed, ns);

    const orders = [alphabet, [...alphabet].reverse()];
    const seen: string[] = [];
    for (const [i, guesses] of orders.entries()) {
      await createProbe(attacker, ns, `probe-${i}`, guesses);
      const condition = await readyAsTenant(attacker, ns, `probe-${i}`);
      t.diagnostic(`probe-${i}: ${condition.reason}: ${condition.message}`);
      assert.equal(learned(condition.message, guesses), undefined, 'the status names the right guess');
      assert.equal(condition.status, 'False');
      assert.equal(condition.reason, 'InvalidSpec');
      assert.match(
        condition.message,
        /objects\[0\] \([^)]+\): jmesPath\[0\]\.path is not a plain field path/,
      );
      assert.match(condition.message, /--allow-jmespath-expressions/);
      seen.push(sameText(condition.message, `probe-${i}`));
    }
    assert.equal(seen[0], seen[1], 'the status differs with the order of the guesses');
    assert.equal(await readSecret(bed.kubeConfig, ns, 'probe-0'), undefined);

    // The same through a synced SecretProviderClass: its Warning event is all the tenant sees.
    await attacker.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns,
      plural: 'secretproviderclasses',
      body: {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: {
          name: 'probe-spc',
          annotations: { 'smk.dev/sync': 'true', 'smk.dev/service-account': 'app' },
        },
        spec: {
          provider: 'aws',
          secretObjects: [
            { secretName: 'probe-spc', type: 'Opaque', data: [{ objectName: 'g0', key: 'g0' }] },
          ],
          parameters: {
            objects: JSON.stringify([
              {
                objectName: `${ns}/db`,
                objectType: 'secretsmanager',
                jmesPath: alphabet.map((guess, i) => ({ path: probe(guess), objectAlias: `g${i}` })),
              },
            ]),
          },
        },
      },
    });
    const warning = await waitFor('a Warning event on the SecretProviderClass', 30_000, async () => {
      const list = await attacker
        .makeApiClient(CoreV1Api)
        .listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=probe-spc' });
      return list.items.find((event) => event.type === 'Warning');
    });
    t.diagnostic(`probe-spc event: ${warning.reason}: ${warning.message}`);
    assert.equal(learned(warning.message ?? '', alphabet), undefined, 'the event names the right guess');
    assert.equal(warning.reason, 'InvalidSpec');
    assert.match(warning.message ?? '', /jmesPath\[0\]\.path is not a plain field path/);
  });

  it('expressions enabled by the administrator: the failure reads the same whatever the guess', async (t) => {
    const ns = await namespaceWithSecret('expr-enabled', 'R');
    const expressions = createExpressionEvaluator();
    t.after(() => expressions.close());
    const running = await startController(bed.kubeConfig, moto.endpoint, { namespaces: [ns], expressions });
    controllers.push(running);
    const attacker = await tenant(bed, ns);

    // An honest expression works: that is what the administrator enabled.
    await attacker.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      ...secretSyncs,
      namespace: ns,
      body: {
        apiVersion: 'smk.dev/v1alpha1',
        kind: 'SecretSync',
        metadata: { name: 'dsn', namespace: ns },
        spec: {
          serviceAccountName: 'app',
          objects: [
            {
              objectName: `${ns}/db`,
              objectType: 'secretsmanager',
              jmesPath: [{ path: "join(':', [hosts[0], to_string(port)])", objectAlias: 'DSN' }],
            },
          ],
        },
      },
    });
    const honest = await readyAsTenant(attacker, ns, 'dsn');
    assert.equal(honest.status, 'True', honest.message);
    const dsn = await readSecret(bed.kubeConfig, ns, 'dsn');
    assert.equal(Buffer.from(dsn?.data?.DSN ?? '', 'base64').toString(), 'db-1:5432');

    // Guess lists that put the right first character at different entries.
    const orders = [alphabet, [...alphabet].reverse(), ['R', 'a', 'b'], ['a', 'b', 'R']];
    const seen = new Set<string>();
    for (const [i, guesses] of orders.entries()) {
      await createProbe(attacker, ns, `probe-${i}`, guesses);
      const condition = await readyAsTenant(attacker, ns, `probe-${i}`);
      t.diagnostic(`probe-${i}: ${condition.reason}: ${condition.message}`);
      assert.equal(learned(condition.message, guesses), undefined, 'the status names the right guess');
      assert.equal(condition.status, 'False');
      assert.doesNotMatch(condition.message, /jmesPath\[\d+\]|objects\[\d+\]/);
      seen.add(`${condition.reason}: ${sameText(condition.message, `probe-${i}`)}`);
    }
    assert.equal(seen.size, 1, `the status differs with the guess:\n${[...seen].join('\n')}`);
  });
});

async function overBudget(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) })).text();
  const match = /smk_jmespath_expressions_total\{outcome="failed",reason="OverBudget"\} (\d+)/.exec(text);
  return Number(match?.[1] ?? 0);
}

describe('finding 5: an expression cannot stall the controller', () => {
  it('refused at parse by default: Ready=False InvalidSpec naming the field', async () => {
    const ns = await namespaceWithSecret('expr-stall-off', 'S');
    const running = await startController(bed.kubeConfig, moto.endpoint, { namespaces: [ns] });
    controllers.push(running);
    await bed.kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      ...secretSyncs,
      namespace: ns,
      body: {
        apiVersion: 'smk.dev/v1alpha1',
        kind: 'SecretSync',
        metadata: { name: 'stall', namespace: ns },
        spec: {
          serviceAccountName: 'app',
          refreshInterval: '1s',
          objects: [
            {
              objectName: `${ns}/db`,
              objectType: 'secretsmanager',
              jmesPath: [{ path: doubling(30), objectAlias: 'X' }],
            },
          ],
        },
      },
    });
    const condition = await readyAsTenant(bed.kubeConfig, ns, 'stall');
    assert.equal(condition.reason, 'InvalidSpec');
    assert.match(condition.message, /jmesPath\[0\]\.path is not a plain field path/);
  });

  it('enabled: /healthz answers within 1 s while the expression is stopped at its budget, every refresh', async (t) => {
    const ns = await namespaceWithSecret('expr-stall', 'T');
    const child: ChildProcess = spawn(
      process.execPath,
      [
        `${root}src/cli/main.ts`,
        'controller',
        '--health-port',
        '0',
        '--namespaces',
        ns,
        '--leader-elect',
        'false',
        '--rotation',
        'false',
        '--allow-jmespath-expressions',
      ],
      { env: { ...process.env, SMK_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const port = await waitFor('health port in the log', 30_000, async () => {
      const match = /"healthPort":(\d+)/.exec(stderr);
      return match ? Number(match[1]) : undefined;
    });
    const base = `http://127.0.0.1:${port}`;
    await waitFor('/readyz 200', 30_000, async () => (await fetch(`${base}/readyz`)).status === 200);

    const sampler = sampleLatency(`${base}/healthz`);
    let latencies: number[] = [];
    try {
      await bed.kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
        ...secretSyncs,
        namespace: ns,
        body: {
          apiVersion: 'smk.dev/v1alpha1',
          kind: 'SecretSync',
          metadata: { name: 'stall', namespace: ns },
          spec: {
            serviceAccountName: 'app',
            refreshInterval: '1s',
            objects: [
              {
                objectName: `${ns}/db`,
                objectType: 'secretsmanager',
                jmesPath: [{ path: doubling(30), objectAlias: 'X' }],
              },
            ],
          },
        },
      });
      // Three runs of the expression, a refresh apart, all while /healthz is asked every 100 ms.
      await waitFor(
        'three over-budget evaluations',
        60_000,
        async () => (await overBudget(`${base}/metrics`)) >= 3,
      );
    } finally {
      latencies = sampler.stop();
      const slowest = Math.max(...latencies);
      t.diagnostic(
        `controller /healthz during the attack: ${latencies.length} probes, slowest ${slowest.toFixed(0)} ms, median ${median(latencies).toFixed(0)} ms`,
      );
    }
    assert.ok(latencies.length >= 10, 'too few health probes to judge');
    assert.ok(Math.max(...latencies) < 1_000, `/healthz took ${Math.max(...latencies).toFixed(0)} ms`);

    const condition = await readyAsTenant(bed.kubeConfig, ns, 'stall');
    assert.equal(condition.status, 'False');
    assert.equal(condition.reason, 'InvalidObject');
    assert.match(
      condition.message,
      /jmesPath: an expression did not give a string within its budget \(100 ms of CPU/,
    );
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  });
});
