/**
 * `npm run image`: the smk image without Docker (scripts/image/), as an OCI layout and one archive
 * that `ctr -n k8s.io images import` takes. Bundles first when dist/ is older than the sources.
 *   npm run image                                   build (cached layers are reused)
 *   npm run image -- --import-to /run/…/containerd.sock   then import into that containerd
 * SMK_CONTAINERD_ADDRESS set (the node bed exports it) imports there too.
 */
import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { buildImage } from './image/build.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

const { values } = parseArgs({
  options: { 'import-to': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  process.stdout.write('usage: npm run image [-- --import-to CONTAINERD_SOCKET]\n');
  process.exit(0);
}

async function newestSource(): Promise<number> {
  const files = [
    ...(await readdir(join(root, 'src'), { recursive: true })).map((file) => join(root, 'src', file)),
    join(root, 'package-lock.json'),
    join(root, 'scripts/build.ts'),
  ];
  const times = await Promise.all(files.map(async (file) => (await stat(file)).mtimeMs));
  return Math.max(...times);
}

const bundled = await stat(join(root, 'dist/smk.mjs')).then(
  (info) => info.mtimeMs,
  () => 0,
);
if (bundled < (await newestSource())) {
  process.stderr.write('image: dist/ is older than src/; bundling first\n');
  await run(process.execPath, [join(root, 'scripts/build.ts')], { cwd: root });
}

const image = await buildImage({ root });
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const lines = [
  `image: ${image.refs.join(', ')}`,
  `  archive  ${image.archive} (${mb(image.bytes)}; ${mb(image.unpackedBytes)} unpacked)`,
  `  layout   ${image.layout}`,
  `  digest   ${image.digest}`,
  ...image.layers.map(
    (layer, index) =>
      `  layer ${index + 1}  ${layer.digest.slice(0, 19)}… ${mb(layer.size)}${layer.cached ? ' (cached)' : ''}`,
  ),
  `  built in ${image.seconds.toFixed(1)} s`,
];
process.stdout.write(`${lines.join('\n')}\n`);

const address = values['import-to'] ?? process.env.SMK_CONTAINERD_ADDRESS;
if (address) {
  const started = performance.now();
  await run('ctr', ['--address', address, '-n', 'k8s.io', 'images', 'import', image.archive]);
  process.stdout.write(
    `  imported into ${address} (namespace k8s.io) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
}
