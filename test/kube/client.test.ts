/**
 * The pooled KubeConfig (src/kube/client.ts) against the real API server through a TCP proxy that
 * counts connections: many calls share one connection, and each call still carries its own
 * credentials (a client certificate, or a bearer token set per request on the pooled path).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { kubeConfigFromFile, withConnectionReuse } from '../../src/kube/client.ts';
import { startTcpFaultProxy, type TcpFaultProxy } from '../faults/tcp-proxy.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { kubeConfigFromText, renderKubeConfig } from '../testbed/kubeconfig.ts';

let bed: TestBed;
let proxy: TcpFaultProxy;

before(async () => {
  bed = await connectTestBed();
  const server = new URL(bed.serverUrl);
  proxy = await startTcpFaultProxy({ host: server.hostname, port: Number(server.port) });
});

after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

function viaProxy(credentials: Parameters<typeof renderKubeConfig>[0]['credentials']) {
  return withConnectionReuse(
    kubeConfigFromText(
      renderKubeConfig({ server: `https://${proxy.address}`, caPem: bed.caPem, credentials }),
    ),
  );
}

describe('the pooled KubeConfig', () => {
  it('reuses one connection for sequential calls (client certificate)', async () => {
    const admin = kubeConfigFromFile(bed.kubeConfigPath).getCurrentUser();
    const kubeConfig = viaProxy({
      name: 'admin',
      certPem: Buffer.from(admin?.certData ?? '', 'base64').toString('utf8'),
      keyPem: Buffer.from(admin?.keyData ?? '', 'base64').toString('utf8'),
    });
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const before = proxy.stats().accepted;
    for (let i = 0; i < 30; i += 1) await core.listNamespace({ limit: 1 });
    const opened = proxy.stats().accepted - before;
    assert.ok(opened >= 1 && opened <= 2, `${opened} connections for 30 calls`);
  });

  it('sends the bearer token on every call, the first and the pooled ones', async () => {
    const namespace = await bed.newNamespace('client-token');
    await bed.kubeConfig
      .makeApiClient(CoreV1Api)
      .createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'caller' } } });
    const token = await bed.serviceAccountToken(namespace, 'caller');
    const authentication = viaProxy({ name: 'caller', token }).makeApiClient(AuthenticationV1Api);
    const before = proxy.stats().accepted;
    for (let i = 0; i < 5; i += 1) {
      const review = await authentication.createSelfSubjectReview({ body: {} });
      assert.equal(
        review.status?.userInfo?.username,
        `system:serviceaccount:${namespace}:caller`,
        `call ${i}`,
      );
    }
    assert.ok(proxy.stats().accepted - before <= 2, 'pooled');
  });
});
