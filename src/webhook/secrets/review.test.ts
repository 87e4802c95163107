import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { decideSecret, type SecretDecision, type SecretReviewRequest } from './review.ts';

const fixtures = new URL('./fixtures/', import.meta.url);
const settings = { prefix: 'kubernetes/', cluster: 'bed' };
const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-a/db-creds-AbCdEf';
/** Values that appear (base64-encoded) in the fixtures: no message may contain them. */
const values = ['hunter2', 's3cr3t-value'];

function fixture(name: string): Record<string, unknown> {
  return parseYaml(readFileSync(new URL(name, fixtures), 'utf8')) as Record<string, unknown>;
}

function review(object: unknown, extra: Partial<SecretReviewRequest> = {}): SecretReviewRequest {
  const metadata = (object as { metadata?: { namespace?: string } }).metadata;
  return {
    uid: 'u1',
    kind: { group: '', version: 'v1', kind: 'Secret' },
    operation: 'CREATE',
    namespace: metadata?.namespace ?? 'team-a',
    object,
    ...extra,
  };
}

function expectSeal(decision: SecretDecision) {
  assert.equal(decision.kind, 'seal', decision.kind === 'deny' ? decision.message : decision.kind);
  if (decision.kind !== 'seal') throw new Error('unreachable');
  return decision.plan;
}

function expectStore(decision: SecretDecision) {
  assert.equal(decision.kind, 'store', decision.kind === 'deny' ? decision.message : decision.kind);
  if (decision.kind !== 'store') throw new Error('unreachable');
  return decision.object;
}

function expectDeny(decision: SecretDecision, text: string): void {
  assert.equal(decision.kind, 'deny');
  if (decision.kind !== 'deny') return;
  assert.ok(decision.message.includes(text), `"${decision.message}" should include "${text}"`);
  for (const value of values) assert.ok(!decision.message.includes(value), 'no value in a denial');
}

for (const file of readdirSync(fixtures).filter(
  (entry) => entry.endsWith('.out.yaml') && !entry.startsWith('pod-'),
)) {
  const name = file.replace(/\.out\.yaml$/, '');
  test(`fixture ${name}: sealed, then stored without data as ${file}`, () => {
    const plan = expectSeal(decideSecret(review(fixture(`${name}.in.yaml`)), settings));
    assert.deepEqual(JSON.parse(JSON.stringify(plan.stored('SEALED'))), fixture(file));
  });
}

for (const file of readdirSync(fixtures).filter((entry) => entry.endsWith('.error.txt'))) {
  const name = file.replace(/\.error\.txt$/, '');
  test(`fixture ${name}: denied`, () => {
    const expected = readFileSync(new URL(file, fixtures), 'utf8').trim();
    expectDeny(decideSecret(review(fixture(`${name}.in.yaml`)), settings), expected);
  });
}

test('create: the document holds every key (text as is, binary base64), sealed for this cluster, namespace and name', () => {
  const plan = expectSeal(decideSecret(review(fixture('create.in.yaml')), settings));
  assert.deepEqual(JSON.parse(plan.document), {
    'keystore.p12': '//4AgA==',
    password: 's3cr3t-value',
    'smk.dev/base64': ['keystore.p12'],
    username: 'app',
  });
  assert.deepEqual(plan.owner, { cluster: 'bed', namespace: 'team-a', name: 'db-creds' });
});

/** A Secret as Kubernetes stores it once the controller wrote `object` through. */
function storedSecret(object: Record<string, unknown>) {
  const stored = expectSeal(decideSecret(review(object), settings)).stored('SEALED');
  const annotations: Record<string, string> = { ...stored.metadata.annotations };
  delete annotations['smk.dev/sealed'];
  annotations['smk.dev/aws-secret-arn'] = arn;
  annotations['smk.dev/aws-version-id'] = 'v1';
  return { ...stored, metadata: { ...stored.metadata, annotations, uid: 'uid-1', resourceVersion: '5' } };
}

