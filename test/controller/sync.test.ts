/**
 * The sync controller against the real test bed (kube-apiserver + etcd) and moto, through the
 * counting/fault proxy: SecretSync → Secret, refresh, refusals, deletion policies, per-namespace
 * identity, and the seed 004 SecretProviderClass drop-in.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import { sessionNameFor } from '../../src/aws/identity.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
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
  readYaml,
  ready,
  roleArn,
  secretSyncApi,
  secretsManager,
  seedSpcPath,
  startController,
  waitFor,
} from './harness.ts';

let bed: TestBed;
let proxy: AwsProxy;
const moto = connectMoto();
const aws = secretsManager(moto.endpoint);
const controllers: RunningController[] = [];

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
  proxy = await startAwsProxy({ target: moto.endpoint });
});

afterEach(async () => {
  for (const running of controllers.splice(0)) await running.stop();
  proxy.clearFaults();
});

after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

/**
 * Fresh namespaces and a controller that watches only them: test files run in parallel, and a
 * controller of another test must not act on this test's objects (nor this one on theirs).
 */
async function namespacesWithController(
  ...prefixes: string[]
): Promise<{ names: string[]; running: RunningController }> {
  const names: string[] = [];
  for (const prefix of prefixes) names.push(await bed.newNamespace(prefix));
  const running = await startController(bed.kubeConfig, proxy.endpoint, { namespaces: names });
  controllers.push(running);
  await waitFor('controller ready', 30_000, async () => running.controller.ready);
  return { names, running };
}

async function namespaceWithController(prefix: string): Promise<string> {
  const { names } = await namespacesWithController(prefix);
  return names[0] as string;
}

const api = () => secretSyncApi(bed.kubeConfig);

