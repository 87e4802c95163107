/**
 * `npm run build`: one bundled entry point for every role (dist/smk.mjs, the package's `bin`),
 * and dist/expression-worker.mjs, the thread that runs JMESPath expressions when they are enabled.
 * Code splitting keeps each command's start cheap: `smk fetch` loads the AWS and core chunks,
 * not the Kubernetes client or gRPC.
 */
import { chmod, cp, mkdir, rm } from 'node:fs/promises';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const outdir = `${root}dist`;

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
const result = await build({
  // The JMESPath expression worker is a thread of its own (src/core/expressions.ts starts it from
  // ./expression-worker.mjs beside the chunk that asks), so it is an entry point of its own.
  entryPoints: {
    smk: `${root}src/cli/main.ts`,
    'expression-worker': `${root}src/core/expression-worker.ts`,
  },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  // Smaller code parses faster at every start; names are kept (error classes report their name).
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  // Some CommonJS dependencies call require() for Node built-ins; give the ESM bundle one.
  banner: {
    js: "import { createRequire as __smkCreateRequire } from 'node:module'; const require = __smkCreateRequire(import.meta.url);",
  },
});
await chmod(`${outdir}/smk.mjs`, 0o755);
await cp(`${root}src/csi/proto`, `${outdir}/proto`, { recursive: true }).catch((error: unknown) => {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
process.stderr.write(
  `bundle: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KiB in dist/\n`,
);
