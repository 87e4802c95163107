/**
 * Fuzz: Secret AdmissionReviews (random names, labels, annotations, types, keys and bytes, some
 * malformed) through write-through's review. Never a throw; a denial never carries a value; a
 * labelled Secret is only ever allowed without data and without its value in clear, the value
 * sealed so that only the controller's key opens it, and only for this Secret; a Secret that is
 * not write-through passes untouched; the stored form reviewed again is kept as it is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { silentLogger } from '../../src/core/log.ts';
import { generateSealingKeyPair, openSealed } from '../../src/core/seal.ts';
import { decodeSecretDocument } from '../../src/core/write-through.ts';
import type { AdmissionResult } from '../../src/webhook/admission.ts';
import { reviewSecretAdmission, type SecretAdmissionDeps } from '../../src/webhook/secrets/handler.ts';
import { checkProperty, fuzzScale } from '../fuzz/settings.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-a/x-AbCdEf';
const keyPair = generateSealingKeyPair();

/** Values carry a marker so any echo of one (or of its base64) is found. */
const valueArb = fc.oneof(
  fc.string({ minLength: 0, maxLength: 40 }).map((text) => `Vq9${text}`),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => Buffer.concat([Buffer.from('Vq9'), bytes])),
);
const keyArb = fc.oneof(
  { weight: 15, arbitrary: fc.stringMatching(/^[a-zA-Z0-9][-._a-zA-Z0-9]{0,20}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
const nameArb = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);
const labelArb = fc.constantFrom(undefined, 'true', 'true', 'true', 'false', 'yes');
const annotationsArb = fc.record(
  {
    'smk.dev/aws-secret-name': fc.constantFrom(
      'kubernetes/team-a/custom',
      'kubernetes/team-b/stolen',
      'kubernetes/team-a/',
      arn,
      'bad name!',
    ),
    'smk.dev/deletion-policy': fc.constantFrom('Retain', 'Delete', 'Orphan'),
    'smk.dev/recovery-window-days': fc.constantFrom('7', '30', '3', 'x'),
    'smk.dev/aws-secret-arn': fc.constant(arn),
  },
  { requiredKeys: [] },
);

const secretArb = fc.record(
  {
    apiVersion: fc.constant('v1'),
    kind: fc.constant('Secret'),
    metadata: fc.record(
      {
        name: nameArb,
        generateName: fc.constant('gen-'),
        labels: labelArb.map((label) => (label === undefined ? {} : { 'smk.dev/write-through': label })),
        annotations: fc.oneof(
          { weight: 3, arbitrary: fc.constant({}) },
          { weight: 2, arbitrary: annotationsArb },
        ),
        finalizers: fc.constantFrom([], ['example.com/x'], ['smk.dev/write-through']),
      },
      { requiredKeys: ['labels'] },
    ),
    type: fc.oneof(
      { weight: 5, arbitrary: fc.constant('Opaque') },
      { weight: 1, arbitrary: fc.constantFrom('kubernetes.io/tls', 'example.com/custom') },
    ),
    data: fc.dictionary(
      keyArb,
      fc.oneof(
        { weight: 15, arbitrary: valueArb.map((value) => Buffer.from(value).toString('base64')) },
        { weight: 1, arbitrary: fc.constant('%%not-base64%%') },
      ),
      { maxKeys: 5 },
    ),
    immutable: fc.boolean(),
  },
  { requiredKeys: ['metadata'] },
);

function applied(object: unknown, result: AdmissionResult): Record<string, unknown> {
  if (result.status !== 200 || result.body.response.patch === undefined)
    return object as Record<string, unknown>;
  const patch = JSON.parse(Buffer.from(result.body.response.patch, 'base64').toString()) as Operation[];
  return fastJsonPatch.applyPatch(structuredClone(object), patch, true, false).newDocument as Record<
    string,
    unknown
  >;
}

const labelled = (object: unknown): boolean =>
  (object as { metadata?: { labels?: Record<string, string> } }).metadata?.labels?.[
    'smk.dev/write-through'
  ] === 'true';

test('fuzz: Secret reviews never throw, never echo a value, never allow a labelled Secret with its data in clear', async (t) => {
  const outcomes: Record<string, number> = {};
  const count = (outcome: string): void => {
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  };
  await checkProperty(
    t,
    300,
    fc.asyncProperty(secretArb, fc.boolean(), async (secret, dryRun) => {
      const deps: SecretAdmissionDeps = {
        settings: { prefix: 'kubernetes/', cluster: 'fuzz' },
        publicKey: async () => keyPair.publicKey,
        log: silentLogger(),
      };
      const body = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u',
          kind: { group: '', version: 'v1', kind: 'Secret' },
          operation: 'CREATE',
          namespace: 'team-a',
          object: secret,
          dryRun,
        },
      };
      const result = await reviewSecretAdmission(body, deps);
      assert.equal(result.status, 200);
      if (result.status !== 200) return;
      const response = result.body.response;
      if (!response.allowed) {
        const message = response.status?.message ?? '';
        assert.ok(!/Vq9/.test(message) && !message.includes('VnE5'), 'a denial carries no value');
        count('denied');
        return;
      }
      const stored = applied(secret, result);
      if (!labelled(secret)) {
        assert.equal(response.patch, undefined);
        count('untouched');
        return;
      }
      assert.equal(stored.data, undefined, 'a labelled Secret is stored without data');
      const metadata = stored.metadata as { name: string; annotations: Record<string, string> };
      const sealed = metadata.annotations['smk.dev/sealed'] ?? '';
      // The sealed annotation is random-looking ciphertext that may hold the marker's letters by
      // chance (about once in 7,000 cases); that it is ciphertext is proven below by opening it
      // only with the controller's key and only for this Secret. Everything else is scanned.
      const { 'smk.dev/sealed': _sealed, ...otherAnnotations } = metadata.annotations;
      const text = JSON.stringify({ ...stored, metadata: { ...metadata, annotations: otherAnnotations } });
      assert.ok(!/Vq9/.test(text) && !text.includes('VnE5'), 'no value in clear in the stored form');
      const owner = { cluster: 'fuzz', namespace: 'team-a', name: metadata.name };
      const opened = new TextDecoder().decode(openSealed(keyPair, owner, sealed, 'fuzz'));
      const data = decodeSecretDocument(opened, 'fuzz');
      assert.deepEqual(
        [...data.keys()].sort(),
        Object.keys((secret as { data?: object }).data ?? {}).sort(),
        'the sealed document holds exactly the Secret’s keys',
      );
      assert.throws(() => openSealed(keyPair, { ...owner, namespace: 'team-b' }, sealed, 'fuzz'));
      count(dryRun ? 'dry run' : 'sealed');

      // The stored form, sent again unchanged (what every metadata-only update looks like): kept.
      const storedSecret = { ...stored, metadata: { ...(stored.metadata as object), uid: 'uid-1' } };
      const second = await reviewSecretAdmission(
        {
          ...body,
          request: { ...body.request, operation: 'UPDATE', object: storedSecret, oldObject: storedSecret },
        },
        deps,
      );
      assert.equal(second.status === 200 && second.body.response.allowed, true);
      assert.equal(second.status === 200 && second.body.response.patch, undefined, 'kept as it is');
    }),
  );
  t.diagnostic(`outcomes: ${JSON.stringify(outcomes)}`);
  // A property that only ever refused would prove little.
  assert.ok(
    (outcomes.sealed ?? 0) > 15 * fuzzScale &&
      (outcomes.denied ?? 0) > 30 * fuzzScale &&
      (outcomes.untouched ?? 0) > 30 * fuzzScale,
  );
});
