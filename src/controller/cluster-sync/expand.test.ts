import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInputError } from '../../core/errors.ts';
import { ownerMarker } from '../jobs.ts';
import {
  clusterSecretSyncJob,
  creationPolicyFor,
  deletionPolicyOf,
  expandClusterSecretSync,
  maxNamespaces,
  type NamespaceView,
  selectorMatches,
  selectsNamespace,
} from './expand.ts';

const ns = (name: string, labels: Record<string, string> = {}, terminating = false): NamespaceView => ({
  name,
  labels,
  terminating,
});

const object = (spec: Record<string, unknown>) => ({
  apiVersion: 'smk.dev/v1alpha1',
  kind: 'ClusterSecretSync',
  metadata: { name: 'db', uid: 'u-1', generation: 3 },
  spec: {
    serviceAccountRef: { name: 'app' },
    objects: [{ objectName: 'db', objectType: 'secretsmanager' }],
    ...spec,
  },
});

describe('selectorMatches', () => {
  it('follows Kubernetes label selector semantics', () => {
    const labels = { team: 'a', tier: 'web' };
    assert.equal(selectorMatches({}, labels), true);
    assert.equal(selectorMatches({ matchLabels: { team: 'a' } }, labels), true);
    assert.equal(selectorMatches({ matchLabels: { team: 'b' } }, labels), false);
    const expr = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', key: string, values?: string[]) => ({
      matchExpressions: [{ key, operator, ...(values ? { values } : {}) }],
    });
    assert.equal(selectorMatches(expr('In', 'tier', ['web', 'api']), labels), true);
    assert.equal(selectorMatches(expr('In', 'absent', ['web']), labels), false);
    assert.equal(selectorMatches(expr('NotIn', 'tier', ['web']), labels), false);
    assert.equal(selectorMatches(expr('NotIn', 'absent', ['web']), labels), true);
    assert.equal(selectorMatches(expr('Exists', 'team'), labels), true);
    assert.equal(selectorMatches(expr('DoesNotExist', 'team'), labels), false);
  });
});

describe('expandClusterSecretSync', () => {
  const namespaces = [
    ns('b', { sync: 'yes' }),
    ns('a', { sync: 'yes' }),
    ns('c'),
    ns('gone', { sync: 'yes' }, true),
  ];

  it('one job per selected namespace, each reading as that namespace’s own ServiceAccount', () => {
    const { jobs, missing, truncated } = expandClusterSecretSync(
      object({ namespaceSelector: { matchLabels: { sync: 'yes' } } }),
      namespaces,
    );
    assert.deepEqual(
      jobs.map((job) => [job.source.namespace, job.serviceAccountName]),
      [
        ['a', 'app'],
        ['b', 'app'],
      ],
    );
    const job = jobs[0];
    assert.ok(job);
    assert.equal(job.source.kind, 'ClusterSecretSync');
    assert.equal(job.source.uid, 'u-1');
    assert.equal(job.creationPolicy, 'Owner');
    assert.equal(job.targets[0]?.name, 'db');
    // Its own owner marker: a SecretSync named db in the namespace is another owner.
    assert.equal(ownerMarker(job.source), 'ClusterSecretSync/db');
    assert.deepEqual(missing, []);
    assert.equal(truncated, 0);
  });

  it('an explicit list adds namespaces whatever their labels, and reports listed ones that do not exist', () => {
    const { jobs, missing } = expandClusterSecretSync(
      object({ namespaces: ['c', 'nowhere', 'gone'] }),
      namespaces,
    );
    assert.deepEqual(
      jobs.map((job) => job.source.namespace),
      ['c'],
    );
    assert.deepEqual(missing, ['gone', 'nowhere']);
  });

  it('selects nothing without a selector or a list (no cluster-wide default)', () => {
    assert.throws(
      () => expandClusterSecretSync(object({}), namespaces),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'spec',
    );
  });

  it('refuses SecretSync fields that would change who reads or who owns', () => {
    for (const field of ['serviceAccountName', 'creationPolicy']) {
      assert.throws(
        () =>
          expandClusterSecretSync(
            object({ namespaces: ['a'], [field]: field === 'creationPolicy' ? 'Merge' : 'controller' }),
            namespaces,
          ),
        (error: unknown) => error instanceof InvalidInputError && error.field === `spec.${field}`,
      );
    }
  });

  it('Retain writes without an owner reference (Orphan) so no deletion cascades to the Secrets; Delete (the default) with one', () => {
    assert.equal(creationPolicyFor('Retain'), 'Orphan');
    assert.equal(creationPolicyFor('Delete'), 'Owner');
    assert.equal(deletionPolicyOf({ spec: {} }), 'Delete');
    assert.equal(deletionPolicyOf({}), 'Delete', 'an object with no spec');
    assert.equal(deletionPolicyOf({ spec: { deletionPolicy: 'Retain' } }), 'Retain');
    const policies = (spec: Record<string, unknown>) =>
      expandClusterSecretSync(object({ namespaces: ['a'], ...spec }), namespaces).jobs.map((job) => [
        job.creationPolicy,
        job.deletionPolicy,
      ]);
    assert.deepEqual(policies({ deletionPolicy: 'Retain' }), [['Orphan', 'Retain']]);
    assert.deepEqual(policies({ deletionPolicy: 'Delete' }), [['Owner', 'Delete']]);
    assert.deepEqual(policies({}), [['Owner', 'Delete']]);
    assert.throws(
      () => policies({ deletionPolicy: 'Keep' }),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'spec.deletionPolicy',
    );
  });

  it('names the ClusterSecretSync and the field in a spec error', () => {
    assert.throws(
      () =>
        expandClusterSecretSync(
          object({ namespaces: ['a'], target: { type: 'helm.sh/release.v1' } }),
          namespaces,
        ),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        /^ClusterSecretSync a\/db: spec\.target\.type/.test(error.message) &&
        error.field === 'spec.target.type',
    );
  });

  it('bounds the namespaces written and says how many were left out', () => {
    const many = Array.from({ length: maxNamespaces + 3 }, (_, index) =>
      ns(`ns-${String(index).padStart(4, '0')}`, { sync: 'yes' }),
    );
    const { jobs, truncated } = expandClusterSecretSync(
      object({ namespaceSelector: { matchLabels: { sync: 'yes' } } }),
      many,
    );
    assert.equal(jobs.length, maxNamespaces);
    assert.equal(truncated, 3);
  });

  describe('mode (b): one ServiceAccount the administrator names', () => {
    const asController = { serviceAccountRef: { name: 'reader', namespace: 'platform' } };

    it('reads as that account for every listed namespace', () => {
      const { jobs, identityNamespace } = expandClusterSecretSync(
        object({ ...asController, namespaces: ['a', 'c'] }),
        namespaces,
      );
      assert.equal(identityNamespace, 'platform');
      assert.deepEqual(
        jobs.map((job) => [job.source.namespace, job.serviceAccountName]),
        [
          ['a', 'reader'],
          ['c', 'reader'],
        ],
      );
    });

    it('mode (a) has no identity namespace', () => {
      const { identityNamespace } = expandClusterSecretSync(object({ namespaces: ['a'] }), namespaces);
      assert.equal(identityNamespace, undefined);
    });

    it('refuses a label selector: whoever may label a namespace would receive the values', () => {
      for (const spec of [
        { ...asController, namespaceSelector: { matchLabels: { sync: 'yes' } } },
        { ...asController, namespaces: ['a'], namespaceSelector: { matchLabels: { sync: 'yes' } } },
      ]) {
        assert.throws(
          () => expandClusterSecretSync(object(spec), namespaces),
          (error: unknown) =>
            error instanceof InvalidInputError &&
            error.field === 'spec.namespaceSelector' &&
            /must be listed in spec\.namespaces/.test(error.message),
        );
      }
    });
  });
});

