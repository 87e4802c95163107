import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it, test } from 'node:test';
import { AccessDeniedError, InvalidInputError } from '../core/errors.ts';
import { AwsClients } from './clients.ts';
import type { Identity } from './identity.ts';
import { commonJsExports } from './sdk.ts';

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

describe('AwsClients: role chaining (sts:AssumeRole from the source identity)', () => {
  const roleArn = 'arn:aws:iam::222233334444:role/shared';
  interface Seen {
    readonly accessKeyId: string | undefined;
    readonly body: URLSearchParams;
  }

  /** A local STS that records who signed each AssumeRole and what it asked for. */
  async function fakeSts(status = 200): Promise<{ url: string; seen: Seen[]; close: () => void }> {
    const { createServer: createHttpServer } = await import('node:http');
    const seen: Seen[] = [];
    const server = createHttpServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const authorization = request.headers.authorization ?? '';
        seen.push({
          accessKeyId: /Credential=([^/]+)\//.exec(authorization)?.[1],
          body: new URLSearchParams(Buffer.concat(chunks).toString()),
        });
        if (status !== 200) {
          response.writeHead(status, { 'content-type': 'text/xml' });
          response.end(
            '<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message></Error></ErrorResponse>',
          );
          return;
        }
        response.writeHead(200, { 'content-type': 'text/xml' });
        response.end(
          '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>' +
            `<AccessKeyId>ASIACHAINED${seen.length}</AccessKeyId><SecretAccessKey>chained-secret</SecretAccessKey>` +
            '<SessionToken>chained-token</SessionToken><Expiration>2100-01-01T00:00:00Z</Expiration></Credentials>' +
            '</AssumeRoleResult></AssumeRoleResponse>',
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, seen, close: () => server.close() };
  }

  const source: Identity = { kind: 'static', accessKeyId: 'AKIDWORKLOAD', secretAccessKey: 'not-a-real-key' };
  const chained = (
    chain: Partial<{ externalId: string; sessionTags: Record<string, string> }> = {},
  ): Identity => ({
    kind: 'assumeRole',
    source,
    chain: { roleArn, ...chain },
    sessionName: 'smk.shop.api',
    field: 'assumeRoleArn',
  });

  it('signs AssumeRole with the source credentials and sends role, session, external id and tags', async () => {
    const sts = await fakeSts();
    const clients = new AwsClients({ endpoint: sts.url, maxAttempts: 1 });
    try {
      const credentials = await clients.credentials(
        chained({ externalId: 'shop-7f3a', sessionTags: { env: 'prod', team: 'shop' } }),
      )();
      assert.equal(credentials.accessKeyId, 'ASIACHAINED1');
      assert.equal(sts.seen.length, 1);
      const [call] = sts.seen;
      assert.equal(call?.accessKeyId, 'AKIDWORKLOAD');
      assert.equal(call?.body.get('Action'), 'AssumeRole');
      assert.equal(call?.body.get('RoleArn'), roleArn);
      assert.equal(call?.body.get('RoleSessionName'), 'smk.shop.api');
      assert.equal(call?.body.get('ExternalId'), 'shop-7f3a');
      assert.equal(call?.body.get('Tags.member.1.Key'), 'env');
      assert.equal(call?.body.get('Tags.member.2.Value'), 'shop');
    } finally {
      clients.destroy();
      sts.close();
    }
  });

  it('caches per (source, role, external id, tags): the same chain assumes once, another chain again', async () => {
    const sts = await fakeSts();
    const clients = new AwsClients({ endpoint: sts.url, maxAttempts: 1 });
    try {
      await clients.credentials(chained({ externalId: 'a1' }))();
      await clients.credentials(chained({ externalId: 'a1' }))();
      assert.equal(sts.seen.length, 1, 'the same chain is served from the cache');
      await clients.credentials(chained({ externalId: 'b2' }))();
      await clients.credentials(chained({ externalId: 'a1', sessionTags: { team: 'x' } }))();
      const other: Identity = {
        ...chained({ externalId: 'a1' }),
        source: { ...source, accessKeyId: 'AKIDOTHER' },
      } as Identity;
      await clients.credentials(other)();
      assert.equal(sts.seen.length, 4);
      assert.equal(sts.seen[3]?.accessKeyId, 'AKIDOTHER', 'another workload signs its own AssumeRole');
    } finally {
      clients.destroy();
      sts.close();
    }
  });

  it('a refusal names the field and the role, never a credential', async () => {
    const sts = await fakeSts(403);
    const clients = new AwsClients({ endpoint: sts.url, maxAttempts: 1 });
    try {
      await assert.rejects(clients.credentials(chained({ externalId: 'shop-7f3a' }))(), (error: unknown) => {
        assert.ok(error instanceof AccessDeniedError, String(error));
        assert.equal(error.field, 'assumeRoleArn');
        assert.match(
          error.message,
          /^assumeRoleArn: AssumeRole arn:aws:iam::222233334444:role\/shared .*access denied/,
        );
        assert.ok(!/AKIDWORKLOAD|not-a-real-key|shop-7f3a/.test(error.message));
        return true;
      });
    } finally {
      clients.destroy();
      sts.close();
    }
  });
});
