import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SecretDescription } from '../../aws/index.ts';
import { TransientError } from '../../core/errors.ts';
import {
  type ReconcileDeps,
  reconcileWriteThrough,
  sweepCandidates,
  type WriteThroughSecret,
} from './reconcile.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/a/db-AbCdEf';
const settings = { cluster: 'bed', deletionPolicy: 'Delete' as const, recoveryWindowDays: 30 };
const ownTags = { 'smk.dev/cluster': 'bed', 'smk.dev/namespace': 'a', 'smk.dev/name': 'db' };

function secret(
  extra: { annotations?: Record<string, string>; finalizers?: string[]; deleting?: boolean } = {},
) {
  return {
    metadata: {
      name: 'db',
      namespace: 'a',
      uid: 'uid-1',
      resourceVersion: '7',
      annotations: { 'smk.dev/aws-secret-arn': arn, 'smk.dev/aws-version-id': 'v2', ...extra.annotations },
      finalizers: extra.finalizers ?? ['smk.dev/write-through'],
      ...(extra.deleting ? { deletionTimestamp: '2030-01-01T00:00:00Z' } : {}),
    },
  } satisfies WriteThroughSecret;
}

function described(
  stages: Record<string, string[]>,
  tags: Record<string, string> = {},
  extra: Partial<SecretDescription> = {},
) {
  return {
    arn,
    name: 'kubernetes/a/db',
    tags: { ...ownTags, ...tags },
    versionsToStages: new Map(Object.entries(stages)),
    ...extra,
  };
}

function fake(description: SecretDescription | undefined, fail?: string) {
  const calls: unknown[][] = [];
  const finalizers: string[][] = [];
  const record =
    (name: string) =>
    async (...args: unknown[]) => {
      calls.push([name, ...args.slice(1)]);
      if (fail === name) throw new TransientError(`${name}: AWS unavailable or unreachable`);
    };
  const deps: ReconcileDeps = {
    settings,
    writer: {
      describe: async () => description,
      moveStage: record('moveStage'),
      removeStage: record('removeStage'),
      tag: record('tag'),
      delete: record('delete'),
    },
    setFinalizers: async (_secret, next) => {
      finalizers.push(next);
    },
  };
  return { deps, calls, finalizers };
}

test('first sight of a version: made AWSCURRENT, pending label off, committed and tagged with uid and policy', async () => {
  const { deps, calls } = fake(described({ v1: ['AWSCURRENT'], v2: ['smk-pending'] }));
  assert.deepEqual(await reconcileWriteThrough(secret(), deps), {
    outcome: 'committed',
    versionId: 'v2',
    moved: true,
  });
  assert.deepEqual(calls, [
    ['moveStage', 'AWSCURRENT', 'v2', 'v1'],
    ['removeStage', 'smk-pending', 'v2'],
    [
      'tag',
      { 'smk.dev/committed-version': 'v2', 'smk.dev/uid': 'uid-1', 'smk.dev/deletion-policy': 'Delete' },
    ],
  ]);
});

test('a create (already AWSCURRENT) is committed without a move', async () => {
  const { deps, calls } = fake(described({ v2: ['AWSCURRENT'] }));
  assert.deepEqual(await reconcileWriteThrough(secret(), deps), {
    outcome: 'committed',
    versionId: 'v2',
    moved: false,
  });
  assert.deepEqual(
    calls.map((call) => call[0]),
    ['tag'],
  );
});

test('a committed version is never moved again: a rotation done in Secrets Manager stands', async () => {
  const { deps, calls } = fake(
    described(
      { v2: ['AWSPREVIOUS'], v3: ['AWSCURRENT'] },
      { 'smk.dev/committed-version': 'v2', 'smk.dev/uid': 'uid-1', 'smk.dev/deletion-policy': 'Delete' },
    ),
  );
  assert.deepEqual(await reconcileWriteThrough(secret(), deps), { outcome: 'none' });
  assert.deepEqual(calls, []);
});

test('a committed older version named again (content reverted) becomes current', async () => {
  const { deps, calls } = fake(
    described({ v2: [], v3: ['AWSCURRENT'] }, { 'smk.dev/committed-version': 'v3', 'smk.dev/uid': 'uid-1' }),
  );
  await reconcileWriteThrough(secret(), deps);
  assert.deepEqual(calls[0], ['moveStage', 'AWSCURRENT', 'v2', 'v3']);
});

