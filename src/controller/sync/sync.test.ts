import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Secret } from '@kubernetes/client-node';
import {
  AccessDeniedError,
  InvalidInputError,
  NotFoundError,
  type SmkError,
  TransientError,
} from '../../core/errors.ts';
import type { ReadResult, SecretReader, SecretRequest } from '../../core/source.ts';
import { KubeHttpError, kubeError } from '../../kube/client.ts';
import type { IdentityResolver } from '../identity.ts';
import { managedByLabel, managedByValue, secretSyncJob } from '../jobs.ts';
import { createManager } from './plan.ts';
import { type SyncDeps, syncJob } from './sync.ts';

/** A reader over a map of secret name → value (or error), counting reads. */
function fakeReader(values: Record<string, string | SmkError>) {
  const reads: SecretRequest[][] = [];
  const reader: SecretReader = {
    async read(requests) {
      reads.push([...requests]);
      return requests.map((request): ReadResult => {
        const value = values[request.id];
        if (value === undefined) return { ok: false, error: new NotFoundError(`${request.id}: not found`) };
        if (typeof value !== 'string') return { ok: false, error: value };
        return {
          ok: true,
          value: {
            request,
            arn: `arn:aws:secretsmanager:${request.region}:111122223333:secret:${request.id}-AbCdEf`,
            name: request.id,
            versionId: `v-${request.id}`,
            bytes: new TextEncoder().encode(value),
            binary: false,
          },
        };
      });
    },
    async describe() {
      throw new Error('not used');
    },
  };
  return { reader, reads };
}

/**
 * The API server as a map, and an informer cache that (like the controller's) sees only Secrets
 * labelled as smk's. A create records smk's create entry in managedFields, as the server does.
 */
function deps(reader: SecretReader, secrets = new Map<string, V1Secret>(), identityError?: SmkError) {
  const applied: Array<{ body: V1Secret; force: boolean; manager: string }> = [];
  const created: V1Secret[] = [];
  const adopted: string[] = [];
  let reads = 0;
  const identities: IdentityResolver = {
    async resolve(namespace, account) {
      if (identityError) throw identityError;
      return { reader, roleArn: `arn:aws:iam::111122223333:role/${namespace}-${account}`, sessionName: 's' };
    },
  };
  const keyOf = (body: V1Secret) => `${body.metadata?.namespace}/${body.metadata?.name}`;
  const fields = (record: Record<string, string> | undefined) =>
    Object.fromEntries(Object.keys(record ?? {}).map((key) => [`f:${key}`, {}]));
  const value: SyncDeps = {
    identities,
    defaultRegion: 'us-east-1',
    cachedSecret(namespace, name) {
      const secret = secrets.get(`${namespace}/${name}`);
      return secret?.metadata?.labels?.[managedByLabel] === managedByValue ? secret : undefined;
    },
    async readSecret(namespace, name) {
      reads += 1;
      return secrets.get(`${namespace}/${name}`);
    },
    async createSecret(body) {
      if (secrets.has(keyOf(body))) return undefined;
      const stored: V1Secret = {
        ...body,
        metadata: {
          ...body.metadata,
          resourceVersion: '1',
          managedFields: [
            {
              manager: createManager,
              operation: 'Update',
              fieldsV1: {
                'f:data': fields(body.data),
                'f:metadata': {
                  'f:labels': fields(body.metadata?.labels),
                  'f:annotations': fields(body.metadata?.annotations),
                },
              },
            },
          ],
        },
      };
      created.push(stored);
      secrets.set(keyOf(body), stored);
      return stored;
    },
    async adoptCreatedFields(namespace, name, resourceVersion, manager) {
      adopted.push(`${namespace}/${name}@${resourceVersion} → ${manager}`);
      return String(Number(resourceVersion) + 1);
    },
    async applySecret(body, options) {
      applied.push({ body, ...options });
      secrets.set(keyOf(body), body);
      return body;
    },
  };
  return {
    deps: value,
    applied,
    created,
    adopted,
    secrets,
    get reads() {
      return reads;
    },
  };
}