test('update with content (new, or the same again): sealed anew; the controller decides what AWS needs', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const next = { ...old, data: { password: Buffer.from('n3w-value').toString('base64') } };
  const plan = expectSeal(decideSecret(review(next, { operation: 'UPDATE', oldObject: old }), settings));
  assert.equal(JSON.parse(plan.document).password, 'n3w-value');
  const stored = plan.stored('SEALED-2');
  assert.equal(stored.data, undefined);
  assert.equal(stored.metadata.annotations?.['smk.dev/sealed'], 'SEALED-2');
  assert.equal(
    stored.metadata.annotations?.['smk.dev/aws-secret-arn'],
    arn,
    'kept for people until the controller writes',
  );
  expectSeal(
    decideSecret(review(fixture('create.in.yaml'), { operation: 'UPDATE', oldObject: old }), settings),
  );
});

test('the answer depends on nothing but the request: the same request twice gives the same plan', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const request = review(fixture('create.in.yaml'), { operation: 'UPDATE', oldObject: old });
  const first = expectSeal(decideSecret(request, settings));
  const second = expectSeal(decideSecret(request, settings));
  assert.equal(first.document, second.document);
  assert.deepEqual(first.stored('S'), second.stored('S'));
});

test("metadata-only update (no data): the webhook's references restored, the controller's passed through, finalizer kept", () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const edited = structuredClone(old) as typeof old & {
    metadata: { annotations: Record<string, string>; finalizers?: string[] };
  };
  edited.metadata.annotations['smk.dev/keys'] = 'forged';
  edited.metadata.annotations['smk.dev/aws-version-id'] = 'v9';
  edited.metadata.annotations.team = 'payments';
  edited.metadata.finalizers = [];
  const stored = expectStore(decideSecret(review(edited, { operation: 'UPDATE', oldObject: old }), settings));
  assert.equal(stored.metadata.annotations?.['smk.dev/keys'], 'keystore.p12,password,username');
  assert.equal(stored.metadata.annotations?.['smk.dev/aws-version-id'], 'v9', 'nothing reads it back');
  assert.equal(stored.metadata.annotations?.team, 'payments');
  assert.deepEqual(stored.metadata.finalizers, ['smk.dev/write-through']);
});

test('the sealed value: kept or removed by a metadata-only change, never replaced by one the webhook did not make', () => {
  const old = storedSecret(fixture('create.in.yaml')) as ReturnType<typeof storedSecret> & {
    metadata: { annotations: Record<string, string> };
  };
  old.metadata.annotations['smk.dev/sealed'] = 'SEALED-BY-WEBHOOK';
  const kept = structuredClone(old);
  kept.metadata.annotations.team = 'x';
  assert.equal(
    expectStore(decideSecret(review(kept, { operation: 'UPDATE', oldObject: old }), settings)).metadata
      .annotations?.['smk.dev/sealed'],
    'SEALED-BY-WEBHOOK',
  );
  const committed = structuredClone(old);
  delete committed.metadata.annotations['smk.dev/sealed'];
  assert.equal(
    expectStore(decideSecret(review(committed, { operation: 'UPDATE', oldObject: old }), settings)).metadata
      .annotations?.['smk.dev/sealed'],
    undefined,
  );
  const swapped = structuredClone(old);
  swapped.metadata.annotations['smk.dev/sealed'] = 'SEALED-BY-SOMEONE';
  expectDeny(
    decideSecret(review(swapped, { operation: 'UPDATE', oldObject: old }), settings),
    'annotation smk.dev/sealed is set by smk only',
  );
});

test('dry run: the same answer as a real request (the webhook has no side effect)', () => {
  const plan = expectSeal(decideSecret(review(fixture('create.in.yaml'), { dryRun: true }), settings));
  assert.equal(plan.stored('S').metadata.annotations?.['smk.dev/keys'], 'keystore.p12,password,username');
});

test('a plain Secret gaining the label is sealed (its data moves to Secrets Manager through the controller)', () => {
  const plain = fixture('create.in.yaml');
  const old = structuredClone(plain) as { metadata: { labels: Record<string, string>; uid?: string } };
  delete old.metadata.labels['smk.dev/write-through'];
  const plan = expectSeal(decideSecret(review(plain, { operation: 'UPDATE', oldObject: old }), settings));
  assert.deepEqual(plan.owner, { cluster: 'bed', namespace: 'team-a', name: 'db-creds' });
});

