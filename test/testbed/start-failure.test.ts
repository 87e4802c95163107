/**
 * A bed that cannot start fails with the reason and the processes' logs, and leaves none of its
 * processes behind. Stand-in binaries make the failures happen on purpose, in a second.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestBed } from './index.ts';

async function fakeBinaries(apiserverScript: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'smk-testbed-fake-bin-'));
  const scripts: Record<string, string> = {
    etcd: `echo $$ > "${dir}/etcd.pid"\necho "etcd stand-in up"\nexec sleep 300\n`,
    'kube-apiserver': apiserverScript,
    'kube-controller-manager': 'exit 0\n',
  };
  for (const [name, body] of Object.entries(scripts)) {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}`);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs a start that must fail; returns its message after removing the temp dir it kept. */
async function failedStart(binDir: string, readyTimeoutMs = 10_000): Promise<string> {
  let message = '';
  await assert.rejects(startTestBed({ binDir, readyTimeoutMs, progress: () => {} }), (error: unknown) => {
    message = error instanceof Error ? error.message : String(error);
    return true;
  });
  const kept = /temp dir kept: (\S+)\)/.exec(message)?.[1];
  if (kept !== undefined) await rm(kept, { recursive: true, force: true });
  return message;
}

describe('startTestBed when the control plane cannot start', () => {
  const dirs: string[] = [];
  let crashing: string;
  let hanging: string;

  before(async () => {
    crashing = await fakeBinaries('echo "Error: unknown flag: --broken-on-purpose" >&2\nexit 1\n');
    hanging = await fakeBinaries('exec sleep 300\n');
    dirs.push(crashing, hanging);
  });

  after(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('names the process that exited, prints its log, and stops the others', async () => {
    const message = await failedStart(crashing);
    assert.match(message, /kube-apiserver exited \(exit code 1\)/);
    assert.match(message, /==> kube-apiserver .*\nError: unknown flag: --broken-on-purpose/);
    assert.match(message, /==> etcd .*\netcd stand-in up/);
    const etcdPid = Number(await readFile(join(crashing, 'etcd.pid'), 'utf8'));
    assert.equal(isAlive(etcdPid), false, 'the etcd it started is stopped');
  });

  it('gives up when /readyz never answers within the limit', async () => {
    const message = await failedStart(hanging, 1500);
    assert.match(message, /kube-apiserver \/readyz did not turn ready in time/);
  });

  it('says which binary is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'smk-testbed-no-bin-'));
    dirs.push(empty);
    await assert.rejects(
      startTestBed({ binDir: empty, progress: () => {} }),
      /test bed binary .*\/etcd is missing or not executable/,
    );
  });
});