async function waitReady(namespace: string, name: string, status = 'True', reason?: string) {
  let seen = 'no Ready condition';
  try {
    return await waitFor(
      `SecretSync ${namespace}/${name} Ready=${status}${reason ? ` (${reason})` : ''}`,
      30_000,
      async () => {
        const resource = await api().get(namespace, name);
        const condition = ready(resource);
        if (condition) seen = `${condition.status} ${condition.reason}: ${condition.message}`;
        if (condition?.status !== status) return undefined;
        if (reason && condition.reason !== reason) return undefined;
        return resource;
      },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen: ${seen}`);
  }
}

async function events(namespace: string, name: string): Promise<string[]> {
  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((event) => `${event.type}/${event.reason}`);
}

describe('SecretSync', () => {
  it('creates the Secret with the right keys and bytes, owned by the SecretSync, and reports Ready', async () => {
    const ns = await namespaceWithController('sync-create');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-a');
    await createAwsSecret(aws, `${ns}/db`, JSON.stringify({ username: 'admin', password: 's3cr3t!' }));
    await createAwsSecret(aws, `${ns}/api-key`, 'key-123');
    await api().create(ns, 'db', {
      serviceAccountName: 'app',
      objects: [
        {
          objectName: `${ns}/db`,
          objectType: 'secretsmanager',
          jmesPath: [
            { path: 'username', objectAlias: 'DB_USER' },
            { path: 'password', objectAlias: 'DB_PASSWORD' },
          ],
        },
        { objectName: `${ns}/api-key`, objectType: 'secretsmanager', objectAlias: 'API_KEY' },
      ],
      target: { name: 'db-env', labels: { app: 'web' } },
    });
    const synced = await waitReady(ns, 'db');
    const secret = await readSecret(bed.kubeConfig, ns, 'db-env');
    assert.ok(secret?.data);
    assert.deepEqual(Object.keys(secret.data).sort(), ['API_KEY', 'DB_PASSWORD', 'DB_USER', `${ns}_db`]);
    assert.equal(decode(secret.data.DB_PASSWORD), 's3cr3t!');
    assert.equal(decode(secret.data.DB_USER), 'admin');
    assert.equal(decode(secret.data.API_KEY), 'key-123');
    assert.equal(secret.type, 'Opaque');
    assert.equal(secret.metadata?.labels?.app, 'web');
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], 'smk');
    assert.equal(secret.metadata?.ownerReferences?.[0]?.kind, 'SecretSync');
    assert.equal(secret.metadata?.ownerReferences?.[0]?.uid, synced.metadata?.uid);
    // Created outright (no read first): smk's create entry owns it until a first update adopts it.
    assert.ok(
      secret.metadata?.managedFields?.some((f) => f.manager === 'smk-create' && f.operation === 'Update'),
    );
    assert.equal(synced.status?.secretName, 'db-env');
    assert.equal(synced.status?.observedGeneration, synced.metadata?.generation);
    assert.equal(synced.status?.syncedVersions?.length, 4);
    assert.match(ready(synced)?.message ?? '', /role arn:aws:iam::123456789012:role\/team-a/);
    // Owner + (default) Delete is exactly what the owner reference does: no finalizer needed.
    assert.deepEqual(synced.metadata?.finalizers ?? [], []);
    await waitFor('Created event', 10_000, async () => (await events(ns, 'db')).includes('Normal/Created'));
    const printed = JSON.stringify(synced.status);
    assert.doesNotMatch(printed, /s3cr3t|key-123/, 'status carries no value');
  });

  it('a key dropped from the spec after the create is taken back (the create entry is adopted)', async () => {
    const ns = await namespaceWithController('sync-drop');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-d');
    await createAwsSecret(aws, `${ns}/a`, 'value-a');
    await createAwsSecret(aws, `${ns}/b`, 'value-b');
    const objects = (...names: string[]) =>
      names.map((name) => ({
        objectName: `${ns}/${name}`,
        objectType: 'secretsmanager',
        objectAlias: name.toUpperCase(),
      }));
    await api().create(ns, 'ab', { serviceAccountName: 'app', objects: objects('a', 'b') });
    await waitReady(ns, 'ab');
    // Someone else's label on the Secret must survive smk's rewrite of the managed fields.
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    await core.patchNamespacedSecret({
      namespace: ns,
      name: 'ab',
      fieldManager: 'someone',
      body: [{ op: 'add', path: '/metadata/labels/theirs', value: 'kept' }],
    });
    await api().patchSpec(ns, 'ab', { objects: objects('a') });
    const secret = await waitFor('B taken back', 20_000, async () => {
      const found = await readSecret(bed.kubeConfig, ns, 'ab');
      return found?.data && !('B' in found.data) ? found : undefined;
    });
    assert.deepEqual(Object.keys(secret.data ?? {}), ['A']);
    assert.equal(decode(secret.data?.A), 'value-a');
    assert.equal(secret.metadata?.labels?.theirs, 'kept');
    const managers = (secret.metadata?.managedFields ?? []).map((f) => `${f.manager}/${f.operation}`).sort();
    assert.deepEqual(managers, ['smk/Apply', 'someone/Update']);
  });

  it('picks up a change in AWS at the next refresh', async () => {
    const ns = await namespaceWithController('sync-refresh');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-r');
    await createAwsSecret(aws, `${ns}/token`, 'v1');
    await api().create(ns, 'token', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/token`, objectType: 'secretsmanager', objectAlias: 'TOKEN' }],
      refreshInterval: '2s',
    });
    await waitReady(ns, 'token');
    assert.equal(decode((await readSecret(bed.kubeConfig, ns, 'token'))?.data?.TOKEN), 'v1');
    await putAwsSecret(aws, `${ns}/token`, 'v2');
    // The AWS layer trusts AWSCURRENT for 15 s (stage TTL); the refresh after that sees v2.
    await waitFor('Secret updated to v2', 40_000, async () => {
      const secret = await readSecret(bed.kubeConfig, ns, 'token');
      return decode(secret?.data?.TOKEN) === 'v2' || undefined;
    });
    await waitFor('Updated event', 10_000, async () =>
      (await events(ns, 'token')).includes('Normal/Updated'),
    );
  });

  it('the API server refuses a spec its schema forbids', async () => {
    const ns = await namespaceWithController('sync-schema');
    const refusals: Record<string, unknown>[] = [
      {
        serviceAccountName: 'app',
        objects: [{ objectName: 'x', objectType: 'secretsmanager' }],
        creationPolicy: 'Adopt',
      },
      { serviceAccountName: 'app', objects: [] },
      { objects: [{ objectName: 'x', objectType: 'secretsmanager' }] },
      {
        serviceAccountName: 'app',
        objects: [{ objectName: 'x', objectType: 'secretsmanager', filePermission: '777' }],
      },
      {
        serviceAccountName: 'app',
        objects: [{ objectName: 'x', objectType: 'secretsmanager' }],
        refreshInterval: 'hourly',
      },
      // CEL: a plain name needs its type (an ARN says it).
      { serviceAccountName: 'app', objects: [{ objectName: 'plain-name-without-type' }] },
    ];
    for (const spec of refusals) {
      await assert.rejects(
        api().create(ns, 'bad', spec),
        (error: { code?: number }) => error.code === 422,
        `the API server must refuse ${JSON.stringify(spec)}`,
      );
    }
  });

  it('a spec the schema allows but smk cannot use gets a clear InvalidSpec condition', async () => {
    const ns = await namespaceWithController('sync-invalid');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-i');
    await api().create(ns, 'bad', {
      serviceAccountName: 'app',
      objects: [
        { objectName: 'first', objectType: 'secretsmanager', objectAlias: 'same' },
        { objectName: 'second', objectType: 'secretsmanager', objectAlias: 'same' },
      ],
    });
    const failed = await waitReady(ns, 'bad', 'False', 'InvalidSpec');
    assert.match(
      ready(failed)?.message ?? '',
      /objects\[1\] \(second\): objectAlias gives file name "same", already used by objects\[0\] \(first\)/,
    );
    assert.equal(await readSecret(bed.kubeConfig, ns, 'bad'), undefined);
  });

  it('a label value the schema allows but the API server refuses for the Secret is InvalidSpec naming the field', async () => {
    const ns = await namespaceWithController('sync-rejected');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-r');
    await createAwsSecret(aws, `${ns}/api-key`, 'rejected-label-value-0');
    // A label value may not hold a space: the SecretSync's schema takes any string, the Secret's does not.
    await api().create(ns, 'labelled', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/api-key`, objectType: 'secretsmanager', objectAlias: 'api-key' }],
      target: { name: 'labelled', labels: { tier: 'not valid' } },
    });
    const failed = await waitReady(ns, 'labelled', 'False', 'InvalidSpec');
    const message = ready(failed)?.message ?? '';
    assert.match(message, /Secret .*labelled: rejected by the API server \(HTTP 422\) at metadata\.labels/);
    assert.doesNotMatch(message, /not valid/, 'the refused value is not echoed');
    assert.equal(await readSecret(bed.kubeConfig, ns, 'labelled'), undefined);
  });

  it('a ServiceAccount without a role is a condition, and fixing it syncs', async () => {
    const ns = await namespaceWithController('sync-norole');
    await createServiceAccount(bed.kubeConfig, ns, 'app', undefined);
    await createAwsSecret(aws, `${ns}/x`, 'x-value');
    await api().create(ns, 'x', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/x`, objectType: 'secretsmanager', objectAlias: 'X' }],
    });
    const failed = await waitReady(ns, 'x', 'False', 'RoleNotConfigured');
    assert.match(
      ready(failed)?.message ?? '',
      new RegExp(`ServiceAccount ${ns}/app has no eks.amazonaws.com/role-arn`),
    );
    await waitFor('RoleNotConfigured event', 10_000, async () =>
      (await events(ns, 'x')).includes('Warning/RoleNotConfigured'),
    );
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    await core.patchNamespacedServiceAccount({
      name: 'app',
      namespace: ns,
      body: [
        {
          op: 'add',
          path: '/metadata/annotations',
          value: { 'eks.amazonaws.com/role-arn': roleArn('team-x') },
        },
      ],
    });
    await waitReady(ns, 'x');
    assert.equal(decode((await readSecret(bed.kubeConfig, ns, 'x'))?.data?.X), 'x-value');
  });

  it('a missing ServiceAccount is ServiceAccountNotFound', async () => {
    const ns = await namespaceWithController('sync-nosa');
    await api().create(ns, 'x', {
      serviceAccountName: 'ghost',
      objects: [{ objectName: 'a', objectType: 'secretsmanager' }],
    });
    const failed = await waitReady(ns, 'x', 'False', 'ServiceAccountNotFound');
    assert.match(ready(failed)?.message ?? '', new RegExp(`ServiceAccount ${ns}/ghost not found`));
  });

  it('when AWS fails, the Secret stays exactly as it was and the condition says why', async () => {
    const ns = await namespaceWithController('sync-outage');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-o');
    await createAwsSecret(aws, `${ns}/pw`, 'before');
    await api().create(ns, 'pw', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/pw`, objectType: 'secretsmanager', objectAlias: 'PW' }],
      refreshInterval: '1s',
    });
    await waitReady(ns, 'pw');
    const before = await readSecret(bed.kubeConfig, ns, 'pw');
    // Reads fail first, then AWS gets a new value: a 1 s refresh between the two would otherwise
    // (rightly) sync it before the outage starts.
    proxy.addFault({ fault: { kind: 'status', status: 503 }, api: 'BatchGetSecretValue' });
    proxy.addFault({ fault: { kind: 'status', status: 503 }, api: 'GetSecretValue' });
    // A read forwarded just before the faults could reach moto after the new value (a loaded
    // machine did this in CI): let it finish first.
    await proxy.idle();
    await putAwsSecret(aws, `${ns}/pw`, 'after');
    try {
      const failed = await waitReady(ns, 'pw', 'False', 'ProviderUnavailable');
      assert.match(ready(failed)?.message ?? '', new RegExp(`objects\\[0\\] \\(${ns}/pw\\)`));
      const during = await readSecret(bed.kubeConfig, ns, 'pw');
      assert.equal(
        during?.metadata?.resourceVersion,
        before?.metadata?.resourceVersion,
        'Secret not touched',
      );
      assert.equal(decode(during?.data?.PW), 'before');
    } finally {
      proxy.clearFaults();
    }
    await waitFor('recovered to the new value', 40_000, async () => {
      const secret = await readSecret(bed.kubeConfig, ns, 'pw');
      return decode(secret?.data?.PW) === 'after' || undefined;
    });
  });

  it('never overwrites a Secret smk does not own', async () => {
    const ns = await namespaceWithController('sync-foreign');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-f');
    await createAwsSecret(aws, `${ns}/v`, 'from-aws');
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'theirs' }, stringData: { V: 'hand-made' } },
    });
    await api().create(ns, 'v', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/v`, objectType: 'secretsmanager', objectAlias: 'V' }],
      target: { name: 'theirs' },
    });
    const failed = await waitReady(ns, 'v', 'False', 'SecretNotOwned');
    assert.match(ready(failed)?.message ?? '', /was not created by smk; not overwriting it/);
    assert.equal(decode((await readSecret(bed.kubeConfig, ns, 'theirs'))?.data?.V), 'hand-made');
  });

  it('creationPolicy Merge adds its keys to a Secret that opted in and takes them back on delete', async () => {
    const ns = await namespaceWithController('sync-merge');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-m');
    await createAwsSecret(aws, `${ns}/m`, 'merged');
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 'shared', annotations: { 'smk.dev/merge-from': 'SecretSync/m' } },
        stringData: { OWN: 'kept' },
      },
    });
    await api().create(ns, 'm', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/m`, objectType: 'secretsmanager', objectAlias: 'M' }],
      target: { name: 'shared' },
      creationPolicy: 'Merge',
      deletionPolicy: 'Delete',
    });
    await waitReady(ns, 'm');
    const merged = await readSecret(bed.kubeConfig, ns, 'shared');
    assert.equal(decode(merged?.data?.OWN), 'kept');
    assert.equal(decode(merged?.data?.M), 'merged');
    await api().delete(ns, 'm');
    await waitFor('merged key removed', 20_000, async () => {
      const secret = await readSecret(bed.kubeConfig, ns, 'shared');
      return (secret && secret.data?.M === undefined && decode(secret.data?.OWN) === 'kept') || undefined;
    });
  });

  it('deletionPolicy Delete removes the Secret; Retain keeps it without the owner reference', async () => {
    const ns = await namespaceWithController('sync-delete');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-d');
    await createAwsSecret(aws, `${ns}/d`, 'd');
    const objects = [{ objectName: `${ns}/d`, objectType: 'secretsmanager', objectAlias: 'D' }];
    await api().create(ns, 'gone', { serviceAccountName: 'app', objects, deletionPolicy: 'Delete' });
    await api().create(ns, 'kept', { serviceAccountName: 'app', objects, deletionPolicy: 'Retain' });
    await waitReady(ns, 'gone');
    const kept = await waitReady(ns, 'kept');
    assert.deepEqual(
      kept.metadata?.finalizers,
      ['smk.dev/secret-sync'],
      'Retain must strip the owner reference first',
    );
    await api().delete(ns, 'gone');
    await api().delete(ns, 'kept');
    await waitFor('both SecretSyncs gone', 20_000, async () => {
      const remaining = await Promise.all([
        api()
          .get(ns, 'gone')
          .catch(() => undefined),
        api()
          .get(ns, 'kept')
          .catch(() => undefined),
      ]);
      return remaining.every((r) => r === undefined) || undefined;
    });
    await waitFor(
      'Secret of "gone" deleted',
      10_000,
      async () => (await readSecret(bed.kubeConfig, ns, 'gone')) === undefined,
    );
    const retained = await readSecret(bed.kubeConfig, ns, 'kept');
    assert.equal(decode(retained?.data?.D), 'd');
    assert.deepEqual(retained?.metadata?.ownerReferences ?? [], []);
  });

  it('repairs a managed Secret that was deleted behind its back', async () => {
    const ns = await namespaceWithController('sync-drift');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-r2');
    await createAwsSecret(aws, `${ns}/r`, 'r');
    await api().create(ns, 'r', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/r`, objectType: 'secretsmanager', objectAlias: 'R' }],
    });
    await waitReady(ns, 'r');
    const first = await readSecret(bed.kubeConfig, ns, 'r');
    await bed.kubeConfig.makeApiClient(CoreV1Api).deleteNamespacedSecret({ name: 'r', namespace: ns });
    const back = await waitFor('Secret recreated', 20_000, async () => {
      const secret = await readSecret(bed.kubeConfig, ns, 'r');
      return secret && secret.metadata?.uid !== first?.metadata?.uid ? secret : undefined;
    });
    assert.equal(decode(back.data?.R), 'r');
  });
});

