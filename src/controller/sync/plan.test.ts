import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Secret } from '@kubernetes/client-node';
import { InvalidInputError, TooLargeError } from '../../core/errors.ts';
import type { Payload } from '../../core/spec-types.ts';
import type { CreationPolicy, SyncSource, SyncTarget } from '../jobs.ts';
import {
  adoptCreatedFields,
  appliesCleanly,
  createManager,
  desiredBody,
  managerFor,
  planSecretWrite,
} from './plan.ts';
import { renderSecretData } from './render.ts';

const source: SyncSource = {
  kind: 'SecretSync',
  apiVersion: 'smk.dev/v1alpha1',
  namespace: 'team-a',
  name: 'db',
  uid: 'uid-db',
  generation: 1,
};
const target: SyncTarget = { name: 'db', type: 'Opaque', labels: { tier: 'data' }, annotations: {} };
const b64 = (text: string): string => Buffer.from(text).toString('base64');

function payload(name: string, text: string): Payload {
  return {
    name,
    bytes: new TextEncoder().encode(text),
    mode: 0o644,
    objectVersion: { id: name, version: 'v1' },
  };
}

function desired(creationPolicy: CreationPolicy, data: Record<string, string> = { password: b64('pw') }) {
  return { source, target, creationPolicy, data };
}

/** A Secret as the API server would return it after smk applied `body` (with managedFields). */
function stored(body: V1Secret, manager = 'smk'): V1Secret {
  const fields = (record: Record<string, string> | undefined) =>
    Object.fromEntries(Object.keys(record ?? {}).map((key) => [`f:${key}`, {}]));
  return {
    ...body,
    metadata: {
      ...body.metadata,
      resourceVersion: '42',
      managedFields: [
        {
          manager,
          operation: 'Apply',
          fieldsV1: {
            'f:data': fields(body.data),
            'f:metadata': {
              'f:labels': fields(body.metadata?.labels),
              'f:annotations': fields(body.metadata?.annotations),
              'f:ownerReferences': Object.fromEntries(
                (body.metadata?.ownerReferences ?? []).map((ref) => [`k:{"uid":"${ref.uid}"}`, {}]),
              ),
            },
          },
        },
      ],
    },
  };
}

describe('renderSecretData', () => {
  it('maps objectName → key as secretObjects does', () => {
    const rendered = renderSecretData(
      [payload('db-creds', '{"u":"x"}'), payload('password', 'pw')],
      { ...target, data: [{ objectName: 'password', key: 'DB_PASSWORD' }] },
      'SecretSync team-a/db',
    );
    assert.deepEqual(rendered.data, { DB_PASSWORD: b64('pw') });
  });

  it('defaults to one key per produced file', () => {
    const rendered = renderSecretData([payload('a', '1'), payload('b', '22')], target, 'S');
    assert.deepEqual(rendered.data, { a: b64('1'), b: b64('22') });
    assert.equal(rendered.bytes, 3);
  });

  it('names an unknown objectName and lists what exists, without values', () => {
    assert.throws(
      () =>
        renderSecretData(
          [payload('password', 'hunter2')],
          { ...target, data: [{ objectName: 'passwd', key: 'k' }] },
          'SecretSync team-a/db',
        ),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        error.message ===
          'SecretSync team-a/db: Secret db: data[0].objectName "passwd" names no object; the objects produce "password"' &&
        !error.message.includes('hunter2'),
    );
  });

  it('refuses a file name that is no Secret key', () => {
    assert.throws(() => renderSecretData([payload('dir/file', 'x')], target, 'S'), /not a valid Secret key/);
  });

  it('refuses values over 64 KiB and Secrets over 1 MiB', () => {
    assert.throws(
      () => renderSecretData([payload('big', 'x'.repeat(65 * 1024))], target, 'S'),
      TooLargeError,
    );
    const many = Array.from({ length: 17 }, (_, i) => payload(`k${i}`, 'y'.repeat(60 * 1024)));
    assert.throws(
      () => renderSecretData(many, target, 'S'),
      (error: unknown) => error instanceof TooLargeError && /at most 1 MiB/.test(error.message),
    );
  });
});

