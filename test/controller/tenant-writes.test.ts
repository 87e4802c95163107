/**
 * Issue 14, finding 2: a tenant with rights only to SecretSyncs and SecretProviderClasses in its own
 * namespace (no Secret access at all) must not get smk to write a Secret it may not write. Each
 * attack as the issue reproduced it — keys of a kubernetes.io/tls, a service-account-token and a
 * pull Secret, labels and annotations (smk.dev/write-through among them) — made as that tenant, with
 * its own RBAC, against the controller; and the legitimate Merge into a Secret that opted in.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  RbacAuthorizationV1Api,
  type V1Secret,
} from '@kubernetes/client-node';
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
  type SecretSyncResource,
  secretSyncApi,
  secretsManager,
  startController,
  waitFor,
} from './harness.ts';

const moto = connectMoto();
const aws = secretsManager(moto.endpoint);
let bed: TestBed;
let ns: string;
let tenant: KubeConfig;
let running: RunningController;
/** The bytes the tenant's own AWS secrets hold: what it tries to plant in other Secrets. */
const forged = 'forged-by-tenant-Q7x2';
const forgedB64 = Buffer.from(forged).toString('base64');
/** A pull secret's value must be JSON, or the API server itself would refuse the write. */
const forgedDockerConfig = '{"auths":{"registry.invalid":{"auth":"Zm9yZ2VkOlE3eDI="}}}';

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
  ns = await bed.newNamespace('tenant-merge');
  await createServiceAccount(bed.kubeConfig, ns, 'app', 'tenant-role');
  await createAwsSecret(aws, `${ns}/forged`, forged);
  await createAwsSecret(aws, `${ns}/forged-docker`, forgedDockerConfig);
  // The tenant: SecretSyncs and SecretProviderClasses in its namespace, nothing else.
  const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: 'sync-author' },
      rules: [
        { apiGroups: ['smk.dev'], resources: ['secretsyncs'], verbs: ['*'] },
        { apiGroups: ['secrets-store.csi.x-k8s.io'], resources: ['secretproviderclasses'], verbs: ['*'] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'sync-author' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sync-author' },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: `tenant-${ns}` }],
    },
  });
  tenant = await bed.kubeConfigFor(`tenant-${ns}`);

  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  const secrets: V1Secret[] = [
    {
      metadata: { name: 'web-tls' },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': 'admin-certificate', 'tls.key': 'admin-private-key' },
    },
    {
      metadata: { name: 'app-token', annotations: { 'kubernetes.io/service-account.name': 'app' } },
      type: 'kubernetes.io/service-account-token',
    },
    {
      metadata: { name: 'registry' },
      type: 'kubernetes.io/dockerconfigjson',
      stringData: { '.dockerconfigjson': '{"auths":{}}' },
    },
    { metadata: { name: 'plain' }, type: 'Opaque', stringData: { OWN: 'kept' } },
    // The SecretProviderClass attacks' own targets: each test judges a Secret no other test touched.
    {
      metadata: { name: 'spc-tls' },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': 'admin-certificate', 'tls.key': 'admin-private-key' },
    },
    { metadata: { name: 'spc-plain' }, type: 'Opaque', stringData: { OWN: 'kept' } },
    {
      metadata: { name: 'invited', annotations: { 'smk.dev/merge-from': 'SecretSync/invited' } },
      type: 'Opaque',
      stringData: { OWN: 'kept' },
    },
  ];
  for (const body of secrets) await core.createNamespacedSecret({ namespace: ns, body });
  await waitFor('the token controller to fill app-token', 30_000, async () =>
    (await readSecret(bed.kubeConfig, ns, 'app-token'))?.data?.token !== undefined ? true : undefined,
  );

  running = await startController(bed.kubeConfig, moto.endpoint, {
    namespaces: [ns],
    secretProviderClasses: true,
  });
  await waitFor('controller ready', 30_000, async () => running.controller.ready);
});

after(async () => {
  await running?.stop();
  await bed?.stop();
});

const asTenant = () => secretSyncApi(tenant);
const admin = () => secretSyncApi(bed.kubeConfig);
const forgedObjects = () => [
  { objectName: `${ns}/forged`, objectType: 'secretsmanager', objectAlias: 'forged' },
  { objectName: `${ns}/forged-docker`, objectType: 'secretsmanager', objectAlias: 'docker' },
];

/**
 * Everything about a Secret a write could change: type, data, labels, annotations (not bookkeeping).
 * Values as digests: a failing comparison must not print a token or key.
 */