describe('restart', () => {
  it('a restarted controller does not fetch again what was synced recently (no herd), yet repairs drift', async () => {
    const ns = await namespaceWithController('restart');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-restart');
    await createAwsSecret(aws, `${ns}/h`, 'herd');
    await api().create(ns, 'h', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/h`, objectType: 'secretsmanager', objectAlias: 'H' }],
    });
    await waitReady(ns, 'h');
    for (const running of controllers.splice(0)) await running.stop();

    proxy.resetCounts();
    const restarted = await startController(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    controllers.push(restarted);
    await waitFor('restarted controller ready', 30_000, async () => restarted.controller.ready);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(proxy.count({ service: 'secretsmanager' }), 0, 'nothing fetched at start');

    await bed.kubeConfig.makeApiClient(CoreV1Api).deleteNamespacedSecret({ name: 'h', namespace: ns });
    await waitFor('Secret recreated by the restarted controller', 20_000, async () =>
      decode((await readSecret(bed.kubeConfig, ns, 'h'))?.data?.H) === 'herd' ? true : undefined,
    );
  });

  it("a cold start reads the queued syncs' secrets ahead, 20 to a call: 60 SecretSyncs of one account take 3 batch calls", async (t) => {
    const ns = await bed.newNamespace('read-ahead');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-read-ahead');
    const count = 60;
    for (let i = 0; i < count; i++) {
      await createAwsSecret(aws, `${ns}/s${i}`, `read-ahead-value-${i}-Ra7`);
      await api().create(ns, `s${i}`, {
        serviceAccountName: 'app',
        objects: [{ objectName: `${ns}/s${i}`, objectType: 'secretsmanager', objectAlias: 'V' }],
      });
    }
    proxy.resetCounts();
    const running = await startController(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    controllers.push(running);
    await waitFor('every SecretSync Ready', 60_000, async () => {
      const items = (await api().list(ns)).items;
      return items.filter((item) => ready(item)?.status === 'True').length === count;
    });
    const calls = proxy.count({ api: 'BatchGetSecretValue' }) + proxy.count({ api: 'GetSecretValue' });
    t.diagnostic(`${calls} value calls`);
    // Without the read-ahead, the 4 syncs running at once made calls of about 3 (23 calls, 2.2× the time).
    assert.ok(calls <= 5, `${calls} value calls for ${count} SecretSyncs over ${count} secrets`);
    assert.equal(decode((await readSecret(bed.kubeConfig, ns, 's59'))?.data?.V), 'read-ahead-value-59-Ra7');
  });

  it('the read-ahead never mixes identities: two accounts of one namespace, queued side by side, each read only its own secrets', async (t) => {
    const ns = await bed.newNamespace('read-ahead-two');
    await createServiceAccount(bed.kubeConfig, ns, 'one', 'team-read-ahead-one');
    await createServiceAccount(bed.kubeConfig, ns, 'two', 'team-read-ahead-two');
    const count = 30;
    for (let i = 0; i < count; i++) {
      for (const account of ['one', 'two']) {
        await createAwsSecret(aws, `${ns}/${account}-${i}`, `read-ahead-${account}-${i}-Rb8`);
        await api().create(ns, `${account}-${i}`, {
          serviceAccountName: account,
          objects: [{ objectName: `${ns}/${account}-${i}`, objectType: 'secretsmanager', objectAlias: 'V' }],
        });
      }
    }
    proxy.resetCounts();
    const running = await startController(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    controllers.push(running);
    await waitFor('every SecretSync Ready', 60_000, async () => {
      const items = (await api().list(ns)).items;
      return items.filter((item) => ready(item)?.status === 'True').length === 2 * count;
    });
    const reads = proxy
      .calls()
      .filter((call) => call.api === 'BatchGetSecretValue' || call.api === 'GetSecretValue');
    const accountsByKey = new Map<string, Set<string>>();
    for (const call of reads) {
      const accounts = accountsByKey.get(call.accessKeyId ?? '') ?? new Set<string>();
      for (const id of call.ids) accounts.add(id.slice(ns.length + 1).split('-')[0] ?? '');
      accountsByKey.set(call.accessKeyId ?? '', accounts);
    }
    t.diagnostic(`${reads.length} value calls by ${accountsByKey.size} identities`);
    assert.equal(accountsByKey.size, 2, 'each account read as its own role');
    for (const accounts of accountsByKey.values()) assert.equal(accounts.size, 1, [...accounts].join(', '));
    assert.ok(reads.length <= 6, `${reads.length} value calls for two accounts' 30 secrets each`);
  });

  it('a force-sync set while no controller ran is honoured at the next start', async () => {
    const ns = await namespaceWithController('restart-force');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'team-force');
    await createAwsSecret(aws, `${ns}/f`, 'before');
    await api().create(ns, 'f', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${ns}/f`, objectType: 'secretsmanager', objectAlias: 'F' }],
    });
    await waitReady(ns, 'f');
    for (const running of controllers.splice(0)) await running.stop();
    await putAwsSecret(aws, `${ns}/f`, 'after');
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // a whole second after the sync
    await api().poke(ns, 'f');

    const restarted = await startController(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
    controllers.push(restarted);
    await waitFor('the forced sync at start', 20_000, async () =>
      decode((await readSecret(bed.kubeConfig, ns, 'f'))?.data?.F) === 'after' ? true : undefined,
    );
  });
});

describe('per-namespace identity', () => {
  it('each namespace assumes its own role; a role AWS refuses gets nothing, even for a cached secret', async () => {
    const {
      names: [nsA = '', nsB = ''],
      running,
    } = await namespacesWithController('tenant-a', 'tenant-b');
    await createServiceAccount(bed.kubeConfig, nsA, 'app', 'tenant-a-role');
    await createServiceAccount(bed.kubeConfig, nsB, 'app', 'tenant-b-role');
    const shared = `${nsA}/shared`;
    await createAwsSecret(aws, shared, 'only-for-a');
    const objects = [{ objectName: shared, objectType: 'secretsmanager', objectAlias: 'S' }];

    // Role selection: which role does each namespace assume? (moto accepts any web identity, moto.md #5.)
    await moto.recorder.reset();
    await moto.recorder.start();
    await api().create(nsA, 's', { serviceAccountName: 'app', objects });
    const syncedA = await waitReady(nsA, 's');
    assert.match(ready(syncedA)?.message ?? '', /role\/tenant-a-role/);

    // Learn tenant B's access key as the controller will get it, and have AWS refuse it.
    const identityB = {
      kind: 'webIdentity' as const,
      roleArn: roleArn('tenant-b-role'),
      subject: `${nsB}/app`,
      sessionName: sessionNameFor(nsB, 'app'),
      token: () => bed.serviceAccountToken(nsB, 'app', 'sts.amazonaws.com'),
    };
    const keyB = (await running.clients.credentials(identityB)()).accessKeyId;
    proxy.refuseAccessKey(keyB);
    proxy.resetCounts();

    await api().create(nsB, 's', { serviceAccountName: 'app', objects });
    const refused = await waitReady(nsB, 's', 'False', 'AccessDenied');
    assert.match(ready(refused)?.message ?? '', new RegExp(`objects\\[0\\] \\(${shared}\\)`));
    assert.equal(await readSecret(bed.kubeConfig, nsB, 's'), undefined, 'tenant B got no Secret');
    assert.ok(
      proxy.count({ accessKeyId: keyB }) > 0,
      'tenant B asked AWS itself instead of being served from the cache',
    );
    assert.equal(decode((await readSecret(bed.kubeConfig, nsA, 's'))?.data?.S), 'only-for-a');

    // moto is shared by every test file running at once: only this test's sessions count.
    const sessions = [sessionNameFor(nsA, 'app'), sessionNameFor(nsB, 'app')];
    const assumed = (await moto.recorder.download())
      .filter((call) => call.body.includes('AssumeRoleWithWebIdentity'))
      .filter((call) =>
        sessions.includes(decodeURIComponent(/RoleSessionName=([^&]+)/.exec(call.body)?.[1] ?? '')),
      )
      .map((call) => decodeURIComponent(/RoleArn=([^&]+)/.exec(call.body)?.[1] ?? ''));
    await moto.recorder.stop();
    assert.ok(assumed.includes(roleArn('tenant-a-role')), 'tenant A assumed its role');
    assert.ok(assumed.includes(roleArn('tenant-b-role')), 'tenant B assumed its role');
    assert.ok(!assumed.some((arn) => !arn.includes('tenant-') && arn !== ''), 'no other role was assumed');
    proxy.allowAccessKey(keyB);
  });
});

describe('SecretProviderClass drop-in', () => {
  it('seed 004 plus the smk annotations produces foosecret with SECRET_API_KEY, with no pod', async () => {
    const ns = await namespaceWithController('seed-004');
    await createServiceAccount(bed.kubeConfig, ns, 'nginx-deployment-sa', 'nginx-deployment-role');
    // The seed's secret name is global in moto; create it once for the whole run.
    await createAwsSecret(aws, 'CSI-driver-test-secret', 'secretkey').catch((error: { name?: string }) => {
      if (error.name !== 'ResourceExistsException') throw error;
    });
    const spc = await readYaml<KubernetesObject>(seedSpcPath);
    const custom = bed.kubeConfig.makeApiClient(CustomObjectsApi);
    await custom.createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns,
      plural: 'secretproviderclasses',
      body: { ...spc, metadata: { ...spc.metadata, namespace: ns } },
    });
    const secret = await waitFor('foosecret', 30_000, async () =>
      readSecret(bed.kubeConfig, ns, 'foosecret'),
    );
    assert.deepEqual(Object.keys(secret.data ?? {}), ['SECRET_API_KEY']);
    assert.equal(decode(secret.data?.SECRET_API_KEY), 'secretkey');
    assert.equal(secret.type, 'Opaque');
    assert.equal(secret.metadata?.ownerReferences?.[0]?.kind, 'SecretProviderClass');
    await waitFor('Created event on the SPC', 10_000, async () =>
      (await events(ns, 'nginx-deployment-aws-secrets')).includes('Normal/Created'),
    );

    // Deleting the SecretProviderClass removes what it synced (its default deletionPolicy is Delete).
    await custom.deleteNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns,
      plural: 'secretproviderclasses',
      name: 'nginx-deployment-aws-secrets',
    });
    await waitFor(
      'foosecret deleted',
      20_000,
      async () => (await readSecret(bed.kubeConfig, ns, 'foosecret')) === undefined,
    );
  });
});
