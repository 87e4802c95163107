/**
 * smk under a Node older than it needs: `npm run smk -- …` (the script's own command line) and the
 * bundle (dist/smk.mjs, what the image and `bin` run) print one line saying so, not a stack trace
 * from code the old Node cannot parse. Runs the machine's older Node (SMK_OLD_NODE, else
 * /usr/bin/node) when there is one; the bundle part needs `npm run build` first (npm test does it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { before, describe, test } from 'node:test';
import { requiredNodeMajor } from '../../src/cli/node-version.mjs';
import { type CommandResult, runCommand } from '../harness/run.ts';

const root = new URL('../../', import.meta.url).pathname;

/** An installed Node older than smk needs, with its version, if the machine has one. */
function findOldNode(): { path: string; version: string } | undefined {
  for (const path of [process.env.SMK_OLD_NODE, '/usr/bin/node', '/usr/local/bin/node']) {
    if (!path) continue;
    try {
      const version = execFileSync(path, ['--version'], { encoding: 'utf8', env: {} }).trim();
      if (Number.parseInt(version.slice(1), 10) < requiredNodeMajor) return { path, version };
    } catch {
      // Not there.
    }
  }
  return undefined;
}

const oldNode = findOldNode();

/**
 * The old Node's environment: this one's, less NODE_OPTIONS (the test run's --import of a .ts
 * capture hook, which an old Node cannot load; the process prints one line and reads no secret).
 */
function oldNodeEnv(): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  return { ...env, PATH: `${dirname(oldNode?.path ?? '')}:${env.PATH ?? ''}` };
}

function assertRefusedPolitely(result: CommandResult, version: string): void {
  assert.equal(result.code, 1);
  assert.equal(result.stderr, `smk needs Node ${requiredNodeMajor} or later (found ${version})\n`);
  assert.equal(result.stdout, '');
}

describe(`under Node < ${requiredNodeMajor}`, {
  skip: oldNode ? false : 'no older Node on this machine',
}, () => {
  test('`npm run smk -- version` (the script as package.json has it) says which Node it needs', async () => {
    const manifest = JSON.parse(await readFile(`${root}package.json`, 'utf8')) as {
      scripts: Record<string, string>;
    };
    const script = manifest.scripts.smk;
    assert.ok(script?.startsWith('node '), `scripts.smk runs node: ${script}`);
    // What npm does: the script's command line through a shell, with the old node first on PATH.
    const result = await runCommand('sh', ['-c', `cd "${root}" && ${script} version`], { env: oldNodeEnv() });
    assertRefusedPolitely(result, oldNode?.version ?? '');
  });

  describe('the bundle', () => {
    before(async () => {
      await access(`${root}dist/smk.mjs`).catch(() => {
        throw new Error('dist/smk.mjs is missing: run `npm run build` (npm test does) before this test');
      });
    });

    test('dist/smk.mjs says which Node it needs, for any command', async () => {
      for (const args of [['version'], ['controller', '--help'], ['no-such-command']]) {
        const result = await runCommand(oldNode?.path ?? 'node', [`${root}dist/smk.mjs`, ...args], {
          env: oldNodeEnv(),
        });
        assertRefusedPolitely(result, oldNode?.version ?? '');
      }
    });
  });
});

test('under this Node, the same entry points run', async () => {
  for (const entry of [`${root}dist/smk.mjs`, `${root}src/cli/smk.mjs`]) {
    const result = await runCommand(process.execPath, [entry, 'version']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^smk \\d+\\.\\d+\\.\\d+ \\(node ${process.versions.node}\\)`));
  }
});
