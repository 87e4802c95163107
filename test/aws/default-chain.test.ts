import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startAwsProxy } from '../harness/aws-proxy.ts';
import { createSecret, moto, uniquePrefix } from './support.ts';

const run = promisify(execFile);
const child = new URL('./fixtures/read-default-chain.ts', import.meta.url).pathname;

/** The environment of a pod: no keys, only what IRSA or Pod Identity put there. */
function podEnv(extra: Record<string, string>, endpoint: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, AWS_REGION: 'us-east-1' };
  return { ...env, AWS_ENDPOINT_URL: endpoint, AWS_EC2_METADATA_DISABLED: 'true', ...extra };
}

test('default chain, IRSA: the projected token file is exchanged with AssumeRoleWithWebIdentity', async (t) => {
  const proxy = await startAwsProxy({ target: moto.endpoint });
  t.after(() => proxy.stop());
  const name = uniquePrefix('irsa');
  await createSecret(name, 'irsa value');
  const dir = await mkdtemp(join(tmpdir(), 'smk-irsa-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'projected-service-account-token');
  const { stdout } = await run(process.execPath, [child, name], {
    env: podEnv(
      { AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/irsa' },
      proxy.endpoint,
    ),
  });
  assert.deepEqual(JSON.parse(stdout), { ok: true, bytes: 'irsa value'.length });
  assert.equal(proxy.count({ api: 'AssumeRoleWithWebIdentity' }), 1);
  const read = proxy.calls().find((call) => call.api === 'GetSecretValue');
  assert.match(read?.accessKeyId ?? '', /^ASIA/);
});

test('default chain, EKS Pod Identity: the container credentials endpoint is asked with the token file', async (t) => {
  const proxy = await startAwsProxy({ target: moto.endpoint });
  t.after(() => proxy.stop());
  const name = uniquePrefix('podchain');
  await createSecret(name, 'pod value');
  const seen: (string | undefined)[] = [];
  const agent = createServer((request, response) => {
    seen.push(request.headers.authorization);
    response.setHeader('content-type', 'application/json');
    response.end(
      JSON.stringify({
        AccessKeyId: 'ASIAPODCHAIN',
        SecretAccessKey: 'secret',
        Token: 'session',
        Expiration: new Date(Date.now() + 3600_000).toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve));
  t.after(() => agent.close());
  const address = agent.address();
  assert.ok(address && typeof address === 'object');
  const dir = await mkdtemp(join(tmpdir(), 'smk-podid-'));
  const tokenFile = join(dir, 'eks-pod-identity-token');
  await writeFile(tokenFile, 'pod-identity-token');
  const { stdout } = await run(process.execPath, [child, name], {
    env: podEnv(
      {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${address.port}/v1/credentials`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
      },
      proxy.endpoint,
    ),
  });
  assert.deepEqual(JSON.parse(stdout), { ok: true, bytes: 'pod value'.length });
  assert.deepEqual(seen, ['pod-identity-token']);
  assert.deepEqual(proxy.countsByAccessKey(), { ASIAPODCHAIN: 1 });
});
