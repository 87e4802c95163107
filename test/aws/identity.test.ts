import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { SecretCache } from '../../src/aws/cache.ts';
import { AwsClients } from '../../src/aws/clients.ts';
import type { Identity } from '../../src/aws/identity.ts';
import { createSecretReader } from '../../src/aws/reader.ts';
import { AccessDeniedError, TransientError } from '../../src/core/errors.ts';
import type { SecretRequest } from '../../src/core/source.ts';
import { createSecret, expectError, expectValue, moto, region, text, uniquePrefix, wire } from './support.ts';

const sm = (id: string): SecretRequest => ({ objectType: 'secretsmanager', id, region });
const roleArn = 'arn:aws:iam::123456789012:role/smk-namespace-team-a';

test('AssumeRoleWithWebIdentity with our token: one unsigned STS call, then calls signed as the role', async (t) => {
  const { reader, proxy } = await wire(t);
  const prefix = uniquePrefix('webid');
  await createSecret(`${prefix}/a`, 'A');
  await createSecret(`${prefix}/b`, 'B');
  let tokens = 0;
  const identity: Identity = {
    kind: 'webIdentity',
    roleArn,
    subject: 'team-a/app',
    sessionName: 'smk-team-a-app',
    token: async () => {
      tokens += 1;
      return 'eyJhbGciOiJSUzI1NiJ9.projected-token.sig';
    },
  };
  const [a] = await reader(identity).read([sm(`${prefix}/a`)]);
  assert.equal(text(expectValue(a).bytes), 'A');
  // A second reader for the same identity shares its credentials.
  const [b] = await reader(identity).read([sm(`${prefix}/b`)]);
  assert.equal(text(expectValue(b).bytes), 'B');

  assert.equal(tokens, 1);
  const sts = proxy.calls().filter((call) => call.api === 'AssumeRoleWithWebIdentity');
  assert.equal(sts.length, 1);
  assert.equal(sts[0]?.accessKeyId, undefined, 'AssumeRoleWithWebIdentity is sent unsigned');
  const reads = proxy.calls().filter((call) => call.api === 'GetSecretValue');
  assert.equal(reads.length, 2);
  const assumedKey = reads[0]?.accessKeyId;
  assert.match(assumedKey ?? '', /^ASIA/, 'signed with the assumed role credentials');
  assert.equal(reads[1]?.accessKeyId, assumedKey);
});

test('a refused web identity and a failing token become sentinel errors without the token', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = uniquePrefix('webidfail');
  await createSecret(name, 'v');
  const token = 'very-secret-token-value';
  proxy.addFault({ fault: { kind: 'deny' }, api: 'AssumeRoleWithWebIdentity' });
  const refused = expectError(
    (
      await reader({
        kind: 'webIdentity',
        roleArn,
        subject: 'ns/refused',
        sessionName: 'refused',
        token: async () => token,
      }).read([sm(name)])
    )[0],
  ).error;
  assert.ok(refused instanceof AccessDeniedError, refused.name);
  assert.doesNotMatch(refused.message, new RegExp(token));

  const broken = expectError(
    (
      await reader({
        kind: 'webIdentity',
        roleArn,
        subject: 'ns/broken',
        sessionName: 'broken',
        token: () => Promise.reject(new Error(`cannot read ${token}`)),
      }).read([sm(name)])
    )[0],
  ).error;
  assert.ok(broken instanceof TransientError, broken.name);
  assert.match(broken.message, /web identity token for arn:aws:iam::123456789012:role\/smk-namespace-team-a/);
  assert.doesNotMatch(broken.message, new RegExp(token));
});

test('Pod Identity with an explicit token: the agent is asked with the token, its credentials sign the calls', async (t) => {
  const name = uniquePrefix('podid');
  await createSecret(name, 'pod');
  const seen: (string | undefined)[] = [];
  const agent = createServer((request, response) => {
    seen.push(request.headers.authorization);
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        AccessKeyId: 'ASIAPODIDENTITY',
        SecretAccessKey: 'secret',
        Token: 'session',
        Expiration: new Date(Date.now() + 3600_000).toISOString(),
        AccountId: '123456789012',
      }),
    );
  });
  await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve));
  t.after(() => agent.close());
  const address = agent.address();
  assert.ok(address && typeof address === 'object');
  const { reader, proxy } = await wire(t);
  const identity: Identity = {
    kind: 'podIdentity',
    subject: 'team-a/app',
    endpoint: `http://127.0.0.1:${address.port}/v1/credentials`,
    token: async () => 'pod-sa-token',
  };
  expectValue((await reader(identity).read([sm(name)]))[0]);
  assert.deepEqual(seen, ['pod-sa-token']);
  assert.deepEqual(proxy.countsByAccessKey(), { ASIAPODIDENTITY: 1 });
});

test('AWS_ENDPOINT_URL is honoured: a factory without an endpoint reaches moto with the default chain', async (t) => {
  assert.equal(process.env.AWS_ENDPOINT_URL?.replace(/\/+$/, ''), moto.endpoint);
  const name = uniquePrefix('endpoint');
  await createSecret(name, 'through the env');
  const clients = new AwsClients();
  t.after(() => clients.destroy());
  const secrets = createSecretReader({ kind: 'default' }, { cache: new SecretCache(), clients });
  assert.equal(text(expectValue((await secrets.read([sm(name)]))[0]).bytes), 'through the env');
});
