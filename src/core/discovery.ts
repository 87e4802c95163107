/**
 * Discovery: an objects entry with `discover` stands for every secret (ListSecrets) or SSM
 * parameter (GetParametersByPath) it matches, listed again on every resolution, so new matches
 * appear and deleted ones go away. The listing is the reader's, so it runs as the workload's own
 * identity and finds only what that identity may list.
 *
 * Bounds, so a tenant's spec cannot make a shared process list or read without end:
 * - at most `maxDiscovered` (100) matches per entry (`limit` may lower it); more is an error
 *   naming the bound, never a silent cut (which 100 would be kept would depend on AWS's order);
 * - at most `maxDiscoveryListed` (1,000) objects listed per entry, matches or not (10 ListSecrets
 *   pages of 100, or 100 GetParametersByPath pages of 10), and `maxDiscoverEntries` (10) entries
 *   per spec;
 * - names are matched by prefix, exact tags and a glob (`*`, `?`) checked by a matcher whose
 *   work is bounded by name length × glob length (no regular expressions: no RE2 is installed,
 *   and a backtracking RegExp written by a tenant could stall the process).
 *
 * Naming: a found object is named as if the spec had listed it (naming.ts: its name with `/`
 * replaced by pathTranslation, as ASCP names objectName files), or without the prefix when
 * `stripPrefix` is set. Two names that meet fail naming both sources, as for listed objects.
 */
import { about, InvalidInputError, isSmkError, TooLargeError } from './errors.ts';
import type { DiscoveredObject, DiscoveryQuery, SecretReader } from './source.ts';
import type { Discovery, MountSpec, ObjectSpec } from './spec-types.ts';

export const maxDiscovered = 100;
/** `discover` entries per spec at most: with maxDiscoveryListed, ≤ 10,000 objects listed per resolution. */
export const maxDiscoverEntries = 10;
export const maxDiscoveryListed = 1_000;
/** Longest glob accepted; with a 512-character name the matcher takes at most ~260k steps. */
export const maxGlobLength = 512;

/**
 * Glob match: `*` any run of characters (`/` included), `?` exactly one, everything else itself.
 * The classic two-pointer matcher: it backtracks only to the last `*`, so its work is at most
 * name length × glob length, whatever the input.
 */
export function globMatches(glob: string, name: string): boolean {
  let g = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    const c = glob[g];
    if (c === '*') {
      star = g;
      resume = n;
      g += 1;
    } else if (c !== undefined && (c === '?' || c === name[n])) {
      g += 1;
      n += 1;
    } else if (star >= 0) {
      g = star + 1;
      resume += 1;
      n = resume;
    } else {
      return false;
    }
  }
  while (glob[g] === '*') g += 1;
  return g === glob.length;
}

/** What the spec asks, checked exactly (AWS's filters match prefixes, case-insensitively). */
export function discoveryAccepts(discovery: Discovery, found: DiscoveredObject): boolean {
  if (discovery.namePrefix !== undefined && !found.name.startsWith(discovery.namePrefix)) return false;
  if (discovery.path !== undefined) {
    // A path is a hierarchy: /app/prod holds /app/prod/db, not /app/prodx; without recursive, one level.
    const under = discovery.path.endsWith('/') ? discovery.path : `${discovery.path}/`;
    if (!found.name.startsWith(under)) return false;
    if (!discovery.recursive && found.name.slice(under.length).includes('/')) return false;
  }
  if (discovery.nameGlob !== undefined && !globMatches(discovery.nameGlob, found.name)) return false;
  for (const [key, value] of discovery.tags) if (found.tags.get(key) !== value) return false;
  return true;
}

/** The name a found object's file or key gets before pathTranslation (naming.ts does that). */
export function discoveredAlias(discovery: Discovery, name: string): string | undefined {
  if (!discovery.stripPrefix) return undefined;
  const prefix = discovery.namePrefix ?? discovery.path ?? '';
  const rest = name.slice(prefix.length);
  return rest.startsWith('/') ? rest.slice(1) : rest;
}

/** `discover namePrefix "app/"`, for labels and messages: what the entry asks, never a value. */
export function describeDiscovery(discovery: Discovery): string {
  const parts: string[] = [];
  if (discovery.namePrefix !== undefined) parts.push(`namePrefix ${JSON.stringify(discovery.namePrefix)}`);
  if (discovery.path !== undefined) parts.push(`path ${JSON.stringify(discovery.path)}`);
  if (discovery.nameGlob !== undefined) parts.push(`nameGlob ${JSON.stringify(discovery.nameGlob)}`);
  if (discovery.tags.size > 0) parts.push(`tags ${[...discovery.tags.keys()].join(',')}`);
  return `discover ${parts.join(' ')}`;
}

/**
 * The spec with each `discover` entry replaced by one object per match (in name order, so the
 * output does not depend on AWS's listing order). Any failure throws: the caller keeps what it
 * had (the Secret, the files), so a failed listing never empties anything.
 */
export async function expandDiscoveries(
  spec: MountSpec,
  reader: SecretReader,
  regionOf: (object: ObjectSpec) => string,
  subject: string,
): Promise<MountSpec> {
  if (!spec.objects.some((object) => object.discover !== undefined)) return spec;
  const expanded = await Promise.all(
    spec.objects.map(async (object): Promise<ObjectSpec[]> => {
      const discovery = object.discover;
      if (discovery === undefined) return [object];
      const label = `objects[${object.index}] (${object.objectName})`;
      const where = `${subject}: ${label}`;
      if (!reader.discover) {
        throw new InvalidInputError(
          `${where}: this reader cannot list secrets; discover is not available here`,
          {
            subject: where,
            field: 'discover',
          },
        );
      }
      const query: DiscoveryQuery = {
        objectType: object.objectType,
        region: regionOf(object),
        ...(discovery.namePrefix === undefined ? {} : { namePrefix: discovery.namePrefix }),
        tags: discovery.tags,
        ...(discovery.path === undefined ? {} : { path: discovery.path, recursive: discovery.recursive }),
        accept: (found) => discoveryAccepts(discovery, found),
        limit: discovery.limit,
        maxListed: maxDiscoveryListed,
      };
      const found = await reader.discover(query).catch((error: unknown) => {
        throw isSmkError(error) ? about(error, where, error.message) : error;
      });
      if (found.length > discovery.limit) {
        throw new TooLargeError(
          `${where}: discover matched more than ${discovery.limit} objects (the bound is discover.limit, at most ${maxDiscovered}); narrow namePrefix, path, nameGlob or tags`,
          { subject: where, field: 'discover.limit' },
        );
      }
      const names = [...new Set(found.map((entry) => entry.name))].sort();
      return names.map((name): ObjectSpec => {
        const alias = discoveredAlias(discovery, name);
        if (alias === '') {
          throw new InvalidInputError(
            `${where}: ${JSON.stringify(name)} is the prefix itself, so stripPrefix leaves no name; expected names below the prefix`,
            { subject: where, field: 'discover.stripPrefix' },
          );
        }
        const { discover: _discover, ...rest } = object;
        return {
          ...rest,
          objectName: name,
          ...(alias === undefined || object.extractKeys ? {} : { objectAlias: alias }),
          discoveredBy: label,
        };
      });
    }),
  );
  return { ...spec, objects: expanded.flat() };
}
