/**
 * The bundle the image ships (dist/smk.mjs), built from this checkout into a temp dir once per
 * test process: memory limits are about the image's process, and running the TypeScript
 * sources through Node's type stripping costs some 75 MB of RSS more.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundle } from '../../scripts/build.ts';

let built: Promise<string> | undefined;

/** Path of the bundled `smk.mjs`. */
export function bundledSmk(): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smk-bundle-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await bundle(dir);
    return join(dir, 'smk.mjs');
  })();
  return built;
}
