import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { InvalidInputError } from '../../core/errors.ts';
import { createReferenceTracker, dataDigest, digestOnly, parseReferences } from './references.ts';

const secret = (data: Record<string, string>, resourceVersion: string, labels: Record<string, string> = {}) =>
  ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'app-env', namespace: 'team-a', uid: 'u', resourceVersion, labels },
    data,
  }) as KubernetesObject;

test("smk's annotations name Secrets and ConfigMaps; Reloader's only when honoured", () => {
  const annotations = {
    'smk.dev/reload-secrets': 'db-env, tls db-env',
    'smk.dev/reload-configmaps': 'app-config',
    'secret.reloader.stakater.com/reload': 'legacy',
    'configmap.reloader.stakater.com/reload': 'legacy-config',
  };
  assert.deepEqual(
    parseReferences('Deployment team-a/web', annotations).map((r) => `${r.kind}/${r.name}`),
    ['Secret/db-env', 'Secret/tls', 'ConfigMap/app-config'],
  );
  assert.deepEqual(
    parseReferences('Deployment team-a/web', annotations, { reloaderAnnotations: true }).map(
      (r) => `${r.kind}/${r.name} ${r.annotation}`,
    ),
    [
      'Secret/db-env smk.dev/reload-secrets',
      'Secret/tls smk.dev/reload-secrets',
      'ConfigMap/app-config smk.dev/reload-configmaps',
      'Secret/legacy secret.reloader.stakater.com/reload',
      'ConfigMap/legacy-config configmap.reloader.stakater.com/reload',
    ],
  );
});

test('tenant rule: a name with a namespace (or anything but an object name) is refused, naming the annotation', () => {
  for (const name of ['other-team/db-env', 'DB', '../x', 'a_b']) {
    assert.throws(
      () => parseReferences('Deployment team-a/web', { 'smk.dev/reload-secrets': name }),
      (error) =>
        error instanceof InvalidInputError &&
        error.message.includes('annotation smk.dev/reload-secrets') &&
        error.message.includes("workload's own namespace"),
      name,
    );
  }
});

test('the digest follows the data (and binaryData), not the metadata or the key order', () => {
  assert.equal(
    dataDigest(secret({ a: 'MQ==', b: 'Mg==' }, '1')),
    dataDigest(secret({ b: 'Mg==', a: 'MQ==' }, '2', { x: 'y' })),
  );
  assert.notEqual(dataDigest(secret({ a: 'MQ==' }, '1')), dataDigest(secret({ a: 'Mg==' }, '1')));
  assert.notEqual(
    dataDigest(secret({}, '1')),
    dataDigest({ ...secret({}, '1'), binaryData: { a: 'MQ==' } } as KubernetesObject),
  );
});

test('digestOnly keeps identity and digest, no value; the digest of the stripped object is the same', () => {
  const full = secret({ password: Buffer.from('hunter2').toString('base64') }, '5');
  const stripped = digestOnly(full);
  assert.ok(!JSON.stringify(stripped).includes(Buffer.from('hunter2').toString('base64')));
  assert.deepEqual(stripped.metadata, {
    name: 'app-env',
    namespace: 'team-a',
    uid: 'u',
    resourceVersion: '5',
  });
  assert.equal(dataDigest(stripped), dataDigest(full));
});

test('data version: the resourceVersion at which the current data was first seen; metadata updates keep it', () => {
  const tracker = createReferenceTracker();
  assert.equal(tracker.observe('Secret', secret({ a: 'MQ==' }, '10')), 'new');
  assert.equal(tracker.observe('Secret', secret({ a: 'MQ==' }, '11', { relabelled: 'yes' })), 'same');
  assert.equal(tracker.dataVersion('Secret', 'team-a', 'app-env'), '10');
  assert.equal(tracker.observe('Secret', secret({ a: 'Mg==' }, '12')), 'changed');
  assert.equal(tracker.dataVersion('Secret', 'team-a', 'app-env'), '12');
  assert.equal(tracker.dataVersion('ConfigMap', 'team-a', 'app-env'), undefined, 'kinds apart');
  assert.equal(tracker.dataVersion('Secret', 'team-b', 'app-env'), undefined, 'namespaces apart');
  tracker.forget('Secret', secret({}, '13'));
  assert.equal(tracker.dataVersion('Secret', 'team-a', 'app-env'), undefined);
});
