/**
 * `npm run release` run for real into a temp dir: the chart package, the SBOM, the image archive
 * when this checkout has `npm run image`, and SHA256SUMS — each read back here (the packaged
 * Chart.yaml, the SBOM's own metadata, the archive's index.json), so the test, not the script,
 * says the version is the same everywhere. Needs helm (built on first use, as for the chart tests)
 * and @cyclonedx/cyclonedx-npm (a devDependency; CYCLONEDX_NPM names another copy).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { agreedVersion, versionSources } from '../../scripts/release/versions.ts';
import { helm } from '../deploy/helm.ts';
import { type CommandResult, runCommand } from '../harness/run.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;

interface Manifest {
  version: string;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

interface CycloneDx {
  bomFormat: string;
  specVersion: string;
  metadata: { component: { name: string; version: string } };
  components: Array<{ group?: string; name: string; version: string; purl?: string }>;
}

describe('npm run release', () => {
  let out: string;
  let release: CommandResult;
  let manifest: Manifest;
  let version: string;

  before(
    async () => {
      manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest;
      version = manifest.version;
      out = await mkdtemp(join(tmpdir(), 'smk-release-'));
      // The same helm the chart tests use (built once, cached), so a machine without helm on PATH works.
      const env = { ...process.env, SMK_HELM: await helm() };
      release = await runCommand(process.execPath, [join(root, 'scripts/release.ts'), '--out', out], { env });
      assert.equal(release.code, 0, `${release.stdout}\n${release.stderr}`);
    },
    { timeout: 20 * 60_000 },
  );
  after(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  test('the files of the release, each under the version, and SHA256SUMS that checks them', async () => {
    const hasImage = manifest.scripts.image !== undefined;
    const expected = [
      `smk-${version}.tgz`,
      `smk-${version}.sbom.cdx.json`,
      ...(hasImage ? [`smk-${version}-image.oci.tar`] : []),
      'SHA256SUMS',
    ];
    assert.deepEqual((await readdir(out)).sort(), expected.sort());
    if (!hasImage)
      assert.match(release.stderr, /image archive: NOT BUILT — this checkout has no `npm run image`/);

    const sums = (await readFile(join(out, 'SHA256SUMS'), 'utf8')).trimEnd().split('\n');
    assert.equal(sums.length, expected.length - 1);
    for (const line of sums) {
      const [hash, file] = line.split('  ');
      assert.ok(hash && file, line);
      const actual = createHash('sha256')
        .update(await readFile(join(out, file)))
        .digest('hex');
      assert.equal(actual, hash, file);
    }
  });

  test('one version: package.json, the packaged Chart.yaml (version, appVersion), the SBOM, the image tag', async () => {
    const { stdout: chartText } = await run('tar', [
      '-xzOf',
      join(out, `smk-${version}.tgz`),
      'smk/Chart.yaml',
    ]);
    const chart = parseYaml(chartText) as { version: string; appVersion: string };
    assert.equal(chart.version, version);
    assert.equal(String(chart.appVersion), version);

    const sbom = JSON.parse(await readFile(join(out, `smk-${version}.sbom.cdx.json`), 'utf8')) as CycloneDx;
    assert.equal(sbom.bomFormat, 'CycloneDX');
    assert.equal(sbom.metadata.component.name, 'smk');
    assert.equal(sbom.metadata.component.version, version);

    if (manifest.scripts.image !== undefined) {
      const { stdout } = await run('tar', ['-xOf', join(out, `smk-${version}-image.oci.tar`), 'index.json'], {
        maxBuffer: 16 * 1024 * 1024,
      });
      const index = JSON.parse(stdout) as { manifests: Array<{ annotations?: Record<string, string> }> };
      const names = index.manifests.map((entry) => entry.annotations?.['io.containerd.image.name']);
      assert.ok(names.includes(`ghcr.io/smk-dev/smk:${version}`), `the image's names: ${names.join(', ')}`);
    }
  });

  test('the SBOM lists every runtime dependency at its locked version, and nothing only development needs', async () => {
    const sbom = JSON.parse(await readFile(join(out, `smk-${version}.sbom.cdx.json`), 'utf8')) as CycloneDx;
    assert.equal(sbom.specVersion, '1.6');
    const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; dev?: boolean }>;
    };
    const listed = new Set(
      sbom.components.map((component) =>
        component.group
          ? `${component.group}/${component.name}@${component.version}`
          : `${component.name}@${component.version}`,
      ),
    );
    for (const dependency of Object.keys(manifest.dependencies)) {
      const locked = lock.packages[`node_modules/${dependency}`]?.version;
      assert.ok(listed.has(`${dependency}@${locked}`), `${dependency}@${locked} in the SBOM`);
    }
    // npm marks what only the devDependencies pull in; none of it is in the bundle or the image.
    const devOnly = Object.entries(lock.packages)
      .filter(([path, entry]) => entry.dev === true && path.startsWith('node_modules/'))
      .map(
        ([path, entry]) =>
          `${path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${entry.version}`,
      );
    assert.ok(
      devOnly.some((entry) => entry.startsWith('esbuild@')),
      'the lock marks dev-only packages',
    );
    assert.deepEqual(
      devOnly.filter((entry) => listed.has(entry)),
      [],
    );
  });
});

describe('the release refuses versions that disagree', () => {
  test('every file that names the version agrees in this checkout', async () => {
    const sources = await versionSources(root);
    assert.deepEqual(
      sources.map((source) => source.where),
      [
        'package.json version',
        'deploy/helm/smk/Chart.yaml version',
        'deploy/helm/smk/Chart.yaml appVersion',
        'src/core/version.ts smkVersion',
        'Dockerfile ARG VERSION',
      ],
    );
    assert.equal(
      agreedVersion(sources),
      JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).version,
    );
  });

  test('one that differs is named with what it says', () => {
    assert.throws(
      () =>
        agreedVersion([
          { where: 'package.json version', version: '0.2.0' },
          { where: 'deploy/helm/smk/Chart.yaml version', version: '0.2.0' },
          { where: 'deploy/helm/smk/Chart.yaml appVersion', version: '0.1.0' },
          { where: 'Dockerfile ARG VERSION', version: undefined },
        ]),
      {
        message:
          'the version is not the same everywhere: package.json version says 0.2.0; deploy/helm/smk/Chart.yaml appVersion says 0.1.0; Dockerfile ARG VERSION says nothing',
      },
    );
  });
});
