/** TokenRequest on the bed returns tokens signed by the API server's service-account issuer. */
import assert from 'node:assert/strict';
import { createPublicKey, type JsonWebKey, verify } from 'node:crypto';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { z } from 'zod';
import { connectTestBed, serviceAccountIssuer, type TestBed } from '../testbed/index.ts';
import { eventually } from './wait.ts';

const claimsSchema = z.object({
  aud: z.array(z.string()),
  sub: z.string(),
  iss: z.string(),
  exp: z.number(),
  iat: z.number(),
  'kubernetes.io': z.object({
    namespace: z.string(),
    serviceaccount: z.object({ name: z.string(), uid: z.string() }),
  }),
});
const headerSchema = z.object({ alg: z.string(), kid: z.string() });
const jwksSchema = z.object({ keys: z.array(z.looseObject({ kid: z.string(), kty: z.string() })) });

function decodePart(part: string | undefined): unknown {
  return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
}

async function getJson(bed: TestBed, path: string, token: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${bed.serverUrl}${path}`,
      { ca: bed.caPem, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          if (res.statusCode === 200) resolve(JSON.parse(body));
          else reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('service account tokens', () => {
  let bed: TestBed;
  let namespace: string;

  before(async () => {
    bed = await connectTestBed();
    namespace = await bed.newNamespace('token');
    await bed.kubeConfig
      .makeApiClient(CoreV1Api)
      .createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'app' } } });
  });

  after(async () => {
    await bed.stop();
  });

  it('issues a token with the requested audience and the account as subject', async () => {
    const token = await bed.serviceAccountToken(namespace, 'app', 'sts.amazonaws.com');
    const [header, payload, signature] = token.split('.');
    assert.ok(signature, 'a JWS has three parts');
    assert.equal(headerSchema.parse(decodePart(header)).alg, 'ES256');
    const claims = claimsSchema.parse(decodePart(payload));
    assert.deepEqual(claims.aud, ['sts.amazonaws.com']);
    assert.equal(claims.sub, `system:serviceaccount:${namespace}:app`);
    assert.equal(claims.iss, serviceAccountIssuer);
    assert.equal(claims['kubernetes.io'].namespace, namespace);
    assert.equal(claims['kubernetes.io'].serviceaccount.name, 'app');
    assert.ok(claims.exp > Date.now() / 1000 + 600, 'expires in the future');
  });

  it('signs it with a key published at the issuer discovery endpoint', async () => {
    const token = await bed.serviceAccountToken(namespace, 'app', 'sts.amazonaws.com');
    // Discovery is open to every ServiceAccount: read it as the account itself (API-server audience).
    const apiToken = await bed.serviceAccountToken(namespace, 'app');
    const discovery = z
      .object({ issuer: z.string(), jwks_uri: z.string() })
      .parse(await getJson(bed, '/.well-known/openid-configuration', apiToken));
    assert.equal(discovery.issuer, serviceAccountIssuer);
    const jwks = jwksSchema.parse(await getJson(bed, '/openid/v1/jwks', apiToken));

    const [header, payload, signature] = token.split('.');
    const { kid } = headerSchema.parse(decodePart(header));
    const jwk = jwks.keys.find((key) => key.kid === kid);
    assert.ok(jwk, `key ${kid} is published`);
    const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    const signed = Buffer.from(`${header}.${payload}`);
    const valid = (sig: string | undefined): boolean =>
      verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig ?? '', 'base64url'));
    assert.equal(valid(signature), true);
    const tampered = `${signature?.[0] === 'A' ? 'B' : 'A'}${signature?.slice(1)}`;
    assert.equal(valid(tampered), false);
  });

  it('is accepted by TokenReview for its audience only', async () => {
    const token = await bed.serviceAccountToken(namespace, 'app', 'sts.amazonaws.com');
    const auth = bed.kubeConfig.makeApiClient(AuthenticationV1Api);
    const review = await auth.createTokenReview({
      body: { spec: { token, audiences: ['sts.amazonaws.com'] } },
    });
    assert.equal(review.status?.authenticated, true);
    assert.equal(review.status?.user?.username, `system:serviceaccount:${namespace}:app`);
    assert.ok(review.status?.user?.groups?.includes(`system:serviceaccounts:${namespace}`));
    const wrong = await auth.createTokenReview({
      body: { spec: { token, audiences: ['another-audience'] } },
    });
    // `authenticated: false` is omitted from the reply, so check for the absence of an identity.
    assert.notEqual(wrong.status?.authenticated, true);
    assert.equal(wrong.status?.user?.username, undefined);
    assert.match(wrong.status?.error ?? '', /audience/);
  });

  it('has the token controller fill a service-account-token Secret', async () => {
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'app-token', annotations: { 'kubernetes.io/service-account.name': 'app' } },
        type: 'kubernetes.io/service-account-token',
      },
    });
    const secret = await eventually('the token controller to fill the Secret', async () => {
      const current = await core.readNamespacedSecret({ namespace, name: 'app-token' });
      return current.data?.token === undefined ? undefined : current;
    });
    const token = Buffer.from(secret.data?.token ?? '', 'base64').toString('utf8');
    const claims = z.object({ sub: z.string() }).parse(decodePart(token.split('.')[1]));
    assert.equal(claims.sub, `system:serviceaccount:${namespace}:app`);
    assert.equal(
      Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64')
        .toString('utf8')
        .trim(),
      bed.caPem.trim(),
    );
  });
});