test('missing secret, missing version, foreign tags: a warning and no write', async () => {
  const cases: [SecretDescription | undefined, string][] = [
    [undefined, 'SecretMissing'],
    [described({ v1: ['AWSCURRENT'] }), 'VersionMissing'],
    [described({ v2: ['AWSCURRENT'] }, { 'smk.dev/cluster': 'other' }), 'SecretNotOwned'],
  ];
  for (const [description, reason] of cases) {
    const { deps, calls } = fake(description);
    const result = await reconcileWriteThrough(secret(), deps);
    assert.equal(result.outcome, 'warning');
    assert.equal(result.outcome === 'warning' && result.reason, reason);
    assert.deepEqual(calls, []);
  }
});

test('a live Secret without the finalizer gets it back', async () => {
  const { deps, finalizers } = fake(described({ v2: ['AWSCURRENT'] }, { 'smk.dev/committed-version': 'v2' }));
  await reconcileWriteThrough(secret({ finalizers: ['other'] }), deps);
  assert.deepEqual(finalizers, [['other', 'smk.dev/write-through']]);
});

test('deletion with Delete: scheduled with the Secret’s recovery window, then the finalizer comes off', async () => {
  const { deps, calls, finalizers } = fake(described({ v2: ['AWSCURRENT'] }));
  const result = await reconcileWriteThrough(
    secret({
      deleting: true,
      finalizers: ['x', 'smk.dev/write-through'],
      annotations: { 'smk.dev/recovery-window-days': '7' },
    }),
    deps,
  );
  assert.deepEqual(result, { outcome: 'deleted', policy: 'Delete', recoveryWindowDays: 7 });
  assert.deepEqual(calls, [['delete', { recoveryWindowDays: 7 }]]);
  assert.deepEqual(finalizers, [['x']]);
});

test('deletion with Retain: tagged retained, not deleted', async () => {
  const { deps, calls, finalizers } = fake(described({ v2: ['AWSCURRENT'] }));
  await reconcileWriteThrough(
    secret({ deleting: true, annotations: { 'smk.dev/deletion-policy': 'Retain' } }),
    deps,
  );
  assert.deepEqual(calls, [['tag', { 'smk.dev/retained': 'true' }]]);
  assert.deepEqual(finalizers, [[]]);
});

test('deletion keeps the finalizer while AWS fails; a foreign or missing secret is not touched', async () => {
  const failing = fake(described({ v2: ['AWSCURRENT'] }), 'delete');
  await assert.rejects(reconcileWriteThrough(secret({ deleting: true }), failing.deps), TransientError);
  assert.deepEqual(failing.finalizers, []);
  for (const description of [undefined, described({}, { 'smk.dev/namespace': 'b' })]) {
    const { deps, calls, finalizers } = fake(description);
    await reconcileWriteThrough(secret({ deleting: true }), deps);
    assert.deepEqual(calls, []);
    assert.deepEqual(finalizers, [[]]);
  }
});

test('sweep candidates: this cluster, old enough, not deleted, not retained; never committed means force', () => {
  const now = Date.parse('2030-01-01T01:00:00Z');
  const old = new Date('2030-01-01T00:00:00Z');
  const secrets = [
    described({}, {}, { name: 'never-committed', lastChangedDate: old }),
    described({}, { 'smk.dev/committed-version': 'v1' }, { name: 'committed', lastChangedDate: old }),
    described({}, {}, { name: 'fresh', lastChangedDate: new Date(now - 1000) }),
    described({}, { 'smk.dev/retained': 'true' }, { name: 'retained', lastChangedDate: old }),
    described(
      {},
      { 'smk.dev/committed-version': 'v1', 'smk.dev/deletion-policy': 'Retain' },
      { name: 'retain-policy', lastChangedDate: old },
    ),
    described({}, {}, { name: 'deleted', lastChangedDate: old, deletedDate: old }),
    described({}, { 'smk.dev/cluster': 'other' }, { name: 'other-cluster', lastChangedDate: old }),
  ];
  const found = sweepCandidates(secrets, { cluster: 'bed', now, graceMs: 10 * 60_000 });
  assert.deepEqual(
    found.map((candidate) => [candidate.secret.name, candidate.force]),
    [
      ['never-committed', true],
      ['committed', false],
    ],
  );
  assert.deepEqual(sweepCandidates(secrets, { cluster: 'bed', now, graceMs: 0, namespaces: ['b'] }), []);
});
