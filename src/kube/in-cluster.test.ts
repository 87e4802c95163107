import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isSmkError } from '../core/errors.ts';
import { inClusterEndpoint } from './in-cluster.ts';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function accountDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'smk-in-cluster-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

describe('inClusterEndpoint', () => {
  test('the kubernetes Service URL, brackets for IPv6', async () => {
    const dir = await accountDir({ 'ca.crt': '', token: 't' });
    assert.equal(
      (await inClusterEndpoint({ host: '10.0.0.1', port: 443 }, dir)).server,
      'https://10.0.0.1:443',
    );
    assert.equal(
      (await inClusterEndpoint({ host: 'fd00::1', port: 6443 }, dir)).server,
      'https://[fd00::1]:6443',
    );
  });

  test('a rotated token (the kubelet swaps the file) is sent from the next connection on', async () => {
    const dir = await accountDir({ 'ca.crt': '', token: 'first-token\n' });
    const endpoint = await inClusterEndpoint({ host: '10.0.0.1', port: 443 }, dir);
    assert.equal((await endpoint.connection()).headers.authorization, 'Bearer first-token');
    await writeFile(join(dir, 'token.new'), 'second-token');
    await rename(join(dir, 'token.new'), join(dir, 'token'));
    assert.equal((await endpoint.connection()).headers.authorization, 'Bearer second-token');
  });

  test('a missing CA or token file is named, without its content', async () => {
    const noCa = await accountDir({ token: 't' });
    await assert.rejects(inClusterEndpoint({ host: '10.0.0.1', port: 443 }, noCa), (error: unknown) => {
      assert.ok(isSmkError(error));
      assert.match(error.message, /ca\.crt: ENOENT/);
      return true;
    });
    const empty = await inClusterEndpoint(
      { host: '10.0.0.1', port: 443 },
      await accountDir({ 'ca.crt': '', token: '' }),
    );
    await assert.rejects(empty.connection(), /token is empty/);
  });
});