function job(spec: Record<string, unknown> = {}) {
  return secretSyncJob({
    metadata: { name: 'db', namespace: 'team-a', uid: 'u1', generation: 2 },
    spec: {
      serviceAccountName: 'app',
      objects: [
        { objectName: 'db-creds', jmesPath: [{ path: 'password', objectAlias: 'password' }] },
        { objectName: 'api-key', objectType: 'secretsmanager' },
      ].map((object) => ({ objectType: 'secretsmanager', ...object })),
      ...spec,
    },
  });
}

describe('syncJob', () => {
  it('writes every produced file as a key and reports versions and role', async () => {
    const { reader, reads } = fakeReader({ 'db-creds': '{"password":"pw"}', 'api-key': 'k' });
    const world = deps(reader);
    const outcome = await syncJob(job(), world.deps);
    assert.equal(outcome.ok, true);
    if (!outcome.ok) return;
    assert.deepEqual(outcome.targets, [{ name: 'db', action: 'created' }]);
    assert.equal(outcome.roleArn, 'arn:aws:iam::111122223333:role/team-a-app');
    assert.deepEqual(outcome.versions.map((v) => `${v.objectName}@${v.versionId}`).sort(), [
      'api-key@v-api-key',
      'db-creds@v-db-creds',
      'password@v-db-creds',
    ]);
    assert.equal(reads.length, 1, 'one read for the whole spec');
    assert.equal(world.reads, 0, 'created outright: no read of the Secret first');
    assert.equal(world.applied.length, 0);
    const data = world.created[0]?.data ?? {};
    assert.deepEqual(Object.keys(data).sort(), ['api-key', 'db-creds', 'password']);
    assert.equal(Buffer.from(data.password ?? '', 'base64').toString(), 'pw');
  });

  it('a second sync with nothing changed writes nothing', async () => {
    const { reader } = fakeReader({ 'db-creds': '{"password":"pw"}', 'api-key': 'k' });
    const world = deps(reader);
    await syncJob(job(), world.deps);
    const outcome = await syncJob(job(), world.deps);
    assert.deepEqual(outcome.ok && outcome.targets, [{ name: 'db', action: 'unchanged' }]);
    assert.equal(world.created.length, 1);
    assert.equal(world.applied.length, 0);
    assert.equal(world.reads, 0, 'the cache answered');
  });

  it('a key dropped after the create is taken back: the create entry is adopted, then applied', async () => {
    const { reader } = fakeReader({ 'db-creds': '{"password":"pw"}', 'api-key': 'k' });
    const world = deps(reader);
    await syncJob(job(), world.deps);
    const fewer = job({ objects: [{ objectName: 'api-key', objectType: 'secretsmanager' }] });
    const outcome = await syncJob(fewer, world.deps);
    assert.deepEqual(outcome.ok && outcome.targets, [{ name: 'db', action: 'updated' }]);
    assert.deepEqual(world.adopted, ['team-a/db@1 → smk']);
    const apply = world.applied[0];
    assert.deepEqual(Object.keys(apply?.body.data ?? {}), ['api-key']);
    assert.equal(apply?.body.metadata?.resourceVersion, '2', 'applied against the adopted version');
  });

  /** What the controller's Objects throw: our sentinel error wrapping the API server's answer. */
  const apiError = (status: number, details: ConstructorParameters<typeof KubeHttpError>[3] = {}) =>
    kubeError(
      new KubeHttpError('PATCH', '/api/v1/namespaces/team-a/secrets/db', status, details),
      'Secret team-a/db',
    );

  it('a Secret the API server refuses (422) is InvalidSpec naming the field, not retried', async () => {
    const { reader } = fakeReader({ 'db-creds': '{"password":"pw"}', 'api-key': 'k' });
    const world = deps(reader);
    world.deps.createSecret = async () => {
      throw apiError(422, { reason: 'Invalid', fields: ['metadata.labels'] });
    };
    const outcome = await syncJob(job(), world.deps);
    assert.equal(!outcome.ok && outcome.reason, 'InvalidSpec');
    assert.equal(!outcome.ok && outcome.retry, false);
    assert.match(
      !outcome.ok ? outcome.message : '',
      /Secret team-a\/db: rejected by the API server \(HTTP 422\) at metadata\.labels/,
    );
  });

  const writeFailures: Array<[string, 'adopt' | 'apply', SmkError, string, number | undefined]> = [
    ['changed since read (409)', 'apply', apiError(409, { reason: 'Conflict' }), 'Conflict', undefined],
    ["the adoption's resourceVersion test failed (422)", 'adopt', apiError(422), 'Conflict', undefined],
    ['throttled with Retry-After', 'apply', apiError(429, { retryAfterMs: 7000 }), 'ApiUnavailable', 7000],
    ['unavailable', 'apply', apiError(503), 'ApiUnavailable', undefined],
  ];
  for (const [what, step, error, reason, retryAfterMs] of writeFailures) {
    it(`an update ${what} → ${reason}, retried`, async () => {
      const { reader } = fakeReader({ 'db-creds': '{"password":"pw"}', 'api-key': 'k' });
      const world = deps(reader);
      await syncJob(job(), world.deps);
      const fail = async (): Promise<never> => {
        throw error;
      };
      if (step === 'adopt') world.deps.adoptCreatedFields = fail;
      else world.deps.applySecret = fail;
      const fewer = job({ objects: [{ objectName: 'api-key', objectType: 'secretsmanager' }] });
      const outcome = await syncJob(fewer, world.deps);
      assert.equal(!outcome.ok && outcome.reason, reason);
      assert.equal(!outcome.ok && outcome.retry, true);
      assert.equal(!outcome.ok ? outcome.retryAfterMs : 'ok', retryAfterMs);
    });
  }

  const fetchFailures: Array<[string, SmkError, string]> = [
    ['refused by AWS', new AccessDeniedError('db-creds: access denied'), 'AccessDenied'],
    ['AWS unavailable', new TransientError('db-creds: HTTP 503'), 'ProviderUnavailable'],
  ];
  for (const [title, error, reason] of fetchFailures) {
    it(`${title}: nothing is written, the reason is ${reason}`, async () => {
      const { reader } = fakeReader({ 'db-creds': error, 'api-key': 'k' });
      const existing: V1Secret = { metadata: { name: 'db', namespace: 'team-a' }, data: { old: 'b2xk' } };
      const world = deps(reader, new Map([['team-a/db', existing]]));
      const outcome = await syncJob(job(), world.deps);
      assert.equal(outcome.ok, false);
      assert.equal(!outcome.ok && outcome.reason, reason);
      assert.equal(!outcome.ok && outcome.retry, true);
      assert.match(!outcome.ok ? outcome.message : '', /SecretSync team-a\/db: objects\[0\] \(db-creds\)/);
      assert.equal(world.applied.length, 0);
      assert.equal(world.secrets.get('team-a/db'), existing);
    });
  }

  it('a missing AWS secret is SecretNotFound', async () => {
    const { reader } = fakeReader({ 'api-key': 'k' });
    const outcome = await syncJob(job(), deps(reader).deps);
    assert.equal(!outcome.ok && outcome.reason, 'SecretNotFound');
  });

  const identityFailures: Array<[SmkError, string]> = [
    [new NotFoundError('ServiceAccount team-a/app not found'), 'ServiceAccountNotFound'],
    [
      new InvalidInputError('ServiceAccount team-a/app has no eks.amazonaws.com/role-arn annotation'),
      'RoleNotConfigured',
    ],
    [new TransientError('ServiceAccount team-a/app: HTTP 500'), 'ApiUnavailable'],
  ];
  for (const [error, reason] of identityFailures) {
    it(`identity failure → ${reason}, with the account named`, async () => {
      const { reader, reads } = fakeReader({});
      const outcome = await syncJob(job(), deps(reader, new Map(), error).deps);
      assert.equal(!outcome.ok && outcome.reason, reason);
      assert.match(!outcome.ok ? outcome.message : '', /ServiceAccount team-a\/app/);
      assert.equal(reads.length, 0);
    });
  }

  it('an invalid objects spec is InvalidSpec and not retried', async () => {
    const { reader } = fakeReader({});
    const outcome = await syncJob(
      job({ objects: [{ objectName: 'x', objectType: 'vault' }] }),
      deps(reader).deps,
    );
    assert.equal(!outcome.ok && outcome.reason, 'InvalidSpec');
    assert.equal(!outcome.ok && outcome.retry, false);
    assert.match(!outcome.ok ? outcome.message : '', /objects\[0\] \(x\)/);
  });

  it('a Secret that is not smk-owned is refused and left alone', async () => {
    const { reader } = fakeReader({ 'db-creds': '{"password":"pw"}', 'api-key': 'k' });
    const theirs: V1Secret = {
      metadata: { name: 'db', namespace: 'team-a' },
      type: 'Opaque',
      data: { mine: 'eA==' },
    };
    const world = deps(reader, new Map([['team-a/db', theirs]]));
    const outcome = await syncJob(job(), world.deps);
    assert.equal(!outcome.ok && outcome.reason, 'SecretNotOwned');
    assert.match(!outcome.ok ? outcome.message : '', /Secret team-a\/db exists and was not created by smk/);
    assert.equal(world.reads, 1, 'the create found it (409), then it was read and judged');
    assert.equal(world.applied.length, 0);
    assert.equal(world.created.length, 0);
    assert.equal(world.secrets.get('team-a/db'), theirs);
  });

  it('messages never carry a value', async () => {
    const { reader } = fakeReader({ 'db-creds': '{"user":"hunter2-secret"}', 'api-key': 'k' });
    const outcome = await syncJob(job(), deps(reader).deps);
    assert.equal(!outcome.ok && outcome.reason, 'InvalidObject');
    assert.doesNotMatch(!outcome.ok ? outcome.message : '', /hunter2/);
  });
});

