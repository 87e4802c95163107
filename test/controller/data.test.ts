/**
 * What comes out of a secret, through the real API server (the CRD's schema and CEL) and moto:
 * extractKeys, templates, Secret types with their required keys, immutable, refreshPolicy.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  createAwsSecret,
  createServiceAccount,
  decode,
  installCrds,
  putAwsSecret,
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
const controllers: RunningController[] = [];

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
