import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Secret } from '@kubernetes/client-node';
import type { Objects } from '../../kube/apply.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { SyncSource } from '../jobs.ts';
import type { SecretSyncObject } from '../kinds.ts';
import { createOwnedSecrets } from './owned-secrets.ts';
import { createRelease, deletionPolicyOf } from './release.ts';

const source: SyncSource = {
  kind: 'SecretSync',
  apiVersion: 'smk.dev/v1alpha1',
  namespace: 'team',
  name: 'app',
  uid: 'u1',
  generation: 1,
};

function owned(name: string, owner: string): V1Secret {
  return {
    metadata: {
      name,
      namespace: 'team',
      uid: `uid-${name}`,
      resourceVersion: '7',
      annotations: { 'smk.dev/owner': owner },
      ownerReferences: [
        { apiVersion: 'smk.dev/v1alpha1', kind: 'SecretSync', name: 'app', uid: 'u1' },
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'other', uid: 'u2' },
      ],
    },
  };
}

/** Records every call; answers nothing more than the release needs. */
function recordingObjects() {
  const calls: string[] = [];
  const objects = {
    delete: async (ref: { name: string }, uid?: string) => {
      calls.push(`delete ${ref.name} if uid ${uid}`);
      return true;
    },
    mergePatch: async (ref: { name: string }, patch: Record<string, unknown>) => {
      calls.push(`patch ${ref.name} ${JSON.stringify(patch)}`);
      return {};
    },
  } as unknown as Objects;
  return { objects, calls };
}

const events = { record: async () => {} } as EventRecorder;

test('Delete removes exactly the Secrets the source owns, except those it still names', async () => {
  const index = createOwnedSecrets();
  for (const secret of [
    owned('a', 'SecretSync/app'),
    owned('b', 'SecretSync/app'),
    owned('c', 'SecretSync/other'),
  ]) {
    index.index(secret, true);
  }
  index.index(owned('b', 'SecretSync/app'), false);
  const { objects, calls } = recordingObjects();
  const release = createRelease({ objects, events, owned: index });
  await release.releaseSecrets(source, 'Delete', new Set(['keep']));
  assert.deepEqual(calls, ['delete a if uid uid-a'], 'b was unindexed, c belongs to another source');
});

test('Retain lets go: only the source’s owner reference is dropped, conditional on the resourceVersion', async () => {
  const index = createOwnedSecrets();
  index.index(owned('a', 'SecretSync/app'), true);
  const { objects, calls } = recordingObjects();
  await createRelease({ objects, events, owned: index }).releaseSecrets(source, 'Retain', new Set());
  assert.deepEqual(calls, [
    'patch a {"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"other","uid":"u2"}],"resourceVersion":"7"}}',
  ]);
});

test('own writes are told apart from someone else’s change', () => {
  const index = createOwnedSecrets();
  index.wrote(owned('a', 'SecretSync/app'));
  assert.equal(index.isOwnWrite(owned('a', 'SecretSync/app')), true);
  assert.equal(
    index.isOwnWrite({
      ...owned('a', 'SecretSync/app'),
      metadata: { name: 'a', namespace: 'team', resourceVersion: '8' },
    }),
    false,
  );
});

test('deletionPolicyOf: a spec that no longer parses still has a policy', () => {
  const object = (spec: Record<string, unknown>) =>
    ({ metadata: { name: 'x', namespace: 'team' }, spec }) as unknown as SecretSyncObject;
  assert.equal(deletionPolicyOf(object({ deletionPolicy: 'Retain' }), undefined), 'Retain');
  assert.equal(deletionPolicyOf(object({ creationPolicy: 'Merge' }), undefined), 'Retain');
  assert.equal(deletionPolicyOf(object({}), undefined), 'Delete');
});