describe('syncJob: data features (extractKeys, templates, types, immutable, refreshPolicy)', () => {
  const dbValue = JSON.stringify({ username: 'app', password: 'pw:/@x', port: 5432 });
  const extractJob = (extra: Record<string, unknown> = {}, target: Record<string, unknown> = {}) =>
    job({
      objects: [{ objectName: 'db-creds', objectType: 'secretsmanager', extractKeys: true }],
      target: { ...target },
      ...extra,
    });
  const decoded = (secret: V1Secret | undefined) =>
    Object.fromEntries(
      Object.entries(secret?.data ?? {}).map(([key, value]) => [
        key,
        Buffer.from(value, 'base64').toString(),
      ]),
    );

  it('extractKeys and a template: every key plus the rendered DSN; versions per object', async () => {
    const { reader } = fakeReader({ 'db-creds': dbValue });
    const world = deps(reader);
    const outcome = await syncJob(
      extractJob(
        {},
        { templates: { DSN: 'postgres://{{ username }}:{{ password | url_encode }}@db:{{ port }}/app' } },
      ),
      world.deps,
    );
    assert.equal(outcome.ok, true, JSON.stringify(outcome));
    assert.deepEqual(decoded(world.created[0]), {
      username: 'app',
      password: 'pw:/@x',
      port: '5432',
      DSN: 'postgres://app:pw%3A%2F%40x@db:5432/app',
    });
    assert.deepEqual(outcome.ok && outcome.versions.map((v) => v.objectName), ['db-creds', 'DSN']);
  });

  it('a template naming a key the value lacks is InvalidSpec naming the key, never a value; nothing written', async () => {
    const { reader } = fakeReader({ 'db-creds': dbValue });
    const world = deps(reader);
    const outcome = await syncJob(extractJob({}, { templates: { DSN: '{{ user }}' } }), world.deps);
    assert.equal(outcome.ok, false);
    if (outcome.ok) return;
    assert.equal(outcome.reason, 'InvalidObject');
    assert.match(
      outcome.message,
      /spec\.target\.templates\.DSN: \{\{ user \}\} at line 1, column 4 names no file the objects produce/,
    );
    assert.doesNotMatch(outcome.message, /pw:/);
    assert.equal(world.created.length, 0);
  });

  it('a template with bad syntax is InvalidSpec before anything is read', async () => {
    const { reader, reads } = fakeReader({ 'db-creds': dbValue });
    const outcome = await syncJob(extractJob({}, { templates: { DSN: '{{ if x }}' } }), deps(reader).deps);
    assert.equal(outcome.ok === false && outcome.reason, 'InvalidSpec');
    assert.equal(reads.length, 0);
  });

  it('type kubernetes.io/tls without tls.key is refused before writing, naming the missing key', async () => {
    const { reader } = fakeReader({ 'db-creds': JSON.stringify({ 'tls.crt': 'CERT-x1' }) });
    const world = deps(reader);
    const outcome = await syncJob(extractJob({}, { type: 'kubernetes.io/tls' }), world.deps);
    assert.equal(outcome.ok, false);
    assert.match(
      (!outcome.ok && outcome.message) || '',
      /Secret db: type kubernetes\.io\/tls needs key "tls\.key"; the target produces "tls\.crt"/,
    );
    assert.equal(world.created.length, 0);
  });

  it('type kubernetes.io/basic-auth needs username or password', async () => {
    const { reader } = fakeReader({ 'db-creds': JSON.stringify({ user: 'x' }) });
    const outcome = await syncJob(extractJob({}, { type: 'kubernetes.io/basic-auth' }), deps(reader).deps);
    assert.match((!outcome.ok && outcome.message) || '', /needs key "username" or "password"/);
    const ok = await syncJob(
      extractJob({}, { type: 'kubernetes.io/basic-auth' }),
      deps(fakeReader({ 'db-creds': dbValue }).reader).deps,
    );
    assert.equal(ok.ok, true);
  });

  it('immutable: created immutable; a changed value is refused (SecretImmutable), never forced', async () => {
    const values: Record<string, string> = { 'db-creds': dbValue };
    const world = deps(fakeReader(values).reader);
    const first = await syncJob(extractJob({}, { immutable: true }), world.deps);
    assert.equal(first.ok, true);
    assert.equal(world.created[0]?.immutable, true);
    const again = await syncJob(extractJob({}, { immutable: true }), world.deps);
    assert.deepEqual(again.ok && again.targets, [{ name: 'db', action: 'unchanged' }]);
    values['db-creds'] = JSON.stringify({ username: 'app', password: 'new' });
    const changed = await syncJob(
      extractJob({}, { immutable: true }),
      deps(fakeReader(values).reader, world.secrets).deps,
    );
    assert.equal(changed.ok === false && changed.reason, 'SecretImmutable');
    assert.doesNotMatch((!changed.ok && changed.message) || '', /"new"|pw:/);
  });

  it('immutable with creationPolicy Merge, and refreshInterval with a non-Periodic policy, are invalid', () => {
    assert.throws(
      () => extractJob({ creationPolicy: 'Merge' }, { immutable: true }),
      /spec\.target\.immutable/,
    );
    assert.throws(
      () => extractJob({ refreshPolicy: 'OnChange', refreshInterval: '1m' }),
      /refreshInterval is set but refreshPolicy is OnChange/,
    );
  });

  it('refreshPolicy CreatedOnce: once the Secret exists nothing is read from AWS again', async () => {
    const { reader, reads } = fakeReader({ 'db-creds': dbValue });
    const world = deps(reader);
    assert.equal((await syncJob(extractJob({ refreshPolicy: 'CreatedOnce' }), world.deps)).ok, true);
    assert.equal(reads.length, 1);
    const again = await syncJob(extractJob({ refreshPolicy: 'CreatedOnce' }), world.deps);
    assert.deepEqual(again.ok && again.targets, [{ name: 'db', action: 'unchanged' }]);
    assert.equal(reads.length, 1, 'no second read');
  });
});