describe('selectsNamespace', () => {
  it('says whether one namespace is selected (a Namespace event re-runs only what it changes)', () => {
    const spec = object({ namespaceSelector: { matchLabels: { sync: 'yes' } }, namespaces: ['listed'] });
    assert.equal(selectsNamespace(spec, ns('x', { sync: 'yes' })), true);
    assert.equal(selectsNamespace(spec, ns('x', { sync: 'no' })), false);
    assert.equal(selectsNamespace(spec, ns('listed')), true);
    assert.equal(selectsNamespace(spec, ns('x', { sync: 'yes' }, true)), false, 'terminating');
    assert.equal(selectsNamespace({ metadata: { name: 'broken' } }, ns('x', { sync: 'yes' })), false);
  });
});

describe('clusterSecretSyncJob', () => {
  it("builds one namespace's job whether or not the selector picks it, with who reads for it", () => {
    const selected = object({
      namespaceSelector: { matchLabels: { team: 'a' } },
      target: { name: 'db-env' },
    });
    const { job, identityNamespace } = clusterSecretSyncJob(selected, 'unlabelled');
    assert.equal(job.source.namespace, 'unlabelled');
    assert.equal(job.source.kind, 'ClusterSecretSync');
    assert.equal(job.serviceAccountName, 'app');
    assert.equal(identityNamespace, undefined, "mode (a): each namespace's own account");
    const named = clusterSecretSyncJob(
      object({ namespaces: ['team-a'], serviceAccountRef: { name: 'reader', namespace: 'platform' } }),
      'team-a',
    );
    assert.equal(named.identityNamespace, 'platform', 'mode (b): the namespace the administrator named');
    assert.equal(named.job.serviceAccountName, 'reader');
  });

  it('refuses what expandClusterSecretSync refuses, naming the field', () => {
    assert.throws(
      () => clusterSecretSyncJob(object({ namespaces: ['a'], serviceAccountName: 'x' }), 'a'),
      (error: unknown) =>
        error instanceof InvalidInputError && /spec\.serviceAccountName/.test(error.message),
    );
    assert.throws(
      () =>
        clusterSecretSyncJob(
          object({ namespaceSelector: {}, serviceAccountRef: { name: 'r', namespace: 'platform' } }),
          'a',
        ),
      (error: unknown) => error instanceof InvalidInputError && /spec\.namespaceSelector/.test(error.message),
    );
  });
});
