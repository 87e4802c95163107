import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeInformers, type WatchedKind, watchedResources } from './informers.ts';
import { rolloutKindNames } from './kinds.ts';
import { fakeInformer } from './test-doubles.ts';

test('every rollout kind is a watched kind, at its row API; managed Secrets by the managed-by label', () => {
  for (const kind of rolloutKindNames) {
    const resource = watchedResources[kind as WatchedKind];
    assert.equal(resource.kind, kind);
    assert.ok(resource.apiVersion.includes('/'));
  }
  assert.deepEqual(watchedResources.ManagedSecret, {
    apiVersion: 'v1',
    kind: 'Secret',
    plural: 'secrets',
    labelSelector: 'app.kubernetes.io/managed-by=smk',
  });
});

test('per-namespace informers merged: one list, a get asks each, handlers on all, healthy when all are', async () => {
  const a = fakeInformer([{ metadata: { namespace: 'a', name: 'x' } }]);
  const b = fakeInformer([{ metadata: { namespace: 'b', name: 'y' } }]);
  const merged = mergeInformers([a, b]);
  assert.equal(merged.list().length, 2);
  assert.equal(merged.get('b', 'y')?.metadata?.name, 'y');
  assert.equal(merged.get('a', 'y'), undefined);
  const seen: string[] = [];
  merged.addHandlers({ add: (object) => seen.push(object.metadata?.name ?? '') });
  b.set({ metadata: { namespace: 'b', name: 'z' } });
  assert.deepEqual(seen, ['z']);
  assert.equal(merged.healthy, false);
  await merged.start();
  assert.equal(merged.healthy, true);
  merged.stop();
  assert.equal(a.started || b.started, false);
  assert.equal(mergeInformers([a]), a, 'one namespace: the informer itself');
});
