/**
 * Role chaining in the processes that read with their own default credentials: the injected
 * agent (SMK_ASSUME_ROLE_* from the pod's smk.dev/assume-role-* annotations) and `smk fetch`
 * (--assume-role-*). Each is a separate process with the real SDK against moto through the
 * counting proxy; the process's own keys stand for the pod's IRSA credentials. moto does not
 * evaluate trust policies (moto.md #4); it does keep one backend per account, so the secret is
 * found only through the chained role.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { createSecretInOtherAccount, otherAccountRole } from '../harness/other-account.ts';
import { runCommand } from '../harness/run.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const ownKey = 'AKIDCHAINSOURCE01';

describe('role chaining: smk agent and smk fetch', () => {
  const moto = connectMoto();
  const name = `chain-cli-${randomUUID().slice(0, 8)}`;
  const value = `cross-account-${randomUUID()}`;
  let proxy: AwsProxy;
  let work = '';

  const run = (args: readonly string[], env: Record<string, string>, input?: string) =>
    runCommand(process.execPath, [cli, ...args], {
      ...(input === undefined ? {} : { input }),
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: proxy.endpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: ownKey,
        AWS_SECRET_ACCESS_KEY: 'not-a-real-secret-key',
        ...env,
      },
    });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'smk-chain-'));
    proxy = await startAwsProxy({ target: moto.endpoint });
    await createSecretInOtherAccount(moto.endpoint, name, value);
  });
  after(async () => {
    await proxy.stop();
    await rm(work, { recursive: true, force: true });
  });

  test("smk agent init: SMK_ASSUME_ROLE_* chains from the pod's own credentials", async () => {
    proxy.resetCounts();
    const dir = join(work, 'agent');
    const result = await run(['agent', 'init'], {
      SMK_OBJECTS: JSON.stringify([{ objectName: name, objectType: 'secretsmanager', objectAlias: 'db' }]),
      SMK_DIR: dir,
      SMK_ASSUME_ROLE_ARN: otherAccountRole,
      SMK_ASSUME_ROLE_EXTERNAL_ID: 'agent-ext-1',
      SMK_ASSUME_ROLE_SESSION_TAGS: 'team=shop',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await readFile(join(dir, 'db'), 'utf8'), value);
    assert.equal(proxy.count({ api: 'AssumeRole', accessKeyId: ownKey }), 1);
    assert.equal(
      proxy.count({ service: 'secretsmanager', accessKeyId: ownKey }),
      0,
      'reads use the chained role',
    );
    assert.doesNotMatch(result.stderr, new RegExp(value));
  });

  test('smk agent init: without the chain the pod reads its own account, where the secret is not', async () => {
    const dir = join(work, 'agent-own');
    const result = await run(['agent', 'init'], {
      SMK_OBJECTS: JSON.stringify([{ objectName: name, objectType: 'secretsmanager' }]),
      SMK_DIR: dir,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /not found/);
  });

  test('smk fetch --assume-role-arn reads the other account; a bad duration is refused naming the flag', async () => {
    proxy.resetCounts();
    const dir = join(work, 'fetch');
    const objects = JSON.stringify([{ objectName: name, objectType: 'secretsmanager', objectAlias: 'db' }]);
    const fetched = await run(
      [
        'fetch',
        '--objects',
        '-',
        '--dir',
        dir,
        '--assume-role-arn',
        otherAccountRole,
        '--assume-role-external-id',
        'fetch-ext-1',
      ],
      {},
      objects,
    );
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(await readFile(join(dir, 'db'), 'utf8'), value);
    assert.equal(proxy.count({ api: 'AssumeRole', accessKeyId: ownKey }), 1);

    const bad = join(work, 'fetch-bad');
    const refused = await run(
      [
        'fetch',
        '--objects',
        '-',
        '--dir',
        bad,
        '--assume-role-arn',
        otherAccountRole,
        '--assume-role-duration-seconds',
        '7200',
      ],
      {},
      objects,
    );
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /--assume-role-duration-seconds: expected at most 3600/);
    await assert.rejects(readdir(bad), { code: 'ENOENT' });
  });
});
