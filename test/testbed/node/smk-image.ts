/**
 * The smk image the node bed imports: `npm run image` (scripts/image.ts: the offline OCI build,
 * bundling first when dist/ is older than src/), so pods run exactly what a release ships. The
 * chart is installed with its local ref (SMK_NODE_HELM_ARGS) and pullPolicy Never.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { localRepository, localTag } from '../../../scripts/image/build.ts';

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).pathname;

export interface SmkImage {
  /** An OCI archive that `ctr images import` takes. */
  readonly archive: string;
  readonly repository: string;
  readonly tag: string;
}

const summarySchema = z.object({ archive: z.string().min(1) });

export async function resolveSmkImage(): Promise<SmkImage> {
  try {
    await run(process.execPath, [join(root, 'scripts/image.ts')], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(
      `the smk image could not be built (npm run image): ${stderr.trim().split('\n').slice(-5).join('\n')}`,
      { cause: error },
    );
  }
  const summary = summarySchema.parse(JSON.parse(await readFile(join(root, 'build/image/smk.json'), 'utf8')));
  return { archive: summary.archive, repository: localRepository, tag: localTag };
}
