import assert from 'node:assert/strict';
import { createServer, type RequestListener } from 'node:http';
import { test } from 'node:test';
import { AccessDeniedError, TransientError } from '../core/errors.ts';
import { cachedCredentials, fetchPodIdentityCredentials, identityKey, sessionNameFor } from './identity.ts';

test('identity keys name the principal and never carry a token or secret key', () => {
  const token = async (): Promise<string> => 'tok';
  assert.equal(identityKey({ kind: 'default' }), 'default');
  assert.equal(identityKey({ kind: 'static', accessKeyId: 'AKID', secretAccessKey: 'shh' }), 'static:AKID');
  assert.equal(
    identityKey({
      kind: 'webIdentity',
      roleArn: 'arn:aws:iam::1:role/r',
      subject: 'ns/sa',
      sessionName: 'ns-sa',
      token,
    }),
    'webIdentity:arn:aws:iam::1:role/r:ns/sa',
  );
  assert.notEqual(
    identityKey({ kind: 'podIdentity', subject: 'a/app', token }),
    identityKey({ kind: 'podIdentity', subject: 'b/app', token }),
  );
});

test('credentials are cached until the margin before expiry, fetched once for concurrent callers', async () => {
  let now = 0;
  let fetches = 0;
  const provider = cachedCredentials(
    async () => {
      fetches += 1;
      return { accessKeyId: `K${fetches}`, secretAccessKey: 's', expiration: new Date(now + 3600_000) };
    },
    10 * 60_000,
    () => now,
  );
  const [a, b] = await Promise.all([provider(), provider()]);
  assert.equal(fetches, 1);
  assert.equal(a, b);
  // Reported 5 min earlier than real, so the SDK's own 5-minute window refreshes at our 10-minute margin.
  assert.equal(a.expiration?.getTime(), 3600_000 - 5 * 60_000);
  now = 3600_000 - 10 * 60_000 - 1;
  assert.equal((await provider()).accessKeyId, 'K1');
  now += 2;
  assert.equal((await provider()).accessKeyId, 'K2');
});

test('a failed fetch is not cached', async () => {
  let fail = true;
  const provider = cachedCredentials(async () => {
    if (fail) throw new Error('down');
    return { accessKeyId: 'K', secretAccessKey: 's' };
  });
  await assert.rejects(provider(), /down/);
  fail = false;
  assert.equal((await provider()).accessKeyId, 'K');
});

async function agent(t: { after: (fn: () => void) => void }, handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return `http://127.0.0.1:${address.port}/v1/credentials`;
}

test('Pod Identity agent answers map to credentials or sentinel errors without the token', async (t) => {
  const endpoint = await agent(t, (request, response) => {
    const token = request.headers.authorization;
    if (token === 'good') {
      response.end(
        JSON.stringify({
          AccessKeyId: 'ASIA1',
          SecretAccessKey: 's',
          Token: 'session',
          Expiration: '2030-01-01T00:00:00Z',
        }),
      );
    } else if (token === 'garbled') {
      response.end('<html>');
    } else if (token === 'broken') {
      response.writeHead(500).end();
    } else {
      response.writeHead(401).end();
    }
  });
  const good = await fetchPodIdentityCredentials(endpoint, 'good', 1_000);
  assert.equal(good.accessKeyId, 'ASIA1');
  assert.equal(good.sessionToken, 'session');
  assert.equal(good.expiration?.toISOString(), '2030-01-01T00:00:00.000Z');
  const cases = [
    ['refused-token-value', AccessDeniedError],
    ['broken', TransientError],
    ['garbled', TransientError],
  ] as const;
  for (const [token, kind] of cases) {
    const error = await fetchPodIdentityCredentials(endpoint, token, 1_000).catch(
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof kind, token);
    assert.doesNotMatch(error.message, new RegExp(token));
  }
  const unreachable = await fetchPodIdentityCredentials('http://127.0.0.1:1/', 'x', 1_000).catch(
    (e: unknown) => e,
  );
  assert.ok(unreachable instanceof TransientError);
});

test('session names: smk.<namespace>.<account> within 64, long ones unique by a hash and legal for STS', () => {
  assert.equal(sessionNameFor('team-a', 'app'), 'smk.team-a.app');
  const long = 'x'.repeat(200);
  const first = sessionNameFor('ns', `${long}a`);
  assert.equal(first.length, 64);
  assert.match(first, /^smk\.ns\.x+-[0-9a-f]{16}$/);
  assert.notEqual(first, sessionNameFor('ns', `${long}b`));
  assert.notEqual(
    sessionNameFor('n'.repeat(63), 's'.repeat(63)),
    sessionNameFor('n'.repeat(63), `${'s'.repeat(62)}t`),
  );
});
