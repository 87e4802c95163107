import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import type { SecretDescription, SecretWriter } from '../../aws/index.ts';
import { AccessDeniedError, TransientError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import type { AdmissionResult } from '../admission.ts';
import { reviewSecretAdmission, type SecretAdmissionDeps } from './handler.ts';
import { tokenFunction } from './token.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-a/db-creds-AbCdEf';
const tokenOf = tokenFunction(Buffer.from('unit-test-key'));
const secret = (): Record<string, unknown> =>
  parseYaml(readFileSync(new URL('./fixtures/create.in.yaml', import.meta.url), 'utf8')) as Record<
    string,
    unknown
  >;

type Call = [string, ...unknown[]];

function fakeWriter(
  overrides: Partial<Pick<SecretWriter, 'create' | 'putValue' | 'describe' | 'restore'>> = {},
) {
  const calls: Call[] = [];
  const writer: SecretAdmissionDeps['writer'] = {
    async create(input) {
      calls.push(['create', input.name, input.clientRequestToken, input.kmsKeyId]);
      if (overrides.create) return overrides.create(input);
      return {
        created: true,
        version: { arn, name: input.name, versionId: input.clientRequestToken, stages: ['AWSCURRENT'] },
      };
    },
    async putValue(input) {
      calls.push(['putValue', input.id, input.stages]);
      if (overrides.putValue) return overrides.putValue(input);
      return { arn, name: 'n', versionId: input.clientRequestToken, stages: [...(input.stages ?? [])] };
    },
    async describe(id) {
      calls.push(['describe', id]);
      return overrides.describe ? overrides.describe(id) : undefined;
    },
    async restore(id) {
      calls.push(['restore', id]);
    },
  };
  return { writer, calls };
}

function deps(
  writer: SecretAdmissionDeps['writer'],
  extra: Partial<SecretAdmissionDeps> = {},
): SecretAdmissionDeps {
  return {
    settings: { prefix: 'kubernetes/', cluster: 'bed' },
    writer,
    tokenOf: async () => tokenOf,
    log: silentLogger(),
    ...extra,
  };
}

function body(object: unknown, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'req-1',
      kind: { group: '', version: 'v1', kind: 'Secret' },
      operation: 'CREATE',
      namespace: 'team-a',
      object,
      ...extra,
    },
  };
}

/** The object the API server would store: the request object with the answer's patch applied. */
function applied(object: unknown, result: AdmissionResult): Record<string, unknown> {
  assert.equal(result.status, 200);
  if (result.status !== 200) throw new Error('unreachable');
  const patch = result.body.response.patch;
  if (patch === undefined) return object as Record<string, unknown>;
  const operations = JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[];
  return fastJsonPatch.applyPatch(structuredClone(object), operations, true, false).newDocument as Record<
    string,
    unknown
  >;
}

function denial(result: AdmissionResult): { code: number; message: string } {
  assert.equal(result.status, 200);
  if (result.status !== 200) throw new Error('unreachable');
  assert.equal(result.body.response.allowed, false);
  const status = result.body.response.status;
  assert.ok(status);
  assert.ok(!status.message.includes('s3cr3t'), 'no value in the denial');
  return { code: status.code, message: status.message };
}

test('CREATE: one CreateSecret, then the Secret is stored without data, naming ARN and version', async () => {
  const { writer, calls } = fakeWriter();
  const object = secret();
  const result = await reviewSecretAdmission(body(object), deps(writer));
  const stored = applied(object, result) as {
    data?: unknown;
    metadata: { annotations: Record<string, string>; finalizers: string[] };
  };
  assert.equal(stored.data, undefined);
  assert.equal(stored.metadata.annotations['smk.dev/aws-secret-arn'], arn);
  assert.equal(stored.metadata.annotations['smk.dev/aws-version-id'], calls[0]?.[2]);
  assert.deepEqual(stored.metadata.finalizers, ['smk.dev/write-through']);
  assert.deepEqual(
    calls.map((call) => call[0]),
    ['create'],
  );
});

test('CREATE with a configured KMS key: the secret is made with it', async () => {
  const { writer, calls } = fakeWriter();
  await reviewSecretAdmission(body(secret()), deps(writer, { kmsKeyId: 'alias/team-a' }));
  assert.equal(calls[0]?.[3], 'alias/team-a');
});

test('CREATE of a name Kubernetes already has: refused before any write', async () => {
  const { writer, calls } = fakeWriter();
  const result = await reviewSecretAdmission(
    body(secret()),
    deps(writer, { secretExists: async () => true }),
  );
  const { code, message } = denial(result);
  assert.equal(code, 409);
  assert.match(message, /already exists; nothing was written/);
  assert.deepEqual(calls, []);
});