describe('planSecretWrite', () => {
  it('creates a missing Secret with labels, owner marker and owner reference', () => {
    const plan = planSecretWrite(desired('Owner'), undefined);
    assert.equal(plan.action, 'create');
    if (plan.action !== 'create') return;
    assert.equal(plan.force, false);
    assert.equal(plan.manager, 'smk');
    assert.deepEqual(plan.body.metadata?.labels, { tier: 'data', 'app.kubernetes.io/managed-by': 'smk' });
    assert.deepEqual(plan.body.metadata?.annotations, { 'smk.dev/owner': 'SecretSync/db' });
    assert.deepEqual(plan.body.metadata?.ownerReferences, [
      { apiVersion: 'smk.dev/v1alpha1', kind: 'SecretSync', name: 'db', uid: 'uid-db', controller: true },
    ]);
    assert.deepEqual(plan.body.data, { password: b64('pw') });
  });

  it('Orphan sets no owner reference', () => {
    const plan = planSecretWrite(desired('Orphan'), undefined);
    assert.equal(plan.action === 'create' && plan.body.metadata?.ownerReferences, undefined);
  });

  it('leaves an up-to-date Secret alone', () => {
    const existing = stored(desiredBody(desired('Owner')));
    assert.deepEqual(planSecretWrite(desired('Owner'), existing), { action: 'unchanged' });
  });

  it('updates a changed value, with a resourceVersion precondition and force', () => {
    const existing = stored(desiredBody(desired('Owner', { password: b64('old') })));
    const plan = planSecretWrite(desired('Owner'), existing);
    assert.equal(plan.action, 'update');
    if (plan.action !== 'update') return;
    assert.equal(plan.force, true);
    assert.equal(plan.body.metadata?.resourceVersion, '42');
  });

  it('updates when a key smk applied is no longer wanted (apply then removes it)', () => {
    const existing = stored(desiredBody(desired('Owner', { password: b64('pw'), old: b64('x') })));
    assert.equal(planSecretWrite(desired('Owner'), existing).action, 'update');
  });

  it('ignores keys someone else added to a Secret smk owns', () => {
    const existing = stored(desiredBody(desired('Owner')));
    const withExtra = { ...existing, data: { ...existing.data, theirs: b64('t') } };
    assert.equal(planSecretWrite(desired('Owner'), withExtra).action, 'unchanged');
  });

  it('updates when switching Owner → Orphan (the owner reference must go)', () => {
    const existing = stored(desiredBody(desired('Owner')));
    assert.equal(planSecretWrite(desired('Orphan'), existing).action, 'update');
  });

  it('refuses a Secret smk did not create, and one synced by another source', () => {
    const foreign: V1Secret = {
      metadata: { name: 'db', namespace: 'team-a' },
      type: 'Opaque',
      data: { x: b64('1') },
    };
    const refused = planSecretWrite(desired('Owner'), foreign);
    assert.equal(refused.action === 'refuse' && refused.reason, 'SecretNotOwned');
    assert.match(
      refused.action === 'refuse' ? refused.message : '',
      /was not created by smk; not overwriting it/,
    );
    const other = {
      ...foreign,
      metadata: { ...foreign.metadata, annotations: { 'smk.dev/owner': 'SecretSync/other' } },
    };
    const refusedOther = planSecretWrite(desired('Orphan'), other);
    assert.match(
      refusedOther.action === 'refuse' ? refusedOther.message : '',
      /is synced by SecretSync\/other/,
    );
  });

  it('refuses a type change', () => {
    const existing = stored({ ...desiredBody(desired('Owner')), type: 'kubernetes.io/tls' });
    const plan = planSecretWrite(desired('Owner'), existing);
    assert.equal(plan.action === 'refuse' && plan.reason, 'SecretTypeMismatch');
  });

  it('Merge needs an existing Secret and writes only its keys, with its own field manager', () => {
    const missing = planSecretWrite(desired('Merge'), undefined);
    assert.equal(missing.action === 'refuse' && missing.reason, 'SecretMissing');
    const foreign: V1Secret = {
      metadata: { name: 'db', namespace: 'team-a', annotations: { 'smk.dev/merge-from': 'SecretSync/db' } },
      type: 'Opaque',
      data: { x: b64('1') },
    };
    const plan = planSecretWrite(desired('Merge'), foreign);
    assert.equal(plan.action, 'update');
    if (plan.action !== 'update') return;
    assert.equal(plan.force, true);
    assert.equal(plan.manager, 'smk-merge-uid-db');
    assert.deepEqual(plan.body.data, { password: b64('pw') });
    assert.equal(plan.body.type, undefined, 'Merge never sets the type');
    assert.equal(plan.body.metadata?.annotations, undefined, 'Merge claims no ownership');
    const applied = stored(desiredBody(desired('Merge')), managerFor(source, 'Merge'));
    const merged = {
      ...applied,
      metadata: { ...applied.metadata, annotations: foreign.metadata?.annotations },
      type: 'Opaque',
      data: { ...applied.data, x: b64('1') },
    };
    assert.equal(planSecretWrite(desired('Merge'), merged).action, 'unchanged');
  });

  it('Merge writes only into an Opaque Secret whose smk.dev/merge-from names the source', () => {
    const secret = (annotations: Record<string, string> | undefined, type = 'Opaque'): V1Secret => ({
      metadata: {
        name: 'db',
        namespace: 'team-a',
        resourceVersion: '7',
        ...(annotations ? { annotations } : {}),
      },
      type,
      data: { x: b64('1') },
    });
    const refused = (existing: V1Secret) => {
      const plan = planSecretWrite(desired('Merge'), existing);
      return plan.action === 'refuse' ? `${plan.reason}: ${plan.message}` : plan.action;
    };
    assert.match(
      refused(secret(undefined)),
      /^MergeNotAllowed: Secret team-a\/db does not name SecretSync\/db in its smk.dev\/merge-from annotation/,
    );
    for (const listed of ['SecretSync/other', 'db-x', 'SecretProviderClass/db', '']) {
      assert.match(refused(secret({ 'smk.dev/merge-from': listed })), /^MergeNotAllowed/, listed);
    }
    for (const listed of ['SecretSync/db', 'db', 'SecretSync/a, SecretSync/db', 'a db']) {
      assert.equal(refused(secret({ 'smk.dev/merge-from': listed })), 'update', listed);
    }
    // Opted in, but a type with meaning for someone else: never, and the opt-in is checked first.
    for (const type of [
      'kubernetes.io/tls',
      'kubernetes.io/service-account-token',
      'kubernetes.io/dockerconfigjson',
    ]) {
      assert.match(
        refused(secret({ 'smk.dev/merge-from': 'db' }, type)),
        new RegExp(
          `^SecretTypeNotMergeable: Secret team-a/db has type ${type}; creationPolicy Merge writes only into Opaque`,
        ),
      );
      assert.doesNotMatch(refused(secret(undefined, type)), /type/, 'no opt-in: the type is not told');
    }
    const plan = planSecretWrite(desired('Merge'), secret({ 'smk.dev/merge-from': 'db' }));
    assert.equal(
      plan.action === 'update' && plan.body.metadata?.resourceVersion,
      '7',
      'conditional on the Secret judged',
    );
  });

  it('appliesCleanly sees a hand-edited label value', () => {
    const body = desiredBody(desired('Owner'));
    const existing = stored(body);
    const edited = {
      ...existing,
      metadata: { ...existing.metadata, labels: { ...existing.metadata?.labels, tier: 'web' } },
    };
    assert.equal(appliesCleanly(body, edited, 'smk'), false);
  });
});

