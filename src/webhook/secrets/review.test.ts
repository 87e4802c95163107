import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { decideSecret, type SecretDecision, type SecretReviewRequest } from './review.ts';
import { tokenFunction } from './token.ts';

const fixtures = new URL('./fixtures/', import.meta.url);
const settings = { prefix: 'kubernetes/', cluster: 'bed' };
const tokenOf = tokenFunction(Buffer.from('unit-test-key'));
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

function expectWrite(decision: SecretDecision) {
  assert.equal(decision.kind, 'write', decision.kind === 'deny' ? decision.message : decision.kind);
  if (decision.kind !== 'write') throw new Error('unreachable');
  return decision.plan;
}

function expectDeny(decision: SecretDecision, text: string): void {
  assert.equal(decision.kind, 'deny');
  if (decision.kind !== 'deny') return;
  assert.ok(decision.message.includes(text), `"${decision.message}" should include "${text}"`);
  for (const value of values) assert.ok(!decision.message.includes(value), 'no value in a denial');
}

/** The stored form of a fixture after a write, with the token in place of TOKEN. */
function storedAfterWrite(name: string) {
  const plan = expectWrite(decideSecret(review(fixture(`${name}.in.yaml`)), settings, tokenOf));
  return { plan, stored: plan.stored({ arn, versionId: plan.token }) };
}

for (const file of readdirSync(fixtures).filter(
  (entry) => entry.endsWith('.out.yaml') && !entry.startsWith('pod-'),
)) {
  const name = file.replace(/\.out\.yaml$/, '');
  test(`fixture ${name}: written, then stored without data as ${file}`, () => {
    const { plan, stored } = storedAfterWrite(name);
    const expected = JSON.parse(JSON.stringify(fixture(file)).replaceAll('TOKEN', plan.token)) as unknown;
    assert.deepEqual(JSON.parse(JSON.stringify(stored)), expected);
    assert.equal(plan.mode, 'create');
    assert.match(plan.token, /^[0-9a-f]{64}$/);
  });
}

for (const file of readdirSync(fixtures).filter((entry) => entry.endsWith('.error.txt'))) {
  const name = file.replace(/\.error\.txt$/, '');
  test(`fixture ${name}: denied before anything is written`, () => {
    const expected = readFileSync(new URL(file, fixtures), 'utf8').trim();
    expectDeny(decideSecret(review(fixture(`${name}.in.yaml`)), settings, tokenOf), expected);
  });
}

test('create: the document holds every key (text as is, binary base64), tagged with cluster, namespace, name', () => {
  const { plan } = storedAfterWrite('create');
  assert.deepEqual(JSON.parse(plan.document), {
    'keystore.p12': '//4AgA==',
    password: 's3cr3t-value',
    'smk.dev/base64': ['keystore.p12'],
    username: 'app',
  });
  assert.equal(plan.secretName, 'kubernetes/team-a/db-creds');
  assert.deepEqual(plan.tags, {
    'smk.dev/managed-by': 'smk-write-through',
    'smk.dev/cluster': 'bed',
    'smk.dev/namespace': 'team-a',
    'smk.dev/name': 'db-creds',
  });
  assert.equal(plan.token, tokenOf('kubernetes/team-a/db-creds', plan.document));
});

test('the token is keyed: another key gives another version id for the same content', () => {
  const other = tokenFunction(Buffer.from('another-key'));
  assert.notEqual(other('n', '{"a":"1"}'), tokenOf('n', '{"a":"1"}'));
  assert.equal(tokenOf('n', '{"a":"1"}'), tokenOf('n', '{"a":"1"}'));
  assert.notEqual(tokenOf('m', '{"a":"1"}'), tokenOf('n', '{"a":"1"}'));
});

/** A Secret as Kubernetes stores it after a write of `object`. */
function storedSecret(object: Record<string, unknown>) {
  const { stored } = (() => {
    const plan = expectWrite(decideSecret(review(object), settings, tokenOf));
    return { stored: plan.stored({ arn, versionId: plan.token }) };
  })();
  return { ...stored, metadata: { ...stored.metadata, uid: 'uid-1', resourceVersion: '5' } };
}

test('update with new content: a new version of the ARN the stored Secret names', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const next = fixture('create.in.yaml');
  (next.data as Record<string, string>).password = Buffer.from('n3w-value').toString('base64');
  const plan = expectWrite(
    decideSecret(review(next, { operation: 'UPDATE', oldObject: old }), settings, tokenOf),
  );
  assert.equal(plan.mode, 'update');
  assert.equal(plan.arn, arn);
  assert.equal(plan.tags['smk.dev/uid'], 'uid-1');
  assert.notEqual(plan.token, old.metadata.annotations?.['smk.dev/aws-version-id']);
});

test('update with the same content: stored as is, no write', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const decision = decideSecret(
    review(fixture('create.in.yaml'), { operation: 'UPDATE', oldObject: old }),
    settings,
    tokenOf,
  );
  assert.equal(decision.kind, 'store');
  if (decision.kind !== 'store') return;
  assert.equal(decision.object.data, undefined);
  assert.equal(
    decision.object.metadata.annotations?.['smk.dev/aws-version-id'],
    old.metadata.annotations?.['smk.dev/aws-version-id'],
  );
});

