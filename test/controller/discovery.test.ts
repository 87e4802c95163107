/**
 * Discovery through the real API server (the CRD's schema and CEL) and moto, behind the counting
 * proxy: a SecretSync whose objects are "every secret under a prefix" gains a key when a secret
 * is created, loses it when the secret is deleted, keeps the Secret as it was when AWS fails, and
 * lists as the workload's own identity; unchanged matches cost no value read.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { DeleteSecretCommand, TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { sessionNameFor } from '../../src/aws/identity.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
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
  roleArn,
  secretSyncApi,
  secretsManager,
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
  proxy.clearFaults();
  for (const running of controllers.splice(0)) await running.stop();
});
after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

const api = () => secretSyncApi(bed.kubeConfig);

async function namespaceWithController(prefix: string): Promise<{ ns: string; running: RunningController }> {
  const ns = await bed.newNamespace(prefix);
  const running = await startController(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
  controllers.push(running);
  await waitFor('controller ready', 30_000, async () => running.controller.ready);
  await createServiceAccount(bed.kubeConfig, ns, 'app', 'discovery-role');
  return { ns, running };
}

async function keysOf(ns: string, name: string): Promise<Record<string, string>> {
  const secret = await readSecret(bed.kubeConfig, ns, name);
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, decode(value)]));
}

async function waitKeys(
  ns: string,
  name: string,
  expected: readonly string[],
): Promise<Record<string, string>> {
  let seen: string[] = [];
  try {
    return await waitFor(`Secret ${ns}/${name} keys ${expected.join(',')}`, 60_000, async () => {
      const data = await keysOf(ns, name);
      seen = Object.keys(data).sort();
      return seen.join(',') === [...expected].sort().join(',') ? data : undefined;
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}; last keys: ${seen.join(',')}`);
  }
}

describe('SecretSync discover', () => {
  it('a new match appears after a refresh, a deleted one goes away, an AWS error keeps the Secret', async () => {
    const { ns, running } = await namespaceWithController('discover');
    await createAwsSecret(aws, `${ns}/app/db`, 'Dq4-discover-db');
    await createAwsSecret(aws, `${ns}/app/cache`, 'Cq4-discover-cache');
    await createAwsSecret(aws, `${ns}/other/x`, 'Xq4-discover-other');
    await api().create(ns, 'found', {
      serviceAccountName: 'app',
      refreshInterval: '2s',
      objects: [{ objectType: 'secretsmanager', discover: { namePrefix: `${ns}/app/`, stripPrefix: true } }],
    });
    const first = await waitKeys(ns, 'found', ['cache', 'db']);
    assert.equal(first.db, 'Dq4-discover-db');

    // Listed as the workload's own identity, never as the controller's.
    const identity = {
      kind: 'webIdentity' as const,
      roleArn: roleArn('discovery-role'),
      subject: `${ns}/app`,
      sessionName: sessionNameFor(ns, 'app'),
      token: () => bed.serviceAccountToken(ns, 'app', 'sts.amazonaws.com'),
    };
    const workloadKey = (await running.clients.credentials(identity)()).accessKeyId;
    const listings = proxy.calls().filter((call) => call.api === 'ListSecrets');
    assert.ok(listings.length > 0);
    assert.ok(listings.every((call) => call.accessKeyId === workloadKey && call.accessKeyId !== 'testing'));

    // Unchanged matches are cache hits: refreshes list, and read no value.
    proxy.resetCounts();
    await waitFor('two more listings', 30_000, async () => proxy.count({ api: 'ListSecrets' }) >= 2);
    assert.equal(proxy.count({ api: 'BatchGetSecretValue' }) + proxy.count({ api: 'GetSecretValue' }), 0);

    await createAwsSecret(aws, `${ns}/app/queue`, 'Qq4-discover-queue');
    const grown = await waitKeys(ns, 'found', ['cache', 'db', 'queue']);
    assert.equal(grown.queue, 'Qq4-discover-queue');

    await aws.send(new DeleteSecretCommand({ SecretId: `${ns}/app/cache`, RecoveryWindowInDays: 7 }));
    await waitKeys(ns, 'found', ['db', 'queue']);

    // AWS fails the listing: the Secret stays as it was, the failure is reported, nothing emptied.
    proxy.addFault({ api: 'ListSecrets', fault: { kind: 'status', status: 503 } });
    await createAwsSecret(aws, `${ns}/app/late`, 'Lq4-discover-late');
    const failed = await waitFor('Ready=False after the listing fails', 30_000, async () => {
      const resource = await api().get(ns, 'found');
      return ready(resource)?.status === 'False' ? resource : undefined;
    });
    assert.equal(ready(failed)?.reason, 'ProviderUnavailable');
    assert.match(ready(failed)?.message ?? '', /objects\[0\] \(discover namePrefix/);
    assert.doesNotMatch(JSON.stringify(failed.status), /q4-discover/);
    assert.deepEqual(Object.keys(await keysOf(ns, 'found')).sort(), ['db', 'queue']);

    proxy.clearFaults();
    await waitKeys(ns, 'found', ['db', 'late', 'queue']);
  });

  it('tags and nameGlob choose exactly; more matches than limit is refused by name, the Secret kept', async () => {
    const { ns } = await namespaceWithController('discover-tags');
    for (const [name, team] of [
      ['svc/a-db', 'pay'],
      ['svc/b-db', 'pay'],
      ['svc/c-db', 'other'],
      ['svc/d-cache', 'pay'],
    ] as const) {
      await createAwsSecret(aws, `${ns}/${name}`, `Tq5-${name}`);
      await aws.send(
        new TagResourceCommand({ SecretId: `${ns}/${name}`, Tags: [{ Key: 'team', Value: team }] }),
      );
    }
    await api().create(ns, 'dbs', {
      serviceAccountName: 'app',
      refreshInterval: '2s',
      objects: [
        {
          objectType: 'secretsmanager',
          discover: {
            namePrefix: `${ns}/svc/`,
            nameGlob: '*-db',
            tags: { team: 'pay' },
            stripPrefix: true,
            limit: 2,
          },
        },
      ],
    });
    const data = await waitKeys(ns, 'dbs', ['a-db', 'b-db']);
    assert.equal(data['a-db'], 'Tq5-svc/a-db');

    await createAwsSecret(aws, `${ns}/svc/e-db`, 'Tq5-svc/e-db');
    await aws.send(
      new TagResourceCommand({ SecretId: `${ns}/svc/e-db`, Tags: [{ Key: 'team', Value: 'pay' }] }),
    );
    const refused = await waitFor('Ready=False TooLarge', 30_000, async () => {
      const resource = await api().get(ns, 'dbs');
      return ready(resource)?.reason === 'TooLarge' ? resource : undefined;
    });
    assert.match(ready(refused)?.message ?? '', /matched more than 2 objects .*at most 100/);
    assert.deepEqual(Object.keys(await keysOf(ns, 'dbs')).sort(), ['a-db', 'b-db']);
  });

  it('a synced SecretProviderClass with discover maps a found secret through secretObjects', async () => {
    const { ns } = await namespaceWithController('discover-spc');
    await createAwsSecret(aws, `${ns}/spc/db`, 'Sq6-discover-spc-db');
    await bed.kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns,
      plural: 'secretproviderclasses',
      body: {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: {
          name: 'found',
          namespace: ns,
          annotations: { 'smk.dev/sync': 'true', 'smk.dev/service-account': 'app' },
        },
        spec: {
          provider: 'aws',
          secretObjects: [
            { secretName: 'from-spc', type: 'Opaque', data: [{ key: 'DB', objectName: 'db' }] },
          ],
          parameters: {
            region: 'us-east-1',
            objects: `- {objectType: secretsmanager, discover: {namePrefix: "${ns}/spc/", stripPrefix: true}}`,
          },
        },
      },
    });
    const data = await waitFor('Secret from-spc', 30_000, async () => {
      const found = await keysOf(ns, 'from-spc');
      return Object.keys(found).length > 0 ? found : undefined;
    });
    assert.deepEqual(data, { DB: 'Sq6-discover-spc-db' });
  });

  it('the CRD refuses discover beside objectName, an ssmparameter discover without a path, limit > 100, 11 discover entries', async () => {
    const ns = await bed.newNamespace('discover-crd');
    const refusal = (spec: Record<string, unknown>) =>
      api()
        .create(ns, 'bad', { serviceAccountName: 'app', ...spec })
        .then(
          () => '',
          (error: { body?: unknown }) => String(error.body),
        );
    assert.match(
      await refusal({
        objects: [{ objectName: 'a', objectType: 'secretsmanager', discover: { namePrefix: 'a' } }],
      }),
      /each object has objectName or discover/,
    );
    assert.match(
      await refusal({ objects: [{ objectType: 'ssmparameter', discover: { namePrefix: '/a' } }] }),
      /for ssmparameter, path/,
    );
    assert.match(
      await refusal({
        objects: [{ objectType: 'secretsmanager', discover: { namePrefix: 'a', limit: 101 } }],
      }),
      /limit/,
    );
    const entries = Array.from({ length: 11 }, (_, p) => ({
      objectType: 'secretsmanager',
      discover: { namePrefix: `p${p}/` },
    }));
    assert.match(await refusal({ objects: entries }), /at most 10 objects may use discover/);
  });
});
