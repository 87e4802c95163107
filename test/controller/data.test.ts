/**
 * What comes out of a secret, through the real API server (the CRD's schema and CEL) and moto:
 * extractKeys, templates, Secret types with their required keys, immutable, refreshPolicy.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  createAwsSecret,
  createServiceAccount,
  decode,
  installCrds,
  median,
  putAwsSecret,
  type RunningController,
  readSecret,
  ready,
  type SecretSyncResource,
  sampleLatency,
  secretSyncApi,
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
afterEach(async () => {
  for (const running of controllers.splice(0)) await running.stop();
});
after(async () => {
  await bed?.stop();
});

async function namespaceWithController(prefix: string): Promise<string> {
  const namespace = await bed.newNamespace(prefix);
  const running = await startController(bed.kubeConfig, moto.endpoint, { namespaces: [namespace] });
  controllers.push(running);
  await waitFor('controller ready', 30_000, async () => running.controller.ready);
  await createServiceAccount(bed.kubeConfig, namespace, 'app', 'team-a');
  return namespace;
}

const api = () => secretSyncApi(bed.kubeConfig);

async function waitReason(namespace: string, name: string, reason: string, timeoutMs = 30_000) {
  return waitFor(`SecretSync ${namespace}/${name} ${reason}`, timeoutMs, async () => {
    const resource = await api().get(namespace, name);
    return ready(resource)?.reason === reason ? resource : undefined;
  });
}

describe('SecretSync data features', () => {
  it('extractKeys + a template + type basic-auth + immutable: every key, the DSN, the type, immutable', async () => {
    const ns = await namespaceWithController('data-all');
    const value = { username: 'app', password: 'Xq7:/@pw-data-1', port: 5432 };
    await createAwsSecret(aws, `${ns}/db`, JSON.stringify(value));
    await api().create(ns, 'db', {
      serviceAccountName: 'app',
      refreshInterval: '2s',
      objects: [{ objectName: `${ns}/db`, objectType: 'secretsmanager', extractKeys: true }],
      target: {
        type: 'kubernetes.io/basic-auth',
        immutable: true,
        templates: { dsn: 'postgres://{{ username }}:{{ password | url_encode }}@db:{{ port }}/app' },
      },
    });
    await waitReason(ns, 'db', 'Synced');
    const secret = await readSecret(bed.kubeConfig, ns, 'db');
    assert.equal(secret?.type, 'kubernetes.io/basic-auth');
    assert.equal(secret?.immutable, true);
    assert.deepEqual(Object.keys(secret?.data ?? {}).sort(), ['dsn', 'password', 'port', 'username']);
    assert.equal(decode(secret?.data?.password), value.password);
    assert.equal(decode(secret?.data?.port), '5432');
    assert.equal(
      decode(secret?.data?.dsn),
      `postgres://app:${encodeURIComponent(value.password)}@db:5432/app`,
    );

    // A new value cannot go into an immutable Secret: reported, the Secret left as it is.
    await putAwsSecret(aws, `${ns}/db`, JSON.stringify({ ...value, password: 'Zr9-rotated-data-2' }));
    // The AWS layer trusts AWSCURRENT for 15 s (stage TTL); a refresh after that sees the new value.
    const refused = await waitReason(ns, 'db', 'SecretImmutable', 40_000);
    assert.doesNotMatch(JSON.stringify(refused.status), /Zr9-rotated|Xq7/);
    assert.equal(decode((await readSecret(bed.kubeConfig, ns, 'db'))?.data?.password), value.password);
  });

  it('a template naming a missing key and a type missing its key fail by name, never by value', async () => {
    const ns = await namespaceWithController('data-fail');
    await createAwsSecret(aws, `${ns}/tls`, JSON.stringify({ 'tls.crt': 'CERT-Kp3-data-3' }));
    await api().create(ns, 'tls', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/tls`, objectType: 'secretsmanager', extractKeys: true }],
      target: { type: 'kubernetes.io/tls' },
    });
    const tls = await waitReason(ns, 'tls', 'InvalidSpec');
    assert.match(
      ready(tls)?.message ?? '',
      /type kubernetes\.io\/tls needs key "tls\.key"; the target produces "tls\.crt"/,
    );
    await api().create(ns, 'dsn', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/tls`, objectType: 'secretsmanager', extractKeys: true }],
      target: { name: 'dsn', templates: { dsn: '{{ ["tls.key"] }}' } },
    });
    const dsn = await waitReason(ns, 'dsn', 'InvalidObject');
    assert.match(
      ready(dsn)?.message ?? '',
      /spec\.target\.templates\.dsn: \{\{ \["tls\.key"\] \}\} at line 1, column 4 names no file the objects produce; they produce "tls\.crt"/,
    );
    for (const resource of [tls, dsn]) assert.doesNotMatch(JSON.stringify(resource.status), /Kp3/);
    assert.equal(await readSecret(bed.kubeConfig, ns, 'tls'), undefined);
  });

  it('a template reading a name the objects do not produce is InvalidSpec before anything is read', async () => {
    const ns = await namespaceWithController('data-tmpl-early');
    // The secret does not exist: had smk read before checking the names, the reason would be the
    // read's (not found), and a spec mistake would cost an AWS call on every refresh.
    await api().create(ns, 'early', {
      serviceAccountName: 'app',
      objects: [
        {
          objectName: `${ns}/absent`,
          objectType: 'secretsmanager',
          objectAlias: 'db.json',
          jmesPath: [{ path: 'password', objectAlias: 'password' }],
        },
      ],
      target: { templates: { dsn: 'postgres://app:{{ pasword }}@db/app' } },
    });
    const early = await waitReason(ns, 'early', 'InvalidSpec');
    assert.match(
      ready(early)?.message ?? '',
      /spec\.target\.templates\.dsn: \{\{ pasword \}\} at line 1, column 19 names no file the objects produce; they produce "db\.json", "password"/,
    );
  });

  it('a tenant template cannot read files or stall the shared controller; the next SecretSync still syncs', async () => {
    const ns = await namespaceWithController('data-tmpl-bound');
    const value = { username: 'app', password: 'Tn5-data-tmpl-7' };
    await createAwsSecret(aws, `${ns}/db`, JSON.stringify(value));
    const objects = [{ objectName: `${ns}/db`, objectType: 'secretsmanager', extractKeys: true }];
    await api().create(ns, 'files', {
      serviceAccountName: 'app',
      objects,
      target: { templates: { leak: '{% render "/etc/passwd" %}{{ password }}' } },
    });
    const files = await waitReason(ns, 'files', 'InvalidSpec');
    assert.match(
      ready(files)?.message ?? '',
      /spec\.target\.templates\.leak: the render tag is not available: a template cannot read other templates or files/,
    );
    // 10^9 loop steps: without the render budget this would hold the controller's event loop for minutes.
    const thousand = Array.from({ length: 1000 }, (_, i) => i).join(',');
    await api().create(ns, 'stall', {
      serviceAccountName: 'app',
      objects,
      target: {
        templates: {
          spin: `{% assign xs = "${thousand}" | split: "," %}{% for a in xs %}{% for b in xs %}{% for c in xs %}{{ password | size }}{% endfor %}{% endfor %}{% endfor %}`,
        },
      },
    });
    const stall = await waitReason(ns, 'stall', 'InvalidObject');
    assert.match(
      ready(stall)?.message ?? '',
      /spec\.target\.templates\.spin: failed to render: a tag or filter failed on a value, or the templates exceeded their render budget/,
    );
    await api().create(ns, 'fine', {
      serviceAccountName: 'app',
      objects,
      target: { templates: { dsn: '{{ username }}:{{ password | url_encode }}' } },
    });
    await waitReason(ns, 'fine', 'Synced');
    assert.equal(decode((await readSecret(bed.kubeConfig, ns, 'fine'))?.data?.dsn), `app:${value.password}`);
    for (const resource of [files, stall]) assert.doesNotMatch(JSON.stringify(resource.status), /Tn5/);
    assert.equal(await readSecret(bed.kubeConfig, ns, 'stall'), undefined);
  });

  it('a tenant’s budget-spending templates on a 1 s refresh render off the shared controller’s event loop: another namespace still syncs, /healthz answers', async (t) => {
    const attacked = await bed.newNamespace('data-tmpl-noisy');
    const other = await bed.newNamespace('data-tmpl-quiet');
    for (const ns of [attacked, other]) await createServiceAccount(bed.kubeConfig, ns, 'app', `${ns}-role`);
    const value = { username: 'app', password: 'Tn5-noisy-tmpl-3' };
    await createAwsSecret(aws, `${attacked}/db`, JSON.stringify(value));
    await createAwsSecret(
      aws,
      `${other}/db`,
      JSON.stringify({ username: 'quiet', password: 'Tn5-quiet-tmpl-1' }),
    );
    // `smk controller` as a process, as deployed: one event loop serving both namespaces.
    const child: ChildProcess = spawn(
      process.execPath,
      [
        `${root}src/cli/main.ts`,
        'controller',
        '--health-port',
        '0',
        '--namespaces',
        `${attacked},${other}`,
        '--leader-elect',
        'false',
        '--rotation',
        'false',
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

    // The attack, with the tenant's own rights only: 8 SecretSyncs, each 10^9 loop steps (the
    // whole render budget) every second. On the event loop that was 8 × 250 ms of every second.
    const attacker = await tenant(bed, attacked);
    const attackerApi = secretSyncApi(attacker);
    const thousand = Array.from({ length: 1000 }, (_, i) => i).join(',');
    const spin = `{% assign xs = "${thousand}" | split: "," %}{% for a in xs %}{% for b in xs %}{% for c in xs %}{{ password | size }}{% endfor %}{% endfor %}{% endfor %}`;
    const objects = (ns: string) => [
      { objectName: `${ns}/db`, objectType: 'secretsmanager', extractKeys: true },
    ];
    const stalls = Array.from({ length: 8 }, (_, i) => `spin-${i}`);
    const sampler = sampleLatency(`${base}/healthz`);
    let latencies: number[] = [];
    try {
      for (const name of stalls) {
        await attackerApi.create(attacked, name, {
          serviceAccountName: 'app',
          refreshInterval: '1s',
          objects: objects(attacked),
          target: { templates: { spin } },
        });
      }
      await waitFor('every spinning SecretSync judged', 60_000, async () => {
        for (const name of stalls) {
          if (ready(await attackerApi.get(attacked, name))?.reason !== 'InvalidObject') return undefined;
        }
        return true;
      });
      // Meanwhile another namespace syncs, and follows a change of its value on its 1 s refresh.
      await api().create(other, 'quiet', {
        serviceAccountName: 'app',
        refreshInterval: '1s',
        objects: objects(other),
        target: { templates: { dsn: '{{ username }}:{{ password }}' } },
      });
      await waitReason(other, 'quiet', 'Synced');
      assert.equal(
        decode((await readSecret(bed.kubeConfig, other, 'quiet'))?.data?.dsn),
        'quiet:Tn5-quiet-tmpl-1',
      );
      await putAwsSecret(
        aws,
        `${other}/db`,
        JSON.stringify({ username: 'quiet', password: 'Tn5-quiet-tmpl-2' }),
      );
      await waitFor('the other namespace’s refresh', 30_000, async () => {
        const dsn = decode((await readSecret(bed.kubeConfig, other, 'quiet'))?.data?.dsn);
        return dsn === 'quiet:Tn5-quiet-tmpl-2' ? dsn : undefined;
      });
      // The renders ran in the pool's worker threads, round after round (on the old code they ran
      // on the event loop, and there is no such count).
      await waitFor(
        'two rounds of renders stopped in the worker pool',
        60_000,
        async () => (await renders(base)) >= 2 * stalls.length,
      );
    } finally {
      latencies = sampler.stop();
      t.diagnostic(
        `controller /healthz during the attack: ${latencies.length} probes, slowest ${Math.max(...latencies).toFixed(0)} ms, median ${median(latencies).toFixed(0)} ms`,
      );
    }
    assert.ok(latencies.length >= 10, 'too few health probes to judge');
    assert.equal(sampler.unanswered(), 0, 'a /healthz probe got no 200 answer');
    for (const name of stalls) {
      const resource = (await attackerApi.get(attacked, name)) as SecretSyncResource;
      assert.equal(ready(resource)?.reason, 'InvalidObject');
      assert.match(
        ready(resource)?.message ?? '',
        /spec\.target\.templates\.spin: failed to render: .*the values are not shown/,
      );
      assert.doesNotMatch(JSON.stringify(resource.status), /Tn5/);
    }
  });

  it('a synced SecretProviderClass: extractKeys feeds a kubernetes.io/tls secretObject, the same names as a SecretSync', async () => {
    const ns = await namespaceWithController('data-spc');
    const value = { 'tls.crt': 'CERT-Wd4-data-5', 'tls.key': 'KEY-Wd4-data-5' };
    await createAwsSecret(aws, `${ns}/tls`, JSON.stringify(value));
    await bed.kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns,
      plural: 'secretproviderclasses',
      body: {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: {
          name: 'web',
          namespace: ns,
          annotations: { 'smk.dev/sync': 'true', 'smk.dev/service-account': 'app' },
        },
        spec: {
          provider: 'aws',
          parameters: {
            objects: `- {objectName: "${ns}/tls", objectType: secretsmanager, extractKeys: true}`,
          },
          secretObjects: [
            {
              secretName: 'web-tls',
              type: 'kubernetes.io/tls',
              data: [
                { objectName: 'tls.crt', key: 'tls.crt' },
                { objectName: 'tls.key', key: 'tls.key' },
              ],
            },
          ],
        },
      },
    });
    const secret = await waitFor('Secret web-tls', 30_000, () => readSecret(bed.kubeConfig, ns, 'web-tls'));
    assert.equal(secret.type, 'kubernetes.io/tls');
    assert.equal(decode(secret.data?.['tls.key']), value['tls.key']);
    // Versions are recorded per object (what rotation follows), not per extracted key.
    const versions = JSON.parse(secret.metadata?.annotations?.['smk.dev/versions'] ?? '{}') as object;
    assert.deepEqual(Object.keys(versions), [`${ns}_tls`]);
  });

  it('the CRD refuses what spans fields: refreshInterval without Periodic, immutable with Merge, keyPrefix alone', async () => {
    const ns = await bed.newNamespace('data-cel');
    const base = { serviceAccountName: 'app', objects: [{ objectName: 'x', objectType: 'secretsmanager' }] };
    const refused = async (spec: Record<string, unknown>, pattern: RegExp) => {
      await assert.rejects(api().create(ns, 'x', { ...base, ...spec }), (error: unknown) => {
        assert.match(String((error as { body?: unknown }).body ?? error), pattern);
        return true;
      });
    };
    await refused(
      { refreshPolicy: 'OnChange', refreshInterval: '1m' },
      /refreshInterval is only for refreshPolicy Periodic/,
    );
    await refused(
      { creationPolicy: 'Merge', target: { immutable: true } },
      /target.immutable cannot be set with creationPolicy Merge/,
    );
    await refused(
      { objects: [{ objectName: 'x', objectType: 'secretsmanager', keyPrefix: 'a_' }] },
      /keyPrefix needs extractKeys true beside it/,
    );
    await refused({ target: { templates: { 'a/b': '{{ x }}' } } }, /template keys must be Secret keys/);
  });
});

/** Renders the controller stopped or failed in its worker threads (renders that did not hold its event loop). */
async function renders(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  let failed = 0;
  for (const match of text.matchAll(
    /smk_template_renders_total\{outcome="failed",reason="(?:RenderFailed|OverBudget)"\} (\d+)/g,
  )) {
    failed += Number(match[1]);
  }
  return failed;
}
