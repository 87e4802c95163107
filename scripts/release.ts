/**
 * `npm run release`: everything a user installs, under the one version package.json names, in
 * dist/release/<version>/:
 *   smk-<version>.tgz                 the Helm chart (`helm package deploy/helm/smk`)
 *   smk-<version>-image.oci.tar       the image archive (`npm run image`, when this checkout has it)
 *   smk-<version>.sbom.cdx.json       CycloneDX SBOM of the npm dependencies the bundle is built
 *                                     from (@cyclonedx/cyclonedx-npm, from package-lock.json)
 *   SHA256SUMS                        `sha256sum -c SHA256SUMS` checks the others
 * Refused before anything is built when package.json, Chart.yaml (version, appVersion),
 * src/core/version.ts or the Dockerfile disagree; each artefact is checked to carry the version too.
 *   npm run release [-- --out DIR]
 * Tools: helm (SMK_HELM, else on PATH, else built by test/tools/build-helm.sh), cyclonedx-npm
 * (CYCLONEDX_NPM, else node_modules/.bin/cyclonedx-npm).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { agreedVersion, versionSources } from './release/versions.ts';

const execFileAsync = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
/** The image's name in the registry; the chart's default image.repository says the same. */
const imageRepository = 'ghcr.io/smk-dev/smk';

const { values } = parseArgs({
  options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
});
if (values.help) {
  process.stdout.write('usage: npm run release [-- --out DIR]   (default DIR: dist/release/<version>)\n');
  process.exit(0);
}

const log = (line: string): boolean => process.stderr.write(`release: ${line}\n`);

/** Runs a tool with its output passed through (builds take a while; a person wants to see them move). */
function runVisible(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const candidate = join(dir, name);
    if (
      await access(candidate).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

async function helm(): Promise<string> {
  if (process.env.SMK_HELM) return process.env.SMK_HELM;
  const found = await onPath('helm');
  if (found) return found;
  log('no helm on PATH: building it with test/tools/build-helm.sh (cached after the first time)');
  const { stdout } = await execFileAsync('bash', [join(root, 'test/tools/build-helm.sh')], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const path = stdout.trim().split('\n').at(-1);
  if (!path) throw new Error('test/tools/build-helm.sh printed no path');
  return path;
}

async function cyclonedxNpm(): Promise<string> {
  const path = process.env.CYCLONEDX_NPM ?? join(root, 'node_modules/.bin/cyclonedx-npm');
  if (
    !(await access(path).then(
      () => true,
      () => false,
    ))
  ) {
    throw new Error(
      `no ${path}: the SBOM is made by @cyclonedx/cyclonedx-npm, a devDependency (npm ci installs it; CYCLONEDX_NPM names another copy)`,
    );
  }
  return path;
}

/** `npm run image` writes build/image/smk.json describing the archive (see scripts/image.ts). */
interface ImageDescription {
  readonly archive: string;
  readonly refs: readonly string[];
}

async function buildImage(
  version: string,
): Promise<{ archive: string; refs: readonly string[] } | undefined> {
  const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
  };
  if (manifest.scripts?.image === undefined) return undefined;
  log('building the image (npm run image)');
  await runVisible('npm', ['run', '-s', 'image']);
  const description = JSON.parse(
    await readFile(join(root, 'build/image/smk.json'), 'utf8'),
  ) as ImageDescription;
  const expected = `${imageRepository}:${version}`;
  if (!description.refs.includes(expected)) {
    throw new Error(`the image is tagged ${description.refs.join(', ')}, not ${expected}`);
  }
  const archive = isAbsolute(description.archive) ? description.archive : join(root, description.archive);
  return { archive, refs: description.refs };
}

async function packageChart(version: string, out: string): Promise<string> {
  await runVisible(await helm(), ['package', join(root, 'deploy/helm/smk'), '--destination', out]);
  const file = `smk-${version}.tgz`;
  await access(join(out, file)).catch(() => {
    throw new Error(`helm package did not write ${file} (Chart.yaml's version is not ${version}?)`);
  });
  return file;
}

async function writeSbom(version: string, out: string): Promise<string> {
  const file = `smk-${version}.sbom.cdx.json`;
  // The lock file, not node_modules: the release describes exactly what `npm ci` installs, and
  // production dependencies only — the bundle and the image carry nothing else from npm.
  await runVisible(await cyclonedxNpm(), [
    '--package-lock-only',
    '--omit',
    'dev',
    '--spec-version',
    '1.6',
    '--output-format',
    'JSON',
    '--output-reproducible',
    '--validate',
    '--mc-type',
    'application',
    '--output-file',
    join(out, file),
    join(root, 'package.json'),
  ]);
  const sbom = JSON.parse(await readFile(join(out, file), 'utf8')) as {
    metadata?: { component?: { name?: string; version?: string } };
  };
  if (sbom.metadata?.component?.version !== version) {
    throw new Error(`the SBOM describes version ${sbom.metadata?.component?.version}, not ${version}`);
  }
  return file;
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function release(): Promise<void> {
  const version = agreedVersion(await versionSources(root));
  const out = values.out ?? join(root, 'dist/release', version);
  log(`smk ${version} → ${out}`);

  // The image first: `npm run image` may re-bundle, and the bundler empties dist/ before it writes.
  const image = await buildImage(version);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });

  const files: string[] = [];
  files.push(await packageChart(version, out));
  if (image) {
    const file = `smk-${version}-image.oci.tar`;
    await copyFile(image.archive, join(out, file));
    files.push(file);
  } else {
    log('image archive: NOT BUILT — this checkout has no `npm run image`; the release holds no image');
  }
  files.push(await writeSbom(version, out));

  const sums = await Promise.all(files.map(async (file) => ({ file, hash: await sha256(join(out, file)) })));
  await writeFile(join(out, 'SHA256SUMS'), sums.map(({ file, hash }) => `${hash}  ${file}\n`).join(''));

  const rows = await Promise.all(
    sums.map(
      async ({ file, hash }) =>
        `  ${file.padEnd(34)} ${String((await stat(join(out, file))).size).padStart(11)} B  sha256:${hash.slice(0, 16)}…`,
    ),
  );
  process.stdout.write(
    [
      `smk ${version} release in ${out}`,
      ...rows,
      '  SHA256SUMS',
      ...(image
        ? [`  image refs: ${image.refs.join(', ')}`]
        : ['  image: not built (no `npm run image` in this checkout)']),
      '',
    ].join('\n'),
  );
  // Nothing but the listed files and the sums: a leftover from elsewhere would be shipped unchecked.
  const unexpected = (await readdir(out)).filter((name) => name !== 'SHA256SUMS' && !files.includes(name));
  if (unexpected.length > 0) throw new Error(`unexpected files in ${out}: ${unexpected.join(', ')}`);
}

try {
  await release();
} catch (error) {
  // A release problem is the release's to say (which file, which version), not a stack trace.
  process.stderr.write(`release: FAILED — ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
