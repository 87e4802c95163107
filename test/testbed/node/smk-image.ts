/**
 * THE SEAM for the smk image. The node bed imports whatever archive this returns and the chart is
 * installed with its repository and tag (SMK_NODE_HELM_ARGS). Today it runs smk-image.sh, a
 * stand-in built the quick way from dist/; the real offline image build (`npm run image`) replaces
 * the body of resolveSmkImage and nothing else.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./smk-image.sh', import.meta.url));

export interface SmkImage {
  /** A docker-archive or OCI archive that `ctr images import` takes. */
  readonly archive: string;
  readonly repository: string;
  readonly tag: string;
}

export async function resolveSmkImage(): Promise<SmkImage> {
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [script], { maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(
      `the smk image could not be built (${script}): ${stderr.trim().split('\n').slice(-5).join('\n')}`,
      {
        cause: error,
      },
    );
  }
  const [archive, repository, tag] = (stdout.trim().split('\n').at(-1) ?? '').split(' ');
  if (!archive || !repository || !tag) throw new Error(`${script} printed no "ARCHIVE REPOSITORY TAG" line`);
  return { archive, repository, tag };
}