test('finding 4: a plain Secret carrying smk annotations (forged or copied) cannot become write-through with them', () => {
  for (const [key, text] of [
    [
      'smk.dev/aws-secret-arn',
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-b/db-AbCdEf',
    ],
    ['smk.dev/aws-version-id', '0123456789abcdef0123456789abcdef'],
    ['smk.dev/sealed', 'smk-sealed.v1.e30.AAAA'],
  ] as const) {
    const plain = fixture('create.in.yaml') as { metadata: { annotations: Record<string, string> } };
    plain.metadata.annotations[key] = text;
    const old = structuredClone(plain) as unknown as { metadata: { labels: Record<string, string> } };
    delete old.metadata.labels['smk.dev/write-through'];
    expectDeny(
      decideSecret(review(plain, { operation: 'UPDATE', oldObject: old }), settings),
      `annotation ${key} is set by smk`,
    );
    expectDeny(decideSecret(review(plain), settings), `annotation ${key} is set by smk`);
  }
});

test('refusals on update: label removal, name change, type change, immutable data', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const unlabelled = structuredClone(old) as { metadata: { labels: Record<string, string> } };
  delete unlabelled.metadata.labels['smk.dev/write-through'];
  expectDeny(
    decideSecret(review(unlabelled, { operation: 'UPDATE', oldObject: old }), settings),
    'label smk.dev/write-through cannot be removed',
  );
  const renamed = fixture('create.in.yaml') as { metadata: { annotations: Record<string, string> } };
  renamed.metadata.annotations['smk.dev/aws-secret-name'] = 'kubernetes/team-a/other';
  expectDeny(
    decideSecret(review(renamed, { operation: 'UPDATE', oldObject: old }), settings),
    'annotation smk.dev/aws-secret-name cannot change',
  );
  const retyped = { ...fixture('create.in.yaml'), type: 'example.com/custom' };
  expectDeny(
    decideSecret(review(retyped, { operation: 'UPDATE', oldObject: old }), settings),
    'type cannot change',
  );
  const changed = fixture('create.in.yaml');
  (changed.data as Record<string, string>).password = 'b3RoZXI=';
  expectDeny(
    decideSecret(review(changed, { operation: 'UPDATE', oldObject: { ...old, immutable: true } }), settings),
    'is immutable',
  );
});

test('deleting: finalizer edits pass untouched, data changes are refused', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const deleting = {
    ...old,
    metadata: { ...old.metadata, deletionTimestamp: '2030-01-01T00:00:00Z', finalizers: [] },
  };
  assert.deepEqual(decideSecret(review(deleting, { operation: 'UPDATE', oldObject: old }), settings), {
    kind: 'allow',
  });
  expectDeny(
    decideSecret(
      review({ ...deleting, data: { a: 'YQ==' } }, { operation: 'UPDATE', oldObject: old }),
      settings,
    ),
    'is being deleted',
  );
});

test('Secrets without the label, other kinds and other operations are allowed untouched', () => {
  const plain = fixture('create.in.yaml') as { metadata: { labels: Record<string, string> } };
  plain.metadata.labels['smk.dev/write-through'] = 'false';
  assert.deepEqual(decideSecret(review(plain), settings), { kind: 'allow' });
  assert.deepEqual(decideSecret(review(fixture('create.in.yaml'), { operation: 'DELETE' }), settings), {
    kind: 'allow',
  });
  assert.deepEqual(
    decideSecret(
      review(fixture('create.in.yaml'), { kind: { group: '', version: 'v1', kind: 'ConfigMap' } }),
      settings,
    ),
    { kind: 'allow' },
  );
});

test('a malformed object is denied naming the field', () => {
  expectDeny(decideSecret(review({ metadata: { labels: 'x' } }), settings), 'metadata.labels');
  expectDeny(
    decideSecret(review({ ...fixture('create.in.yaml'), data: { password: 'not base64!' } }), settings),
    'data key "password" is not base64',
  );
});
