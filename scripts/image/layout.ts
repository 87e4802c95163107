/**
 * The image's file system as two layers, built from this machine without Docker:
 * - runtime: what the Dockerfile's base (distroless Node 24, nonroot) gives smk — the Node binary
 *   at the base's path, exactly the shared libraries `ldd` names for it, the nonroot user, /tmp,
 *   CA certificates and name-service config. It changes only with Node or the host's libraries,
 *   so a rebuild after a source change reuses it.
 * - app: what the Dockerfile's RUN/COPY steps add — the bundle in /usr/local/lib/smk without source
 *   maps, its shebang at the base's node, `smk` on PATH as a symlink.
 * Every entry has a fixed owner, mode and (in tar.ts) mtime, so the digests are reproducible.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { TarEntry } from './tar.ts';

const run = promisify(execFile);

/** What the Dockerfile's final base contributes to the config and layout, keyed by its reference. */
export interface BaseImage {
  readonly reference: string;
  readonly user: string;
  readonly workdir: string;
  readonly env: readonly (readonly [string, string])[];
  readonly entrypoint: readonly string[];
  /** Where the base keeps node (the bundle's shebang names it). */
  readonly nodePath: string;
}

// From distroless's build: base.bzl (nonroot: user 65532, workdir /home/nonroot; PATH and
// SSL_CERT_FILE) and nodejs/BUILD (entrypoint /nodejs/bin/node).
const distrolessNodejs24Nonroot: BaseImage = {
  reference: 'gcr.io/distroless/nodejs24-debian12:nonroot',
  user: '65532',
  workdir: '/home/nonroot',
  env: [
    ['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ['SSL_CERT_FILE', '/etc/ssl/certs/ca-certificates.crt'],
  ],
  entrypoint: ['/nodejs/bin/node'],
  nodePath: '/nodejs/bin/node',
};

const knownBases = [distrolessNodejs24Nonroot];

export function baseImage(reference: string): BaseImage {
  const base = knownBases.find((known) => known.reference === reference);
  if (base === undefined) {
    const known = knownBases.map((candidate) => candidate.reference).join(', ');
    throw new Error(
      `Dockerfile: the final stage is FROM ${reference}, which the offline build does not know (it knows ${known}); describe it in scripts/image/layout.ts`,
    );
  }
  return base;
}

export const nonroot = { uid: 65532, gid: 65532 } as const;

const root = { uid: 0, gid: 0 } as const;
const dir = (path: string, mode = 0o755, owner: { uid: number; gid: number } = root): TarEntry => ({
  type: 'dir',
  path,
  mode,
  ...owner,
});
const text = (path: string, content: string, mode = 0o644): TarEntry => ({
  type: 'file',
  path,
  mode,
  ...root,
  data: Buffer.from(content),
});

/** Every directory above `path` (without the leading slash), outermost first. */
function parents(path: string): string[] {
  const parts = path.split('/').slice(0, -1);
  return parts.map((_, index) => parts.slice(0, index + 1).join('/'));
}

/** Adds the missing parent directories (root-owned, 0755) and sorts, so parents precede children. */
function complete(entries: readonly TarEntry[]): TarEntry[] {
  const byPath = new Map(entries.map((entry) => [entry.path.replace(/\/$/, ''), entry]));
  for (const entry of entries) {
    for (const parent of parents(entry.path.replace(/\/$/, ''))) {
      if (!byPath.has(parent)) byPath.set(parent, dir(parent));
    }
  }
  return [...byPath.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry);
}

/** The libraries `ldd` resolves for `binary`, as [path the loader looks at, file to copy]. */
export async function sharedLibraries(binary: string): Promise<(readonly [string, string])[]> {
  const { stdout } = await run('ldd', [binary]);
  const libraries: (readonly [string, string])[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '' || line.includes('linux-vdso') || line.includes('linux-gate')) continue;
    if (line.includes('not found')) throw new Error(`ldd ${binary}: ${line.trim()}`);
    const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)/.exec(line)?.[1];
    if (path === undefined) throw new Error(`ldd ${binary}: cannot read the line "${line.trim()}"`);
    libraries.push([path, await realpath(path)]);
  }
  if (!libraries.some(([path]) => /\/ld-linux[^/]*\.so/.test(path))) {
    throw new Error(`ldd ${binary}: no dynamic loader listed (is it a dynamic ELF binary?)`);
  }
  return libraries;
}

async function hostFile(path: string, source: string, mode?: number): Promise<TarEntry> {
  const info = await stat(source);
  return {
    type: 'file',
    path: path.replace(/^\//, ''),
    mode: mode ?? info.mode & 0o755,
    ...root,
    data: await readFile(source),
  };
}

export interface RuntimeSources {
  /** The Node 24 binary (scripts/node24.sh --pinned). */
  readonly node: string;
  /** Node's LICENSE, shipped beside the binary as distroless does. */
  readonly nodeLicense: string | undefined;
  /** The host's CA bundle; the image has none when the host has none. */
  readonly caCertificates: string | undefined;
}

export async function runtimeLayer(base: BaseImage, sources: RuntimeSources): Promise<TarEntry[]> {
  const entries: TarEntry[] = [
    await hostFile(base.nodePath, sources.node, 0o755),
    dir('tmp', 0o1777),
    dir('root', 0o700),
    dir('home/nonroot', 0o700, nonroot),
    text(
      'etc/passwd',
      'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n',
    ),
    text('etc/group', 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n'),
    // Without it glibc asks DNS before /etc/hosts (Kubernetes writes hostAliases there).
    text('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\n'),
  ];
  if (sources.nodeLicense) {
    entries.push(
      await hostFile(base.nodePath.replace(/\/bin\/node$/, '/LICENSE'), sources.nodeLicense, 0o644),
    );
  }
  if (sources.caCertificates) {
    entries.push(await hostFile('/etc/ssl/certs/ca-certificates.crt', sources.caCertificates, 0o644));
  }
  for (const [path, source] of await sharedLibraries(sources.node)) {
    entries.push(await hostFile(path, source, 0o755));
  }
  return complete(entries);
}

/** The Dockerfile's build-stage RUN: dist/ without maps, shebang at the base's node, `smk` on PATH. */
export async function appLayer(base: BaseImage, dist: string): Promise<TarEntry[]> {
  const files = (await readdir(dist, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile() && !entry.name.endsWith('.map'))
    .map((entry) => join(entry.parentPath, entry.name));
  const main = join(dist, 'smk.mjs');
  if (!files.includes(main)) throw new Error(`${main} is missing: run \`npm run build\``);
  const entries: TarEntry[] = [];
  for (const file of files) {
    const path = `usr/local/lib/smk/${relative(dist, file)}`;
    if (file !== main) {
      entries.push({ type: 'file', path, mode: 0o644, ...root, data: await readFile(file) });
      continue;
    }
    const source = await readFile(file, 'utf8');
    if (!source.startsWith('#!')) throw new Error(`${main}: no shebang line to point at ${base.nodePath}`);
    const data = Buffer.from(source.replace(/^#!.*/, `#!${base.nodePath}`));
    entries.push({ type: 'file', path, mode: 0o755, ...root, data });
  }
  entries.push({ type: 'symlink', path: 'usr/local/bin/smk', target: '../lib/smk/smk.mjs' });
  return complete(entries);
}