const owned = (extra: Partial<SecretDescription> = {}): SecretDescription => ({
  arn,
  name: 'kubernetes/team-a/db-creds',
  tags: { 'smk.dev/cluster': 'bed', 'smk.dev/namespace': 'team-a', 'smk.dev/name': 'db-creds' },
  versionsToStages: new Map([['v0', ['AWSCURRENT']]]),
  ...extra,
});

test('CREATE finding its own secret (re-created Secret, or a retry): adopted, restored if deleted, staged pending', async () => {
  const { writer, calls } = fakeWriter({
    create: async () => ({ created: false }),
    describe: async () => owned({ deletedDate: new Date() }),
  });
  const object = secret();
  const stored = applied(object, await reviewSecretAdmission(body(object), deps(writer))) as {
    metadata: { annotations: Record<string, string> };
  };
  assert.deepEqual(
    calls.map((call) => call[0]),
    ['create', 'describe', 'restore', 'putValue'],
  );
  assert.deepEqual(calls[3]?.[2], ['smk-pending']);
  assert.equal(stored.metadata.annotations['smk.dev/aws-secret-arn'], arn);
});

test("CREATE finding someone else's secret of that name: refused, nothing written", async () => {
  const foreign: Record<string, string>[] = [
    {},
    { 'smk.dev/cluster': 'other', 'smk.dev/namespace': 'team-a', 'smk.dev/name': 'db-creds' },
  ];
  for (const tags of foreign) {
    const { writer, calls } = fakeWriter({
      create: async () => ({ created: false }),
      describe: async () => owned({ tags }),
    });
    const { code, message } = denial(await reviewSecretAdmission(body(secret()), deps(writer)));
    assert.equal(code, 409);
    assert.match(message, /exists and was not written through for this Secret in this cluster/);
    assert.deepEqual(
      calls.map((call) => call[0]),
      ['create', 'describe'],
    );
  }
});

async function storedAfterCreate(): Promise<Record<string, unknown>> {
  const { writer } = fakeWriter();
  const object = secret();
  const stored = applied(object, await reviewSecretAdmission(body(object), deps(writer)));
  return { ...stored, metadata: { ...(stored.metadata as object), uid: 'uid-1' } };
}

test('UPDATE with new content: PutSecretValue staged smk-pending on the stored ARN; same content: no call', async () => {
  const old = await storedAfterCreate();
  const changed = secret();
  (changed.data as Record<string, string>).username = 'b3RoZXI=';
  const { writer, calls } = fakeWriter();
  const stored = applied(
    changed,
    await reviewSecretAdmission(body(changed, { operation: 'UPDATE', oldObject: old }), deps(writer)),
  ) as { metadata: { annotations: Record<string, string> } };
  assert.deepEqual(calls, [['putValue', arn, ['smk-pending']]]);
  assert.notEqual(
    stored.metadata.annotations['smk.dev/aws-version-id'],
    (old.metadata as { annotations: Record<string, string> }).annotations['smk.dev/aws-version-id'],
  );

  const again = fakeWriter();
  const result = await reviewSecretAdmission(
    body(secret(), { operation: 'UPDATE', oldObject: old }),
    deps(again.writer),
  );
  assert.deepEqual(again.calls, []);
  assert.equal((applied(secret(), result) as { data?: unknown }).data, undefined);
});

test('dry run: no AWS call, and the answer already shows the stored form', async () => {
  const { writer, calls } = fakeWriter();
  const object = secret();
  const stored = applied(object, await reviewSecretAdmission(body(object, { dryRun: true }), deps(writer)));
  assert.deepEqual(calls, []);
  assert.equal(stored.data, undefined);
});

test('a failed write denies the request with the sentinel class as HTTP status, naming the Secret', async () => {
  const cases = [
    [new AccessDeniedError('CreateSecret kubernetes/team-a/db-creds in us-east-1: access denied'), 403],
    [
      new TransientError(
        'CreateSecret kubernetes/team-a/db-creds in us-east-1: AWS unavailable or unreachable',
      ),
      503,
    ],
  ] as const;
  for (const [error, expected] of cases) {
    const { writer } = fakeWriter({
      create: async () => {
        throw error;
      },
    });
    const { code, message } = denial(await reviewSecretAdmission(body(secret()), deps(writer)));
    assert.equal(code, expected);
    assert.ok(
      message.startsWith(
        'Secret team-a/db-creds: not stored, the value could not be written to Secrets Manager: ',
      ),
    );
    assert.ok(message.endsWith(error.message));
  }
});

test('no token key: denied as unavailable; malformed bodies are a 400 for the server to answer', async () => {
  const { writer, calls } = fakeWriter();
  const { code } = denial(
    await reviewSecretAdmission(
      body(secret()),
      deps(writer, {
        tokenOf: async () => {
          throw new Error('ENOENT');
        },
      }),
    ),
  );
  assert.equal(code, 503);
  assert.deepEqual(calls, []);
  const invalid = await reviewSecretAdmission({ kind: 'AdmissionReview' }, deps(writer));
  assert.equal(invalid.status, 400);
});
