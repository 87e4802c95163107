import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { apiErrorOf, apiStatus, KubeHttpError, kubeError, parseApiStatus } from './client.ts';
import { KubeEndpoint } from './endpoint.ts';
import {
  apiBase,
  createKubeHttp,
  type KubeRequest,
  listPage,
  parseBody,
  pathOf,
  queryString,
  resourcePath,
} from './http.ts';

describe('API paths', () => {
  it('puts the core group under /api and the others under /apis', () => {
    assert.equal(apiBase('v1'), '/api/v1');
    assert.equal(apiBase('apps/v1'), '/apis/apps/v1');
    assert.equal(apiBase('smk.dev/v1alpha1'), '/apis/smk.dev/v1alpha1');
  });

  it('builds namespaced and cluster-scoped collection paths', () => {
    const secrets = { apiVersion: 'v1', plural: 'secrets', namespaced: true };
    assert.equal(pathOf(secrets, 'team-a'), '/api/v1/namespaces/team-a/secrets');
    const webhooks = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      plural: 'mutatingwebhookconfigurations',
      namespaced: false,
    };
    assert.equal(
      pathOf(webhooks, 'ignored'),
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
    );
  });

  it('refuses a namespaced path without a namespace instead of building a cluster-wide one', () => {
    assert.throws(() => pathOf({ apiVersion: 'v1', plural: 'secrets', namespaced: true }, ''), /namespace/);
  });

  it('builds object and subresource paths, encoding every name so none reaches another path', () => {
    assert.equal(
      resourcePath('smk.dev/v1alpha1', 'secretsyncs', 'team-a', { name: 'db', subresource: 'status' }),
      '/apis/smk.dev/v1alpha1/namespaces/team-a/secretsyncs/db/status',
    );
    assert.equal(
      resourcePath('v1', 'secrets', 'a/b', { name: '../x?y' }),
      '/api/v1/namespaces/a%2Fb/secrets/..%2Fx%3Fy',
    );
    assert.equal(resourcePath('v1', 'nodes', undefined, { name: 'n1' }), '/api/v1/nodes/n1');
    assert.equal(resourcePath('apps/v1', 'deployments'), '/apis/apps/v1/deployments');
  });

  it('refuses an object path without a name instead of building the collection path', () => {
    assert.throws(() => resourcePath('v1', 'secrets', 'a', { name: '' }), /needs a name/);
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
    const error = new KubeHttpError('PATCH', '/api/v1/namespaces/a/secrets/b', 403, { reason: 'Forbidden' });
    assert.equal(apiStatus(error), 403);
    assert.equal(kubeError(error, 'Secret a/b').kind, 'AccessDenied');
    assert.equal(kubeError(new KubeHttpError('GET', '/x', 404, undefined), 'x').kind, 'NotFound');
    assert.equal(
      kubeError(new KubeHttpError('POST', '/x', 422, { reason: 'Invalid' }), 'x').kind,
      'InvalidInput',
    );
    assert.equal(kubeError(new KubeHttpError('POST', '/x', 503, undefined), 'x').transient, true);
  });
});

describe('the API server Status', () => {
  // As kube-apiserver answers a Secret with a label value it does not allow: the message echoes the value.
  const invalidLabel = JSON.stringify({
    kind: 'Status',
    status: 'Failure',
    reason: 'Invalid',
    message: 'Secret "db" is invalid: metadata.labels: Invalid value: "hunter2 x": a valid label must …',
    details: {
      name: 'db',
      kind: 'Secret',
      causes: [
        { reason: 'FieldValueInvalid', message: 'Invalid value: "hunter2 x"', field: 'metadata.labels' },
        { reason: 'FieldValueInvalid', message: 'Invalid value: "hunter2 x"', field: 'metadata.labels' },
        { reason: 'FieldValueInvalid', message: 'x', field: 'not a "field" hunter2' },
      ],
    },
    code: 422,
  });

  it('keeps the reason and the field names, never a message or value', () => {
    const details = parseApiStatus(invalidLabel, undefined);
    assert.deepEqual(details, { reason: 'Invalid', fields: ['metadata.labels'] });
    const error = kubeError(
      new KubeHttpError('POST', '/api/v1/namespaces/a/secrets', 422, details),
      'Secret a/db',
    );
    assert.equal(error.kind, 'InvalidInput');
    assert.equal(error.field, 'metadata.labels');
    assert.equal(error.message, 'Secret a/db: rejected by the API server (HTTP 422) at metadata.labels');
    assert.doesNotMatch(`${error.message} ${(error.cause as Error).message}`, /hunter2/);
  });

  it('reads Retry-After as seconds or a date, bounded', () => {
    assert.equal(parseApiStatus('', '3').retryAfterMs, 3000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseApiStatus('', 'Thu, 01 Jan 2026 00:00:10 GMT', now).retryAfterMs, 10_000);
    assert.equal(parseApiStatus('', '999999').retryAfterMs, 600_000);
    assert.equal(parseApiStatus('', 'soon').retryAfterMs, undefined);
    assert.equal(parseApiStatus('not json', undefined).reason, undefined);
  });

  it("client-node's ApiException becomes the same error type; 429 is Throttled", () => {
    const thrown = new ApiException(422, 'Unprocessable', invalidLabel, { 'retry-after': '2' });
    const error = kubeError(thrown, 'Secret a/db');
    assert.equal(error.kind, 'InvalidInput');
    assert.deepEqual(apiErrorOf(error)?.fields, ['metadata.labels']);
    assert.equal(apiErrorOf(error)?.retryAfterMs, 2000);
    assert.equal(apiStatus(apiErrorOf(error)), 422);
    assert.equal(
      kubeError(new KubeHttpError('GET', '/x', 429, { retryAfterMs: 1000 }), 'x').kind,
      'Throttled',
    );
  });
});

