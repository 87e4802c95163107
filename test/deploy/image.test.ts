/**
 * The image's file system without a Docker engine: the Dockerfile's layout (bundle in
 * /usr/local/lib/smk without source maps, shebang at the runtime's node, `smk` on PATH as a
 * symlink) rebuilt in a temp dir from dist/ and run with an environment holding nothing but PATH —
 * no node_modules, no repository, no /usr/bin/env. Needs `npm run build` first (npm test does it).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { access, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const dist = `${root}dist`;

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe('the image layout (Dockerfile) runs from the bundle alone', () => {
  let image: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    await access(`${dist}/smk.mjs`).catch(() => {
      throw new Error('dist/smk.mjs is missing: run `npm run build` (npm test does) before this test');
    });
    image = await mkdtemp(join(tmpdir(), 'smk-image-'));
    const lib = join(image, 'usr/local/lib/smk');
    const bin = join(image, 'usr/local/bin');
    await mkdir(bin, { recursive: true });
    await cp(dist, lib, { recursive: true, filter: (source) => !source.endsWith('.map') });
    // The Dockerfile points the shebang at /nodejs/bin/node; here, at this Node.
    const main = join(lib, 'smk.mjs');
    const text = await readFile(main, 'utf8');
    assert.ok(text.startsWith('#!'), 'the bundle starts with a shebang the Dockerfile rewrites');
    await writeFile(main, text.replace(/^#!.*/, `#!${process.execPath}`), { mode: 0o755 });
    await symlink('../lib/smk/smk.mjs', join(bin, 'smk'));
    env = { PATH: bin, HOME: image };
  });

  after(async () => {
    if (image) await rm(image, { recursive: true, force: true });
  });

  test('no source maps and no node_modules in the image; the CSI proto is there', async () => {
    const files = await walk(image);
    assert.ok(!files.some((file) => file.endsWith('.map')));
    assert.ok(!files.some((file) => file.includes('node_modules')));
    assert.ok(files.some((file) => file.endsWith('/proto/service.proto')));
  });

  test('`smk` from PATH (as the injected agent calls it) answers, from outside the repository', async () => {
    const { stdout } = await run('smk', ['version'], { env, cwd: image });
    assert.match(stdout, /^smk \d+\.\d+\.\d+/);
    const help = await run('smk', ['webhook', '--help'], { env, cwd: image });
    assert.match(help.stdout, /--tls-secret NAME/);
  });

  test('the CSI provider loads its proto, serves its socket and passes its own liveness probe', async () => {
    const sockets = join(image, 'providers');
    await mkdir(sockets);
    const provider = spawn('smk', ['csi-provider', `--provider-volume=${sockets}`, '--health-port=0'], {
      env: { ...env, AWS_REGION: 'us-east-1' },
      cwd: image,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const deadline = Date.now() + 15_000;
      let probed: { stdout: string } | undefined;
      while (!probed && Date.now() < deadline) {
        probed = await run('smk', ['csi-provider', '--probe', `--provider-volume=${sockets}`], {
          env,
          cwd: image,
        }).catch(() => undefined);
        if (!probed) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(probed, 'the probe answered');
      assert.match(probed.stdout, /smk-csi-provider/);
    } finally {
      const exited = new Promise((resolve) => provider.once('exit', resolve));
      provider.kill('SIGTERM');
      await exited;
    }
  });
});
