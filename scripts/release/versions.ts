/**
 * The one version of a release, as each file that carries it says it. A release is refused when any
 * two disagree, so the npm package, the chart, the image and `smk version` never drift apart.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

export interface VersionSource {
  /** Where the version was read, e.g. "deploy/helm/smk/Chart.yaml appVersion". */
  readonly where: string;
  readonly version: string | undefined;
}

/** The release version (package.json's), or an error naming every source that says otherwise. */
export function agreedVersion(sources: readonly VersionSource[]): string {
  const [first] = sources;
  if (!first?.version) throw new Error(`no version in ${first?.where ?? 'package.json'}`);
  const differing = sources.filter((source) => source.version !== first.version);
  if (differing.length > 0) {
    const list = differing.map((source) => `${source.where} says ${source.version ?? 'nothing'}`).join('; ');
    throw new Error(`the version is not the same everywhere: ${first.where} says ${first.version}; ${list}`);
  }
  return first.version;
}

/** Every file of the repository that names the release version. */
export async function versionSources(root: string): Promise<VersionSource[]> {
  const text = (path: string): Promise<string> => readFile(`${root}${path}`, 'utf8');
  const manifest = JSON.parse(await text('package.json')) as { version?: string };
  const chart = parseYaml(await text('deploy/helm/smk/Chart.yaml')) as {
    version?: unknown;
    appVersion?: unknown;
  };
  const asText = (value: unknown): string | undefined => (value === undefined ? undefined : String(value));
  const code = /export const smkVersion = '([^']+)'/.exec(await text('src/core/version.ts'))?.[1];
  const dockerfile = /^ARG VERSION=(\S+)$/m.exec(await text('Dockerfile'))?.[1];
  return [
    { where: 'package.json version', version: manifest.version },
    { where: 'deploy/helm/smk/Chart.yaml version', version: asText(chart.version) },
    { where: 'deploy/helm/smk/Chart.yaml appVersion', version: asText(chart.appVersion) },
    { where: 'src/core/version.ts smkVersion', version: code },
    { where: 'Dockerfile ARG VERSION', version: dockerfile },
  ];
}