async function snapshot(name: string): Promise<string> {
  const secret = await readSecret(bed.kubeConfig, ns, name);
  assert.ok(secret, `Secret ${name} exists`);
  const digest = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 16);
  return JSON.stringify({
    type: secret.type,
    data: Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, digest(value)])),
    labels: secret.metadata?.labels ?? {},
    annotations: secret.metadata?.annotations ?? {},
  });
}

/** The Ready condition once the controller has judged this generation of the SecretSync. */
async function judged(name: string) {
  const resource = await waitFor(`SecretSync ${ns}/${name} judged`, 30_000, async () => {
    const current = await admin().get(ns, name);
    return ready(current) && current.status?.observedGeneration === current.metadata?.generation
      ? current
      : undefined;
  });
  return ready(resource);
}

/** The tenant creates a Merge SecretSync into `secret` mapping its forged values to `keys` (key → object). */
async function mergeAttack(
  name: string,
  secret: string,
  keys: Record<string, 'forged' | 'docker'>,
  extra: Record<string, unknown> = {},
): Promise<SecretSyncResource> {
  return asTenant().create(ns, name, {
    serviceAccountName: 'app',
    objects: forgedObjects(),
    target: {
      name: secret,
      data: Object.entries(keys).map(([key, objectName]) => ({ objectName, key })),
      ...extra,
    },
    creationPolicy: 'Merge',
  });
}

async function refusedAndUntouched(name: string, secret: string, before: string): Promise<void> {
  const condition = await judged(name);
  assert.equal(await snapshot(secret), before, `Secret ${secret} was not written`);
  assert.equal(condition?.status, 'False');
  assert.equal(condition?.reason, 'MergeNotAllowed');
  assert.match(
    condition?.message ?? '',
    new RegExp(
      `^Secret ${ns}/${secret} does not name SecretSync/${name} in its smk.dev/merge-from annotation`,
    ),
  );
  assert.doesNotMatch(condition?.message ?? '', new RegExp(forged));
}

/** The API server's answer to a create: its HTTP code and message. */
async function refusal(create: Promise<unknown>): Promise<{ code: number | undefined; body: string }> {
  try {
    await create;
    return { code: 201, body: '' };
  } catch (error) {
    const failure = error as { code?: number; body?: unknown };
    return { code: failure.code, body: String(failure.body) };
  }
}

