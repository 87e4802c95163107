/** RBAC is enforced on the bed: users (client certificates) and ServiceAccounts (tokens) get only what they are bound to. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { apiStatus } from './wait.ts';

describe('RBAC', () => {
  let bed: TestBed;
  let namespace: string;
  let otherNamespace: string;

  before(async () => {
    bed = await connectTestBed();
    [namespace, otherNamespace] = await Promise.all([
      bed.newNamespace('rbac'),
      bed.newNamespace('rbac-other'),
    ]);
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await Promise.all([
      core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } }),
      core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'settings' }, data: { a: '1' } },
      }),
      core.createNamespacedConfigMap({ namespace: otherNamespace, body: { metadata: { name: 'settings' } } }),
      rbac.createNamespacedRole({
        namespace,
        body: {
          metadata: { name: 'configmap-reader' },
          rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
        },
      }),
    ]);
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'configmap-readers' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
        subjects: [
          { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'smk-testers' },
          { kind: 'ServiceAccount', name: 'reader', namespace },
        ],
      },
    });
  });

  after(async () => {
    await bed.stop();
  });

  it('authenticates a client-certificate user with its groups', async () => {
    const alice = await bed.kubeConfigFor('alice', ['smk-testers']);
    const review = await alice.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    assert.equal(review.status?.userInfo?.username, 'alice');
    assert.ok(review.status?.userInfo?.groups?.includes('smk-testers'));
    assert.ok(review.status?.userInfo?.groups?.includes('system:authenticated'));
  });

  it('lets a bound group member read what the Role grants and refuses the rest', async () => {
    const core = (await bed.kubeConfigFor('alice', ['smk-testers'])).makeApiClient(CoreV1Api);
    const allowed = await core.readNamespacedConfigMap({ namespace, name: 'settings' });
    assert.equal(allowed.data?.a, '1');
    assert.equal((await core.listNamespacedConfigMap({ namespace })).items.length >= 1, true);
    assert.equal(
      await apiStatus(core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'new' } } })),
      403,
    );
    assert.equal(await apiStatus(core.listNamespacedSecret({ namespace })), 403);
    assert.equal(
      await apiStatus(core.readNamespacedConfigMap({ namespace: otherNamespace, name: 'settings' })),
      403,
    );
  });

  it('refuses a user with no binding', async () => {
    const core = (await bed.kubeConfigFor('mallory', ['other-team'])).makeApiClient(CoreV1Api);
    assert.equal(await apiStatus(core.readNamespacedConfigMap({ namespace, name: 'settings' })), 403);
  });

  it('applies bindings to a ServiceAccount acting with its token', async () => {
    const reader = await bed.kubeConfigForServiceAccount(namespace, 'reader');
    const review = await reader.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    assert.equal(review.status?.userInfo?.username, `system:serviceaccount:${namespace}:reader`);
    const core = reader.makeApiClient(CoreV1Api);
    assert.equal((await core.readNamespacedConfigMap({ namespace, name: 'settings' })).data?.a, '1');
    assert.equal(await apiStatus(core.listNamespacedSecret({ namespace })), 403);
    assert.equal(await apiStatus(core.deleteNamespacedConfigMap({ namespace, name: 'settings' })), 403);
  });
});
