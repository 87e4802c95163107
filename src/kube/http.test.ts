import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiStatus, KubeHttpError, kubeError } from './client.ts';
import { apiBase, collectionPath, queryString } from './http.ts';

describe('API paths', () => {
  it('puts the core group under /api and the others under /apis', () => {
    assert.equal(apiBase('v1'), '/api/v1');
    assert.equal(apiBase('apps/v1'), '/apis/apps/v1');
    assert.equal(apiBase('smk.dev/v1alpha1'), '/apis/smk.dev/v1alpha1');
  });

  it('builds namespaced and cluster-scoped collection paths', () => {
    const secrets = { base: '/api/v1', plural: 'secrets', namespaced: true };
    assert.equal(collectionPath(secrets, 'team-a'), '/api/v1/namespaces/team-a/secrets');
    const webhooks = {
      base: '/apis/admissionregistration.k8s.io/v1',
      plural: 'mutatingwebhookconfigurations',
      namespaced: false,
    };
    assert.equal(
      collectionPath(webhooks, 'ignored'),
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
    );
  });

  it('refuses a namespaced path without a namespace instead of building a cluster-wide one', () => {
    assert.throws(
      () => collectionPath({ base: '/api/v1', plural: 'secrets', namespaced: true }, ''),
      /namespace/,
    );
  });

  it('encodes query values and leaves out undefined ones', () => {
    assert.equal(
      queryString({ fieldManager: 'smk', force: true, dryRun: undefined }),
      '?fieldManager=smk&force=true',
    );
    assert.equal(queryString({ labelSelector: 'a in (b,c)' }), '?labelSelector=a+in+%28b%2Cc%29');
    assert.equal(queryString(undefined), '');
  });
});

describe('KubeHttpError', () => {
  it('carries the status for kubeError, which maps it like client-node errors', () => {
    const error = new KubeHttpError('PATCH', '/api/v1/namespaces/a/secrets/b', 403, 'Forbidden');
    assert.equal(apiStatus(error), 403);
    assert.equal(kubeError(error, 'Secret a/b').kind, 'AccessDenied');
    assert.equal(kubeError(new KubeHttpError('GET', '/x', 404, undefined), 'x').kind, 'NotFound');
    assert.equal(kubeError(new KubeHttpError('POST', '/x', 422, 'Invalid'), 'x').kind, 'InvalidInput');
    assert.equal(kubeError(new KubeHttpError('POST', '/x', 503, undefined), 'x').transient, true);
  });
});