describe('creationPolicy Merge, as a tenant with SecretSync rights only', () => {
  it('the tenant may not write Secrets itself (the premise)', async () => {
    const core = tenant.makeApiClient(CoreV1Api);
    const status = await core
      .readNamespacedSecret({ namespace: ns, name: 'plain' })
      .then(() => 200)
      .catch((error: { code?: number }) => error.code);
    assert.equal(status, 403);
  });

  it('cannot set tls.crt / tls.key of a kubernetes.io/tls Secret', async () => {
    const before = await snapshot('web-tls');
    await mergeAttack('tls', 'web-tls', { 'tls.crt': 'forged', 'tls.key': 'forged' });
    await refusedAndUntouched('tls', 'web-tls', before);
  });

  it('cannot set token of a service-account-token Secret', async () => {
    const before = await snapshot('app-token');
    await mergeAttack('token', 'app-token', { token: 'forged' });
    await refusedAndUntouched('token', 'app-token', before);
  });

  it('cannot set .dockerconfigjson of a pull Secret', async () => {
    const before = await snapshot('registry');
    await mergeAttack('pull', 'registry', { '.dockerconfigjson': 'docker' });
    await refusedAndUntouched('pull', 'registry', before);
  });

  it('cannot add labels or annotations to a Secret; reserved keys (smk.dev/write-through) are refused outright', async () => {
    const before = await snapshot('plain');
    const reserved = await refusal(
      mergeAttack(
        'write-through',
        'plain',
        { X: 'forged' },
        {
          labels: { 'smk.dev/write-through': 'true' },
          annotations: { 'smk.dev/owner': 'SecretSync/grab', note: 'planted' },
        },
      ),
    );
    assert.equal(reserved.code, 422, 'the API server refuses reserved keys');
    assert.match(reserved.body, /labels may not use reserved keys/);
    assert.match(reserved.body, /annotations may not use reserved keys/);
    await mergeAttack(
      'labels',
      'plain',
      { X: 'forged' },
      {
        labels: { team: 'tenant' },
        annotations: { note: 'planted' },
      },
    );
    await refusedAndUntouched('labels', 'plain', before);
  });

  it('cannot have smk create a service-account-token Secret (a token minted for its account)', async () => {
    const created = await refusal(
      asTenant().create(ns, 'mint', {
        serviceAccountName: 'app',
        objects: forgedObjects(),
        target: { name: 'minted', type: 'kubernetes.io/service-account-token' },
      }),
    );
    assert.equal(created.code, 422);
    assert.match(created.body, /spec\.target\.type/);
    assert.equal(await readSecret(bed.kubeConfig, ns, 'minted'), undefined);
  });

  it('Owner never adopts an existing Secret smk did not create', async () => {
    const before = await snapshot('registry');
    await asTenant().create(ns, 'adopt', {
      serviceAccountName: 'app',
      objects: forgedObjects(),
      target: {
        name: 'registry',
        type: 'kubernetes.io/dockerconfigjson',
        data: [{ objectName: 'docker', key: '.dockerconfigjson' }],
      },
    });
    const condition = await judged('adopt');
    assert.equal(condition?.reason, 'SecretNotOwned');
    assert.match(
      condition?.message ?? '',
      new RegExp(`^Secret ${ns}/registry exists and was not created by smk`),
    );
    assert.equal(await snapshot('registry'), before);
  });

  it('through a SecretProviderClass neither: refused with a Warning event naming the Secret', async () => {
    const custom = tenant.makeApiClient(CustomObjectsApi);
    const before = { tls: await snapshot('spc-tls'), plain: await snapshot('spc-plain') };
    const spc = (name: string, secretObject: Record<string, unknown>) =>
      custom.createNamespacedCustomObject({
        group: 'secrets-store.csi.x-k8s.io',
        version: 'v1',
        plural: 'secretproviderclasses',
        namespace: ns,
        body: {
          apiVersion: 'secrets-store.csi.x-k8s.io/v1',
          kind: 'SecretProviderClass',
          metadata: {
            name,
            annotations: {
              'smk.dev/sync': 'true',
              'smk.dev/service-account': 'app',
              'smk.dev/creation-policy': 'Merge',
            },
          },
          spec: {
            provider: 'aws',
            parameters: { objects: JSON.stringify(forgedObjects()) },
            secretObjects: [secretObject],
          },
        },
      });
    await spc('spc-tls', { secretName: 'spc-tls', data: [{ objectName: 'forged', key: 'tls.key' }] });
    await spc('spc-labels', {
      secretName: 'spc-plain',
      labels: { 'smk.dev/write-through': 'true' },
      data: [{ objectName: 'forged', key: 'X' }],
    });
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    /** The class's first event, once the Secret it targets has not been written meanwhile. */
    const firstEvent = async (name: string, secret: keyof typeof before) => {
      const outcome = await waitFor(`an event on SecretProviderClass ${name}`, 30_000, async () => {
        if ((await snapshot(`spc-${secret}`)) !== before[secret]) return 'written';
        const list = await core.listNamespacedEvent({
          namespace: ns,
          fieldSelector: `involvedObject.name=${name}`,
        });
        return list.items[0];
      });
      assert.notEqual(outcome, 'written', `${name} wrote its Secret`);
      return outcome as Exclude<typeof outcome, 'written'>;
    };
    const tls = await firstEvent('spc-tls', 'tls');
    assert.equal(`${tls.type}/${tls.reason}`, 'Warning/MergeNotAllowed');
    assert.match(
      tls.message ?? '',
      new RegExp(`Secret ${ns}/spc-tls does not name SecretProviderClass/spc-tls`),
    );
    const labels = await firstEvent('spc-labels', 'plain');
    assert.equal(`${labels.type}/${labels.reason}`, 'Warning/InvalidSpec');
    assert.match(
      labels.message ?? '',
      new RegExp(
        `spec.secretObjects\\[0\\].labels: key "smk.dev/write-through" is reserved .*; not writing Secret ${ns}/spc-plain`,
      ),
    );
    assert.equal(await snapshot('spc-tls'), before.tls);
    assert.equal(await snapshot('spc-plain'), before.plain);
  });

  it('a Secret that opted in with smk.dev/merge-from gets the keys, and only those', async () => {
    await mergeAttack('invited', 'invited', { MERGED: 'forged' }, { labels: { team: 'tenant' } });
    const condition = await judged('invited');
    assert.equal(condition?.status, 'True', condition?.message);
    const secret = await readSecret(bed.kubeConfig, ns, 'invited');
    assert.equal(secret?.data?.MERGED, forgedB64);
    assert.equal(decode(secret?.data?.OWN), 'kept');
    assert.equal(secret?.metadata?.labels?.team, 'tenant');
  });
});
