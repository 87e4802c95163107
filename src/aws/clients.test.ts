import assert from 'node:assert/strict';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { AwsClients, commonJsExports } from './clients.ts';

test('commonJsExports: a namespace holding only `default` (the bundle) gives its exports', () => {
  class Client {}
  const bundled = { default: { Client } };
  assert.equal(commonJsExports(bundled as unknown as { Client: typeof Client }).Client, Client);
});

test("commonJsExports: Node's own namespace (named exports found) is used as it is", async () => {
  const sts = await import('@aws-sdk/client-sts');
  assert.equal(commonJsExports(sts), sts);
  assert.equal(typeof commonJsExports(sts).STSClient, 'function');
  const esm = { Client: 1, default: { Client: 2 } };
  assert.equal(commonJsExports(esm), esm);
});

test('preload: rehearses an STS and a Secrets Manager call without a byte to the endpoint', async () => {
  let connections = 0;
  const endpoint = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  const { port } = endpoint.address() as AddressInfo;
  const clients = new AwsClients({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 });
  try {
    await clients.preload('eu-west-1');
    assert.equal(connections, 0);
  } finally {
    clients.destroy();
    endpoint.close();
  }
});
