/**
 * Builds the smk image without Docker: config from the Dockerfile's final stage over what its base
 * gives (scripts/image/layout.ts), two layers (runtime, app), an OCI layout under build/image/oci
 * and the same layout as one archive, build/image/smk.oci.tar, named with every ref.
 */
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { type DockerfileImage, parseDockerfile } from './dockerfile.ts';
import { appLayer, type BaseImage, baseImage, runtimeLayer } from './layout.ts';
import { type Layer, mediaTypes, OciLayout, packLayout } from './oci.ts';

const run = promisify(execFile);

/** The local tag: with pullPolicy Never, a kubelet uses the imported image and never asks a registry. */
export const localRepository = 'smk.local/smk';
export const localTag = 'dev';
export const releaseRepository = 'ghcr.io/smk-dev/smk';

/** The image config's fixed creation time: a rebuild of the same inputs keeps its digest. */
const created = '1970-01-01T00:00:00Z';

export interface ImageConfig {
  readonly User: string;
  readonly WorkingDir: string;
  readonly Env: readonly string[];
  readonly Entrypoint: readonly string[];
  readonly Cmd: readonly string[];
  readonly Labels: Readonly<Record<string, string>>;
}

export interface BuiltImage {
  readonly archive: string;
  readonly layout: string;
  readonly refs: readonly string[];
  /** The manifest digest: what `ctr images ls` and a pod's imageID show. */
  readonly digest: string;
  readonly config: ImageConfig;
  readonly layers: readonly Layer[];
  /** Archive size on disk (the layers gzipped plus a few KiB of JSON). */
  readonly bytes: number;
  /** Sum of the uncompressed layer tars: about the size of the root file system. */
  readonly unpackedBytes: number;
  readonly seconds: number;
}

/** The config Docker would give: the base's, overridden by what the final stage sets. */
export function imageConfig(dockerfile: DockerfileImage, base: BaseImage): ImageConfig {
  const env = new Map<string, string>(base.env);
  for (const [name, value] of dockerfile.env) env.set(name, value);
  return {
    User: dockerfile.user ?? base.user,
    WorkingDir: dockerfile.workdir ?? base.workdir,
    Env: [...env].map(([name, value]) => `${name}=${value}`),
    Entrypoint: dockerfile.entrypoint ?? base.entrypoint,
    Cmd: dockerfile.cmd ?? [],
    Labels: dockerfile.labels,
  };
}

const packageSchema = z.object({ version: z.string().regex(/^\d+\.\d+\.\d+/) });

export async function packageVersion(root: string): Promise<string> {
  return packageSchema.parse(JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))).version;
}

const architectures: Partial<Record<NodeJS.Architecture, string>> = { x64: 'amd64', arm64: 'arm64' };

/** The pinned Node 24 from the npm registry (not the machine's node, which may link other libraries). */
async function pinnedNode(root: string): Promise<{ node: string; license: string | undefined }> {
  const { stdout } = await run('bash', [join(root, 'scripts/node24.sh'), '--pinned']);
  const bin = stdout.trim();
  const license = join(bin, '..', 'LICENSE');
  return {
    node: join(bin, 'node'),
    license: await access(license).then(
      () => license,
      () => undefined,
    ),
  };
}

export interface BuildOptions {
  /** The repository checkout (Dockerfile, package.json, dist/). */
  readonly root: string;
  /** Where build/image goes; default `<root>/build/image`. */
  readonly out?: string;
}

export async function buildImage(options: BuildOptions): Promise<BuiltImage> {
  const started = performance.now();
  const root = options.root;
  const out = options.out ?? join(root, 'build', 'image');
  const version = await packageVersion(root);
  const architecture = architectures[process.arch];
  if (architecture === undefined) throw new Error(`image: no OCI architecture for ${process.arch}`);

  const dockerfile = parseDockerfile(await readFile(join(root, 'Dockerfile'), 'utf8'), { VERSION: version });
  const base = baseImage(dockerfile.base);
  const config = imageConfig(dockerfile, base);
  const { node, license } = await pinnedNode(root);
  const caCertificates = '/etc/ssl/certs/ca-certificates.crt';

  await mkdir(out, { recursive: true });
  const layout = new OciLayout(join(out, 'oci'));
  const runtime = await layout.writeLayer(
    await runtimeLayer(base, {
      node,
      nodeLicense: license,
      caCertificates: await access(caCertificates).then(
        () => caCertificates,
        () => undefined,
      ),
    }),
  );
  const app = await layout.writeLayer(await appLayer(base, join(root, 'dist')));
  const layers = [runtime, app];

  const configBlob = await layout.writeJson(mediaTypes.config, {
    created,
    architecture,
    os: 'linux',
    config: config,
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    history: [
      {
        created,
        created_by: `smk runtime: node ${await nodeVersion(node)} and its libraries (scripts/image)`,
      },
      { created, created_by: `smk ${version}: dist/ (scripts/image)` },
    ],
  });
  const manifest = await layout.writeJson(mediaTypes.manifest, {
    schemaVersion: 2,
    mediaType: mediaTypes.manifest,
    config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((layer) => ({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size })),
  });
  const refs = [`${releaseRepository}:${version}`, `${localRepository}:${localTag}`];
  await layout.writeIndex({
    schemaVersion: 2,
    mediaType: mediaTypes.index,
    // One entry per ref, the same manifest: containerd names an image from io.containerd.image.name,
    // skopeo (oci-archive:FILE:TAG) from the OCI ref name.
    manifests: refs.map((ref) => ({
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.size,
      platform: { architecture, os: 'linux' },
      annotations: {
        'io.containerd.image.name': ref,
        'org.opencontainers.image.ref.name': ref.slice(ref.lastIndexOf(':') + 1),
      },
    })),
  });
  await layout.prune([configBlob.digest, manifest.digest, ...layers.map((layer) => layer.digest)]);

  const archive = join(out, 'smk.oci.tar');
  const packed = await packLayout(layout, {
    config: configBlob.digest,
    layers: layers.map((layer) => layer.digest),
    repoTags: refs,
  });
  await writeFile(`${archive}.tmp`, packed);
  await rename(`${archive}.tmp`, archive);
  const built: BuiltImage = {
    archive,
    layout: layout.dir,
    refs,
    digest: manifest.digest,
    config,
    layers,
    bytes: (await stat(archive)).size,
    unpackedBytes: layers.reduce((sum, layer) => sum + layer.uncompressedSize, 0),
    seconds: (performance.now() - started) / 1000,
  };
  await writeFile(join(out, 'smk.json'), `${JSON.stringify(built, null, 2)}\n`);
  return built;
}

async function nodeVersion(node: string): Promise<string> {
  return (await run(node, ['--version'])).stdout.trim().replace(/^v/, '');
}
