import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { TransientError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { generateSealingKeyPair, openSealed } from '../../core/seal.ts';
import type { AdmissionResult } from '../admission.ts';
import { reviewSecretAdmission, type SecretAdmissionDeps } from './handler.ts';

const keyPair = generateSealingKeyPair();
const secret = (): Record<string, unknown> =>
  parseYaml(readFileSync(new URL('./fixtures/create.in.yaml', import.meta.url), 'utf8')) as Record<
    string,
    unknown
  >;

function deps(extra: Partial<SecretAdmissionDeps> = {}): SecretAdmissionDeps & { keyReads: number } {
  const counted = {
    keyReads: 0,
    settings: { prefix: 'kubernetes/', cluster: 'bed' },
    log: silentLogger(),
    publicKey: async () => {
      counted.keyReads += 1;
      return keyPair.publicKey;
    },
    ...extra,
  };
  return counted;
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

type Stored = {
  data?: unknown;
  metadata: { annotations: Record<string, string>; finalizers: string[] };
};

/** The object the API server would store: the request object with the answer's patch applied. */
function applied(object: unknown, result: AdmissionResult): Stored {
  assert.equal(result.status, 200);
  if (result.status !== 200) throw new Error('unreachable');
  assert.equal(result.body.response.allowed, true);
  const patch = result.body.response.patch;
  if (patch === undefined) return object as Stored;
  const text = Buffer.from(patch, 'base64').toString('utf8');
  assert.ok(!text.includes('s3cr3t') && !text.includes('czNjcjN0'), 'no value in the patch');
  const operations = JSON.parse(text) as fastJsonPatch.Operation[];
  return fastJsonPatch.applyPatch(structuredClone(object), operations, true, false).newDocument as Stored;
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

test('CREATE: stored without data, the value sealed to the controller for this Secret only', async () => {
  const object = secret();
  const stored = applied(object, await reviewSecretAdmission(body(object), deps()));
  assert.equal(stored.data, undefined);
  assert.deepEqual(stored.metadata.finalizers, ['smk.dev/write-through']);
  assert.equal(stored.metadata.annotations['smk.dev/aws-secret-arn'], undefined);
  const sealed = stored.metadata.annotations['smk.dev/sealed'] ?? '';
  const owner = { cluster: 'bed', namespace: 'team-a', name: 'db-creds' };
  const document = JSON.parse(new TextDecoder().decode(openSealed(keyPair, owner, sealed, 's'))) as Record<
    string,
    unknown
  >;
  assert.equal(document.password, 's3cr3t-value');
  assert.throws(() => openSealed(keyPair, { ...owner, namespace: 'team-b' }, sealed, 's'));
});

test('finding 3: a forged UPDATE naming another namespace’s ARN only gets a patch back (no writer exists)', async () => {
  const old = {
    ...secret(),
    metadata: {
      name: 'db-creds',
      namespace: 'team-b',
      labels: { 'smk.dev/write-through': 'true' },
      annotations: {
        'smk.dev/aws-secret-arn':
          'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-b/db-AbCdEf',
      },
    },
    data: undefined,
  };
  const object = { ...secret(), metadata: { ...old.metadata } };
  const result = await reviewSecretAdmission(
    body(object, { operation: 'UPDATE', namespace: 'team-b', oldObject: old }),
    deps(),
  );
  const stored = applied(object, result);
  // What comes back is sealed to the controller, and would only be written if the API server stored it.
  assert.match(stored.metadata.annotations['smk.dev/sealed'] ?? '', /^smk-sealed\.v1\./);
});

test('a metadata-only change does not need the key', async () => {
  const first = applied(secret(), await reviewSecretAdmission(body(secret()), deps()));
  const edited = structuredClone(first);
  edited.metadata.annotations.team = 'payments';
  const counting = deps({
    publicKey: async () => {
      throw new Error('must not be read');
    },
  });
  const stored = applied(
    edited,
    await reviewSecretAdmission(body(edited, { operation: 'UPDATE', oldObject: first }), counting),
  );
  assert.equal(stored.metadata.annotations.team, 'payments');
});

test('no published key: a new value is denied as unavailable, naming the ConfigMap; malformed bodies are a 400', async () => {
  const missing = deps({
    publicKey: async () => {
      throw new TransientError('ConfigMap smk/smk-write-through-key holds no sealing key yet');
    },
  });
  const { code, message } = denial(await reviewSecretAdmission(body(secret()), missing));
  assert.equal(code, 503);
  assert.match(
    message,
    /^Secret team-a\/db-creds: not stored: ConfigMap smk\/smk-write-through-key holds no/,
  );
  const invalid = await reviewSecretAdmission({ kind: 'AdmissionReview' }, deps());
  assert.equal(invalid.status, 400);
});