describe("smk's create entry (createManager)", () => {
  /** As the server stores a Secret smk created (POST): one Update entry of smk-create. */
  function createdBySmk(body: V1Secret): V1Secret {
    const applied = stored(body);
    const entry = applied.metadata?.managedFields?.[0];
    return {
      ...applied,
      metadata: {
        ...applied.metadata,
        managedFields: [
          { ...entry, manager: createManager, operation: 'Update' },
          {
            manager: 'kubectl-edit',
            operation: 'Update',
            fieldsV1: { 'f:metadata': { 'f:labels': { 'f:x': {} } } },
          },
        ],
      },
    };
  }

  it('counts as written by smk: a key it no longer wants is seen as stale', () => {
    const existing = createdBySmk(desiredBody(desired('Owner', { password: b64('pw'), old: b64('o') })));
    const plan = planSecretWrite(desired('Owner'), existing);
    assert.equal(plan.action, 'update');
    assert.equal(plan.action === 'update' && plan.adoptCreated, true);
  });

  it('an unchanged Secret smk created stays unchanged (no adoption just for its own sake)', () => {
    const existing = createdBySmk(desiredBody(desired('Owner')));
    assert.deepEqual(planSecretWrite(desired('Owner'), existing), { action: 'unchanged' });
  });

  it("adoptCreatedFields folds it into smk's Apply entry and keeps every other manager's", () => {
    const existing = createdBySmk(desiredBody(desired('Owner')));
    const entries = [
      ...(existing.metadata?.managedFields ?? []),
      { manager: 'smk', operation: 'Apply', fieldsV1: { 'f:data': { 'f:extra': {} } } },
    ];
    const adopted = adoptCreatedFields(entries, 'smk');
    assert.ok(adopted);
    assert.deepEqual(
      adopted.map((entry) => `${entry.manager}/${entry.operation}`),
      ['kubectl-edit/Update', 'smk/Apply'],
    );
    const fields = adopted[1]?.fieldsV1 as { 'f:data'?: Record<string, unknown> } | undefined;
    assert.deepEqual(Object.keys(fields?.['f:data'] ?? {}).sort(), ['f:extra', 'f:password']);
    assert.equal(adoptCreatedFields(adopted, 'smk'), undefined, 'nothing left to adopt');
  });
});

describe('the versions a SecretProviderClass Secret holds', () => {
  const spc: SyncSource = {
    ...source,
    kind: 'SecretProviderClass',
    apiVersion: 'secrets-store.csi.x-k8s.io/v1',
  };
  const versions = { db: 'v-7' };

  it('are recorded on its Secret, so a new version with the same bytes is still a write', () => {
    const body = desiredBody({ ...desired('Owner'), source: spc, versions });
    assert.equal(body.metadata?.annotations?.['smk.dev/versions'], '{"db":"v-7"}');
    const existing = stored(desiredBody({ ...desired('Owner'), source: spc, versions: { db: 'v-6' } }));
    assert.equal(planSecretWrite({ ...desired('Owner'), source: spc, versions }, existing).action, 'update');
  });

  it('are not recorded for a SecretSync (its status holds them) nor on a merged Secret', () => {
    assert.equal(
      desiredBody({ ...desired('Owner'), versions }).metadata?.annotations?.['smk.dev/versions'],
      undefined,
    );
    const merged = desiredBody({ ...desired('Merge'), source: spc, versions });
    assert.equal(merged.metadata?.annotations?.['smk.dev/versions'], undefined);
  });
});