describe('parseBody', () => {
  it('parses JSON and reads an empty body as undefined', () => {
    assert.deepEqual(parseBody({ method: 'GET', path: '/api/v1' }, 200, '{"kind":"APIResourceList"}'), {
      kind: 'APIResourceList',
    });
    assert.equal(parseBody({ method: 'DELETE', path: '/api/v1/x' }, 200, ''), undefined);
  });

  it('turns a body that is not JSON into a KubeHttpError naming the request, never quoting the text', () => {
    const body = 'token: s3cr3t-value-not-json';
    assert.throws(
      () => parseBody({ method: 'GET', path: '/api/v1/namespaces/a/secrets/b' }, 200, body),
      (error: Error) =>
        error instanceof KubeHttpError &&
        error.message === 'GET /api/v1/namespaces/a/secrets/b: HTTP 200 (NotJson)' &&
        !error.message.includes('s3cr3t'),
    );
  });
});

describe('listPage', () => {
  it('asks for one page with its continue token and selector, and hands back the next token', async () => {
    const asked: KubeRequest[] = [];
    const http = {
      async send<T>(request: KubeRequest): Promise<T> {
        asked.push(request);
        return {
          items: [{ metadata: { name: 'a' } }],
          metadata: { resourceVersion: '42', continue: 'next-page' },
        } as T;
      },
    };
    const page = await listPage<{ metadata: { name: string } }>(http, '/apis/smk.dev/v1alpha1/secretsyncs', {
      limit: 500,
      continueToken: 'this-page',
      labelSelector: 'a=b',
    });
    assert.deepEqual(asked, [
      {
        method: 'GET',
        path: '/apis/smk.dev/v1alpha1/secretsyncs',
        query: { limit: '500', continue: 'this-page', labelSelector: 'a=b' },
      },
    ]);
    assert.deepEqual(page, {
      items: [{ metadata: { name: 'a' } }],
      resourceVersion: '42',
      continueToken: 'next-page',
    });
  });

  it('ends on a page with an empty continue token and reads null items as none', async () => {
    const http = {
      async send<T>(): Promise<T> {
        return { items: null, metadata: { resourceVersion: '7', continue: '' } } as T;
      },
    };
    assert.deepEqual(await listPage(http, '/api/v1/secrets', { limit: 1 }), {
      items: [],
      resourceVersion: '7',
      continueToken: undefined,
    });
  });
});

describe('send over the undici transport', () => {
  it('parses a successful answer, and only reads one whose caller discards it', async () => {
    // Not JSON: parsing it fails, so a call that parsed it would reject.
    const server = createServer((_request, response) => response.end('<html>a proxy page</html>'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const http = createKubeHttp(
        new KubeEndpoint(`http://127.0.0.1:${port}`, async () => ({ dispatcher: undefined, headers: {} })),
      );
      const status = {
        method: 'PATCH',
        path: '/apis/smk.dev/v1alpha1/namespaces/a/secretsyncs/b/status',
      } as const;
      await assert.rejects(http.send(status), (error: Error) => error instanceof KubeHttpError);
      assert.equal(await http.send({ ...status, discardAnswer: true }), undefined);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