test('metadata-only update (no data): references restored from the stored Secret, finalizer kept', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const edited = structuredClone(old) as typeof old & {
    metadata: { annotations: Record<string, string>; finalizers?: string[] };
  };
  edited.metadata.annotations['smk.dev/aws-secret-arn'] = 'arn:aws:secretsmanager:us-east-1:1:secret:forged';
  edited.metadata.annotations.team = 'payments';
  edited.metadata.finalizers = [];
  const decision = decideSecret(review(edited, { operation: 'UPDATE', oldObject: old }), settings, tokenOf);
  assert.equal(decision.kind, 'store');
  if (decision.kind !== 'store') return;
  assert.equal(decision.object.metadata.annotations?.['smk.dev/aws-secret-arn'], arn);
  assert.equal(decision.object.metadata.annotations?.team, 'payments');
  assert.deepEqual(decision.object.metadata.finalizers, ['smk.dev/write-through']);
});

test('dry run: the stored form without a write (no ARN yet on create)', () => {
  const decision = decideSecret(review(fixture('create.in.yaml'), { dryRun: true }), settings, tokenOf);
  assert.equal(decision.kind, 'store');
  if (decision.kind !== 'store') return;
  assert.equal(decision.object.data, undefined);
  assert.equal(decision.object.metadata.annotations?.['smk.dev/aws-secret-arn'], undefined);
  assert.equal(decision.object.metadata.annotations?.['smk.dev/keys'], 'keystore.p12,password,username');
});

test('a plain Secret gaining the label is written through (its data moves to Secrets Manager)', () => {
  const plain = fixture('create.in.yaml');
  const old = structuredClone(plain) as { metadata: { labels: Record<string, string>; uid?: string } };
  delete old.metadata.labels['smk.dev/write-through'];
  old.metadata.uid = 'uid-9';
  const plan = expectWrite(
    decideSecret(review(plain, { operation: 'UPDATE', oldObject: old }), settings, tokenOf),
  );
  assert.equal(plan.mode, 'create');
  assert.equal(plan.tags['smk.dev/uid'], 'uid-9');
});

test('refusals on update: label removal, name change, type change, immutable data', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const unlabelled = structuredClone(old) as { metadata: { labels: Record<string, string> } };
  delete unlabelled.metadata.labels['smk.dev/write-through'];
  expectDeny(
    decideSecret(review(unlabelled, { operation: 'UPDATE', oldObject: old }), settings, tokenOf),
    'label smk.dev/write-through cannot be removed',
  );
  const renamed = fixture('create.in.yaml') as { metadata: { annotations: Record<string, string> } };
  renamed.metadata.annotations['smk.dev/aws-secret-name'] = 'kubernetes/team-a/other';
  expectDeny(
    decideSecret(review(renamed, { operation: 'UPDATE', oldObject: old }), settings, tokenOf),
    'annotation smk.dev/aws-secret-name cannot change',
  );
  const retyped = { ...fixture('create.in.yaml'), type: 'example.com/custom' };
  expectDeny(
    decideSecret(review(retyped, { operation: 'UPDATE', oldObject: old }), settings, tokenOf),
    'type cannot change',
  );
  const changed = fixture('create.in.yaml');
  (changed.data as Record<string, string>).password = 'b3RoZXI=';
  expectDeny(
    decideSecret(
      review(changed, { operation: 'UPDATE', oldObject: { ...old, immutable: true } }),
      settings,
      tokenOf,
    ),
    'is immutable',
  );
});

test('deleting: finalizer edits pass untouched, data changes are refused', () => {
  const old = storedSecret(fixture('create.in.yaml'));
  const deleting = {
    ...old,
    metadata: { ...old.metadata, deletionTimestamp: '2030-01-01T00:00:00Z', finalizers: [] },
  };
  assert.deepEqual(
    decideSecret(review(deleting, { operation: 'UPDATE', oldObject: old }), settings, tokenOf),
    {
      kind: 'allow',
    },
  );
  expectDeny(
    decideSecret(
      review({ ...deleting, data: { a: 'YQ==' } }, { operation: 'UPDATE', oldObject: old }),
      settings,
      tokenOf,
    ),
    'is being deleted',
  );
});

test('Secrets without the label, other kinds and other operations are allowed untouched', () => {
  const plain = fixture('create.in.yaml') as { metadata: { labels: Record<string, string> } };
  plain.metadata.labels['smk.dev/write-through'] = 'false';
  assert.deepEqual(decideSecret(review(plain), settings, tokenOf), { kind: 'allow' });
  assert.deepEqual(
    decideSecret(review(fixture('create.in.yaml'), { operation: 'DELETE' }), settings, tokenOf),
    { kind: 'allow' },
  );
  assert.deepEqual(
    decideSecret(
      review(fixture('create.in.yaml'), { kind: { group: '', version: 'v1', kind: 'ConfigMap' } }),
      settings,
      tokenOf,
    ),
    { kind: 'allow' },
  );
});

test('a malformed object is denied naming the field', () => {
  expectDeny(decideSecret(review({ metadata: { labels: 'x' } }), settings, tokenOf), 'metadata.labels');
  expectDeny(
    decideSecret(
      review({ ...fixture('create.in.yaml'), data: { password: 'not base64!' } }),
      settings,
      tokenOf,
    ),
    'data key "password" is not base64',
  );
});
