import assert from 'node:assert/strict';
import { type AddressInfo, createServer } from 'node:net';
import { describe, it, test } from 'node:test';
import { InvalidInputError } from '../core/errors.ts';
import { AwsClients, commonJsExports } from './clients.ts';
import type { Identity } from './identity.ts';

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

describe('AwsClients: nothing grows with what tenants choose', () => {
  const credentials = { accessKeyId: 'AKID', secretAccessKey: 'not-a-real-key' };
  const staticIdentity = (n: number): Identity => ({
    kind: 'static',
    ...credentials,
    accessKeyId: `AKID${n}`,
  });

  it('keeps at most maxClients clients per service and maxIdentities credential providers', () => {
    const clients = new AwsClients({ maxClients: 4, maxIdentities: 3 });
    try {
      for (let n = 0; n < 10; n++) {
        for (const region of ['us-east-1', 'eu-west-1']) clients.secretsManager(staticIdentity(n), region);
      }
      assert.deepEqual(clients.held, { clients: 4, identities: 3 });
      const recent = clients.secretsManager(staticIdentity(9), 'eu-west-1');
      assert.equal(clients.secretsManager(staticIdentity(9), 'eu-west-1'), recent, 'a held client is reused');
      assert.notEqual(clients.secretsManager(staticIdentity(0), 'us-east-1'), undefined);
    } finally {
      clients.destroy();
    }
  });

  it('refuses a region the SDK does not list, naming it', () => {
    const clients = new AwsClients();
    assert.throws(
      () => clients.secretsManager(staticIdentity(1), 'xx-yyyy-1'),
      (error: unknown) =>
        error instanceof InvalidInputError && error.field === 'region' && /"xx-yyyy-1"/.test(error.message),
    );
    assert.deepEqual(clients.held, { clients: 0, identities: 0 });
  });

  it("a dropped identity's provider still serves its clients, with the token given last", async () => {
    const clients = new AwsClients({ maxIdentities: 1 });
    const seen: string[] = [];
    const identity = (token: string): Identity => ({
      kind: 'podIdentity',
      subject: 'ns/app',
      endpoint: 'http://127.0.0.1:9/unused',
      token: async () => {
        seen.push(token);
        throw new Error('stop here');
      },
    });
    const provider = clients.credentials(identity('first'));
    clients.credentials(identity('second'));
    clients.credentials(staticIdentity(1));
    await assert.rejects(provider());
    assert.deepEqual(seen, ['second']);
  });
});
