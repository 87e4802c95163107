/**
 * `npm run build`: one bundled entry point for every role (dist/smk.mjs, the package's `bin`),
 * and dist/expression-worker.mjs, the thread that runs JMESPath expressions (when enabled) and the
 * controller's templates.
 * Code splitting keeps each command's start cheap: `smk fetch` loads the AWS and core chunks,
 * not the Kubernetes client or gRPC. The entry is src/cli/smk.mjs, which checks the Node version
 * before it imports the program's chunk, so an old Node gets a message instead of a SyntaxError.
 */
import { chmod, cp, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { build, type Plugin } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;

/**
 * core/regions.ts asks the AWS SDK only for partition() (is this name a region?), but its module
 * is re-exported by @aws-sdk/core/client with all the SDK's client middleware: bundled as is, any
 * role checking a region name (the webhook, at admission) evaluates ~400 KB of SDK code and its
 * @smithy dependencies (~1.5 MiB of heap). regions.ts gets partition()'s own module instead: the
 * same module the SDK's clients use (one copy of the partition data), without the rest.
 */
const sdkPartitionOnly: Plugin = {
  name: 'sdk-partition-only',
  setup(build) {
    build.onResolve({ filter: /^@aws-sdk\/core\/client$/ }, async (args) => {
      if (!args.importer.endsWith('/src/core/regions.ts')) return undefined;
      const client = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir });
      if (client.errors.length > 0) return { errors: client.errors };
      return { path: join(dirname(client.path), 'util-endpoints/lib/aws/partition.js') };
    });
  },
};

/** Bundles every role into `outdir` (emptied first); returns the bundle's size in bytes. Tests bundle into a temp dir. */
export async function bundle(outdir: string): Promise<{ readonly files: number; readonly bytes: number }> {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await build({
    // The worker (JMESPath expressions, the controller's templates) is a thread of its own
    // (src/core/expressions.ts starts it from ./expression-worker.mjs beside the chunk that asks),
    // so it is an entry point of its own.
    entryPoints: {
      smk: `${root}src/cli/smk.mjs`,
      'expression-worker': `${root}src/core/expression-worker.ts`,
    },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    sourcemap: 'linked',
    // Smaller code parses faster at every start; names are kept (error classes report their name).
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    // Some CommonJS dependencies call require() for Node built-ins; give the ESM bundle one.
    plugins: [sdkPartitionOnly],
    banner: {
      js: "import { createRequire as __smkCreateRequire } from 'node:module'; const require = __smkCreateRequire(import.meta.url);",
    },
  });
  await chmod(`${outdir}/smk.mjs`, 0o755);
  await cp(`${root}src/csi/proto`, `${outdir}/proto`, { recursive: true }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  });
  const outputs = Object.values(result.metafile.outputs);
  return { files: outputs.length, bytes: outputs.reduce((sum, output) => sum + output.bytes, 0) };
}

if (import.meta.main) {
  const { files, bytes } = await bundle(`${root}dist`);
  process.stderr.write(`bundle: ${files} files, ${(bytes / 1024).toFixed(0)} KiB in dist/\n`);
}
