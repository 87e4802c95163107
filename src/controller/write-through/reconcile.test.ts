import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SecretDescription } from '../../aws/index.ts';
import { TransientError } from '../../core/errors.ts';
import { contentToken, generateSealingKeyPair, type SealingKeyPair, sealValue } from '../../core/seal.ts';
import {
  type ReconcileDeps,
  reconcileWriteThrough,
  sweepCandidates,
  type WriteThroughSecret,
} from './reconcile.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/a/db-AbCdEf';
const settings = {
  cluster: 'bed',
  prefix: 'kubernetes/',
  deletionPolicy: 'Delete' as const,
  recoveryWindowDays: 30,
};
const ownTags = { 'smk.dev/cluster': 'bed', 'smk.dev/namespace': 'a', 'smk.dev/name': 'db' };
const keyPair = generateSealingKeyPair();
const document = '{"password":"Rc-hunter2"}';
const token = contentToken(keyPair, 'kubernetes/a/db', document);
const sealedFor = (owner = { cluster: 'bed', namespace: 'a', name: 'db' }, text = document) =>
  sealValue(keyPair.publicKey, owner, new TextEncoder().encode(text));

function secret(
  extra: {
    annotations?: Record<string, string>;
    finalizers?: string[];
    deleting?: boolean;
    sealed?: string;
  } = {},
) {
  return {
    metadata: {
      name: 'db',
      namespace: 'a',
      uid: 'uid-1',
      resourceVersion: '7',
      annotations: {
        ...(extra.sealed === undefined ? {} : { 'smk.dev/sealed': extra.sealed }),
        ...extra.annotations,
      },
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

function fake(
  description: SecretDescription | undefined,
  options: { fail?: string; key?: SealingKeyPair | undefined; putStages?: string[] } = {},
) {
  const calls: unknown[][] = [];
  const finalizers: string[][] = [];
  const annotations: Record<string, string | null>[] = [];
  const described: string[] = [];
  const record =
    (name: string) =>
    async (...args: unknown[]) => {
      calls.push([name, ...args.slice(1)]);
      if (options.fail === name) throw new TransientError(`${name}: AWS unavailable or unreachable`);
    };
  const deps: ReconcileDeps = {
    settings,
    keyPair: () => ('key' in options ? options.key : keyPair),
    writer: {
      describe: async (id) => {
        described.push(id);
        return description;
      },
      create: async (input) => {
        calls.push(['create', input.name, input.clientRequestToken, input.tags]);
        return {
          created: true,
          version: { arn, name: input.name, versionId: input.clientRequestToken, stages: ['AWSCURRENT'] },
        };
      },
      putValue: async (input) => {
        calls.push(['putValue', input.id, input.clientRequestToken, input.stages]);
        return {
          arn,
          name: 'n',
          versionId: input.clientRequestToken,
          stages: options.putStages ?? ['AWSCURRENT'],
        };
      },
      moveStage: record('moveStage'),
      tag: record('tag'),
      delete: record('delete'),
      restore: record('restore'),
    },
    setFinalizers: async (_secret, next) => {
      finalizers.push(next);
    },
    setAnnotations: async (_secret, next) => {
      annotations.push({ ...next });
    },
  };
  return { deps, calls, finalizers, annotations, described };
}

const written = { 'smk.dev/sealed': null, 'smk.dev/aws-secret-arn': arn, 'smk.dev/aws-version-id': token };

test('a sealed value and no secret yet: created with the ownership tags in one call, then the seal replaced', async () => {
  const { deps, calls, annotations, described } = fake(undefined);
  assert.deepEqual(await reconcileWriteThrough(secret({ sealed: sealedFor() }), deps), {
    outcome: 'written',
    secretName: 'kubernetes/a/db',
    versionId: token,
    change: 'created',
  });
  assert.deepEqual(described, ['kubernetes/a/db'], 'the name comes from namespace and name');
  assert.deepEqual(calls, [
    [
      'create',
      'kubernetes/a/db',
      token,
      {
        'smk.dev/managed-by': 'smk-write-through',
        ...ownTags,
        'smk.dev/committed-version': token,
        'smk.dev/deletion-policy': 'Delete',
        'smk.dev/uid': 'uid-1',
      },
    ],
  ]);
  assert.deepEqual(annotations, [written]);
});

test('new content for an owned secret: a new AWSCURRENT version, committed and tagged', async () => {
  const { deps, calls, annotations } = fake(
    described(
      { v1: ['AWSCURRENT'] },
      { 'smk.dev/committed-version': 'v1', 'smk.dev/uid': 'uid-1', 'smk.dev/deletion-policy': 'Delete' },
    ),
  );
  const result = await reconcileWriteThrough(secret({ sealed: sealedFor() }), deps);
  assert.equal(result.outcome === 'written' && result.change, 'new-version');
  assert.deepEqual(calls, [
    ['putValue', arn, token, undefined],
    ['tag', { 'smk.dev/committed-version': token }],
  ]);
  assert.deepEqual(annotations, [written]);
});

test('content already committed: nothing written (a rotation done in Secrets Manager since stands), seal replaced', async () => {
  const { deps, calls, annotations } = fake(
    described(
      { [token]: ['AWSPREVIOUS'], v3: ['AWSCURRENT'] },
      { 'smk.dev/committed-version': token, 'smk.dev/uid': 'uid-1', 'smk.dev/deletion-policy': 'Delete' },
    ),
  );
  const result = await reconcileWriteThrough(secret({ sealed: sealedFor() }), deps);
  assert.equal(result.outcome === 'written' && result.change, 'unchanged');
  assert.deepEqual(calls, []);
  assert.deepEqual(annotations, [written]);
});

test('content an older version holds (reverted): that version made AWSCURRENT again', async () => {
  const { deps, calls } = fake(
    described(
      { [token]: ['AWSPREVIOUS'], v3: ['AWSCURRENT'] },
      { 'smk.dev/committed-version': 'v3', 'smk.dev/uid': 'uid-1', 'smk.dev/deletion-policy': 'Delete' },
    ),
  );
  const result = await reconcileWriteThrough(secret({ sealed: sealedFor() }), deps);
  assert.equal(result.outcome === 'written' && result.change, 'made-current');
  assert.deepEqual(calls, [
    ['moveStage', 'AWSCURRENT', token, 'v3'],
    ['tag', { 'smk.dev/committed-version': token }],
  ]);
});

test('a put AWS ignored (its token is a deprecated version): the stage is moved to it', async () => {
  const { deps, calls } = fake(described({ v3: ['AWSCURRENT'] }, { 'smk.dev/committed-version': 'v3' }), {
    putStages: [],
  });
  await reconcileWriteThrough(secret({ sealed: sealedFor() }), deps);
  assert.deepEqual(calls.slice(0, 2), [
    ['putValue', arn, token, undefined],
    ['moveStage', 'AWSCURRENT', token, 'v3'],
  ]);
});

test('ownership is checked before every write: a secret of that name tagged for another Secret is left alone', async () => {
  const foreign: Record<string, string>[] = [
    { 'smk.dev/namespace': 'b' },
    { 'smk.dev/name': 'other' },
    { 'smk.dev/cluster': 'other' },
  ];
  for (const tags of foreign) {
    const { deps, calls, annotations } = fake(described({ v1: ['AWSCURRENT'] }, tags));
    const result = await reconcileWriteThrough(secret({ sealed: sealedFor() }), deps);
    assert.equal(result.outcome === 'warning' && result.reason, 'SecretNotOwned');
    assert.deepEqual(calls, []);
    assert.deepEqual(annotations, [], 'the sealed value stays in the Secret');
  }
  const untagged = fake({ ...described({ v1: ['AWSCURRENT'] }), tags: {} });
  assert.equal((await reconcileWriteThrough(secret(), untagged.deps)).outcome, 'warning');
  assert.deepEqual(untagged.calls, []);
});

test('finding 4: the ARN and version annotations never choose the secret; they are set back to the truth', async () => {
  const forged = {
    'smk.dev/aws-secret-arn': 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/b/db-XyZaBc',
    'smk.dev/aws-version-id': 'v0',
  };
  const {
    deps,
    described: asked,
    annotations,
  } = fake(
    described(
      { v1: ['AWSCURRENT'] },
      { 'smk.dev/committed-version': 'v1', 'smk.dev/uid': 'uid-1', 'smk.dev/deletion-policy': 'Delete' },
    ),
  );
  await reconcileWriteThrough(secret({ annotations: forged, sealed: sealedFor() }), deps);
  await reconcileWriteThrough(secret({ annotations: forged }), deps);
  assert.deepEqual(asked, ['kubernetes/a/db', 'kubernetes/a/db']);
  assert.deepEqual(annotations, [written, { 'smk.dev/aws-secret-arn': arn, 'smk.dev/aws-version-id': 'v1' }]);
});

test('a chosen name counts only under the namespace prefix, checked on the stored object', async () => {
  const own = fake(undefined);
  await reconcileWriteThrough(
    secret({ annotations: { 'smk.dev/aws-secret-name': 'kubernetes/a/payments/db' }, sealed: sealedFor() }),
    own.deps,
  );
  assert.deepEqual(own.described, ['kubernetes/a/payments/db']);
  const other = fake(undefined);
  const result = await reconcileWriteThrough(
    secret({ annotations: { 'smk.dev/aws-secret-name': 'kubernetes/b/db' }, sealed: sealedFor() }),
    other.deps,
  );
  assert.equal(result.outcome === 'warning' && result.reason, 'InvalidName');
  assert.deepEqual(other.described, []);
  assert.deepEqual(other.calls, []);
});

test('a sealed value for another Secret, or altered, is not opened: a warning, nothing written', async () => {
  for (const sealed of [
    sealedFor({ cluster: 'bed', namespace: 'b', name: 'db' }),
    sealedFor({ cluster: 'bed', namespace: 'a', name: 'other' }),
    sealedFor({ cluster: 'other', namespace: 'a', name: 'db' }),
    sealValue(
      generateSealingKeyPair().publicKey,
      { cluster: 'bed', namespace: 'a', name: 'db' },
      new Uint8Array(),
    ),
    'smk-sealed.v1.e30.AAAA',
    sealedFor(undefined, 'not a document'),
  ]) {
    const { deps, calls, annotations } = fake(undefined);
    const result = await reconcileWriteThrough(secret({ sealed }), deps);
    assert.equal(result.outcome === 'warning' && result.reason, 'SealNotOpened', sealed.slice(0, 40));
    assert.ok(result.outcome === 'warning' && !result.message.includes('hunter2'));
    assert.deepEqual(calls, []);
    assert.deepEqual(annotations, []);
  }
});

test('no key loaded yet: the write waits (a retryable error), nothing written', async () => {
  const { deps, calls } = fake(undefined, { key: undefined });
  await assert.rejects(reconcileWriteThrough(secret({ sealed: sealedFor() }), deps), TransientError);
  assert.deepEqual(calls, []);
});

test('steady state: tags kept current; a missing secret is a warning', async () => {
  const { deps, calls, annotations } = fake(
    described({ v1: ['AWSCURRENT'] }, { 'smk.dev/committed-version': 'v1', 'smk.dev/retained': 'true' }),
  );
  assert.deepEqual(
    await reconcileWriteThrough(
      secret({ annotations: { 'smk.dev/aws-secret-arn': arn, 'smk.dev/aws-version-id': 'v1' } }),
      deps,
    ),
    { outcome: 'tagged' },
  );
  assert.deepEqual(calls, [
    ['tag', { 'smk.dev/uid': 'uid-1', 'smk.dev/deletion-policy': 'Delete', 'smk.dev/retained': 'false' }],
  ]);
  assert.deepEqual(annotations, []);
  const missing = fake(undefined);
  const result = await reconcileWriteThrough(secret(), missing.deps);
  assert.equal(result.outcome === 'warning' && result.reason, 'SecretMissing');
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
  const failing = fake(described({ v2: ['AWSCURRENT'] }), { fail: 'delete' });
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
