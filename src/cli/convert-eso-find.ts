/**
 * ESO's `dataFrom[].find` → smk's `discover` (docs/discovery.md), for what means the same:
 * - Secrets Manager: ESO's AWS provider lists with `path` as AWS's name filter and keeps names its
 *   `name.regexp` matches (Go, unanchored); with no name it lists by `tags` (name set: tags are
 *   ignored). smk lists by `namePrefix` / `tags` and checks a `nameGlob`; a regexp converts when it
 *   is literal text with `.`, `.*` and `.+` (and `^` / `$`), which a glob says exactly.
 * - Parameter Store: ESO reads every parameter under `path` (default `/`, recursively) whose name
 *   the regexp matches; smk's SSM discovery takes a path only, so the regexp must add nothing.
 * Keys: ESO names a match by its full name with every character that is not a letter, digit,
 * `-`, `.` or `_` made `_` (conversionStrategy Default); smk by its full name with `/` made `_`.
 */
import type * as z from 'zod';
import { maxDiscovered, maxGlobLength } from '../core/discovery.ts';
import type { findSchema } from './convert-eso-schema.ts';
import type { ConvertIssue } from './convert-output.ts';

export type EsoFind = z.infer<typeof findSchema>;

/** A Secrets Manager or SSM `discover` entry as the objects spec writes it. */
export interface DiscoverObject {
  objectType: string;
  discover: {
    namePrefix?: string;
    nameGlob?: string;
    tags?: Record<string, string>;
    path?: string;
    recursive?: true;
  };
}

/**
 * A Go regular expression → the glob that matches exactly the same Secrets Manager names (letters,
 * digits and `/_+=.@-`, never a newline), or why there is none. Go's `MatchString` is unanchored,
 * so a side without `^` / `$` becomes `*`.
 */
export function globOfRegexp(source: string): { glob: string } | { problem: string } {
  let body = source;
  const startAnchored = body.startsWith('^');
  if (startAnchored) body = body.slice(1);
  const endAnchored = body.endsWith('$') && !body.endsWith('\\$');
  if (endAnchored) body = body.slice(0, -1);
  let glob = startAnchored ? '' : '*';
  for (let at = 0; at < body.length; at += 1) {
    const char = body[at] ?? '';
    if (char === '\\') {
      const next = body[at + 1] ?? '';
      at += 1;
      if (next === '*' || next === '?')
        return { problem: `\\${next} (a literal ${next}, which no secret name holds and a glob cannot say)` };
      if (/[.^$+(){}[\]|/-]/.test(next) || next === '\\') {
        glob += next;
        continue;
      }
      return { problem: `the class \\${next} (a glob has only * and ?)` };
    }
    if (char === '.') {
      const quantifier = body[at + 1];
      if (quantifier === '*' || quantifier === '+') {
        at += 1;
        if (body[at + 1] === '?') at += 1; // lazy or greedy: the same set of matches
        glob += quantifier === '*' ? '*' : '?*';
      } else if (quantifier === '?' || quantifier === '{') {
        return { problem: `.${quantifier} (an optional or counted character; a glob has only * and ?)` };
      } else glob += '?';
      continue;
    }
    if ('*+?{'.includes(char))
      return {
        problem: `the quantifier ${char} on a character other than . (a glob repeats only "any character")`,
      };
    if ('()[]|^$'.includes(char))
      return { problem: `${char} (groups, classes, alternatives and inner anchors have no glob equivalent)` };
    glob += char;
  }
  if (!endAnchored) glob += '*';
  if (glob.length > maxGlobLength) return { problem: `a glob longer than ${maxGlobLength} characters` };
  return { glob: glob.replace(/\*+/g, '*') };
}

/** The literal text a glob starts with (up to its first wildcard). */
const literalPrefix = (glob: string): string => /^[^*?]*/.exec(glob)?.[0] ?? '';

/**
 * One `dataFrom[].find` → a discover object, or the issues that stop it; `field` is
 * `spec.dataFrom[i].find`. Differences that keep the meaning for ordinary names are notes.
 */
export function discoverOfFind(
  find: EsoFind,
  objectType: string,
  field: string,
  subject: string,
): { object?: DiscoverObject; issues: ConvertIssue[] } {
  const issues: ConvertIssue[] = [];
  const unsupported = (where: string, message: string): void => {
    issues.push({ severity: 'unsupported', subject, field: where ? `${field}.${where}` : field, message });
  };
  const note = (where: string, message: string): void => {
    issues.push({ severity: 'note', subject, field: where ? `${field}.${where}` : field, message });
  };
  if (find.decodingStrategy !== undefined && find.decodingStrategy !== 'None')
    unsupported(
      'decodingStrategy',
      `${find.decodingStrategy}: smk writes each match's value as stored (no Base64 decoding)`,
    );
  if (find.conversionStrategy === 'Unicode')
    unsupported(
      'conversionStrategy',
      'Unicode (_UXXXX_ for each character not valid in a key): smk names a match by its name with / made _, and fails a name that is still not a valid Secret key',
    );
  const regexp = find.name?.regexp;
  const glob = regexp === undefined ? undefined : globOfRegexp(regexp);
  if (glob && 'problem' in glob)
    unsupported('name.regexp', `${JSON.stringify(regexp)}: no glob equivalent for ${glob.problem}`);

  if (objectType === 'ssmparameter') {
    if (find.tags !== undefined && regexp === undefined)
      unsupported('tags', "smk's Parameter Store discovery takes a path only (no tag filter)");
    if (regexp === undefined && find.tags === undefined)
      unsupported('', 'find needs name or tags (ESO refuses it too)');
    if (!glob || 'problem' in glob || issues.some((issue) => issue.severity === 'unsupported'))
      return { issues };
    // ESO: GetParametersByPath(path or "/", recursive), then the regexp. smk: the path alone.
    let path = find.path ?? '/';
    if (!path.startsWith('/')) {
      unsupported('path', `${JSON.stringify(path)}: a Parameter Store path starts with /`);
      return { issues };
    }
    if (glob.glob !== '*') {
      const prefix = literalPrefix(glob.glob);
      const under = path.endsWith('/') ? path : `${path}/`;
      if (glob.glob !== `${prefix}*` || !prefix.endsWith('/') || !prefix.startsWith(under)) {
        unsupported(
          'name.regexp',
          `${JSON.stringify(regexp)}: smk's Parameter Store discovery takes a path only; the regexp narrows it further than "everything under a path"`,
        );
        return { issues };
      }
      path = prefix.slice(0, -1) || '/';
    }
    if (find.tags !== undefined)
      note('tags', "ignored: ESO's Parameter Store provider ignores tags when name is set");
    return { object: { objectType, discover: { path, recursive: true } }, issues };
  }

  // Secrets Manager.
  if (regexp === undefined && find.tags === undefined)
    unsupported('', 'find needs name or tags (ESO refuses it too)');
  if (issues.some((issue) => issue.severity === 'unsupported')) return { issues };
  const discover: DiscoverObject['discover'] = {};
  if (find.path !== undefined) {
    discover.namePrefix = find.path;
    note(
      'path',
      "→ discover.namePrefix: smk checks it case-sensitively; ESO passes it as AWS's name filter, which ignores case",
    );
  }
  if (glob && 'glob' in glob) {
    const prefix = literalPrefix(glob.glob);
    if (discover.namePrefix === undefined) {
      if (prefix === '') {
        unsupported(
          'name.regexp',
          `${JSON.stringify(regexp)}: smk's discover needs a name prefix (or tags) so AWS narrows the listing; anchor the regexp with ^ and literal text, or set find.path`,
        );
        return { issues };
      }
      discover.namePrefix = prefix;
    }
    // namePrefix alone says "starts with"; a glob is kept only when it says more.
    if (glob.glob !== `${discover.namePrefix}*`) discover.nameGlob = glob.glob;
    if (find.tags !== undefined)
      note('tags', "ignored: ESO's AWS provider ignores tags when name is set, and so does the conversion");
  } else if (find.tags !== undefined) {
    discover.tags = find.tags;
    note(
      'tags',
      "→ discover.tags: smk keeps a secret only when it carries each tag with exactly that value; ESO passes AWS's tag-key and tag-value filters, which match keys and values apart and as prefixes",
    );
  }
  note(
    '',
    `keys: each match is a key named by its full name with / made _, as ESO names it; ESO also makes + = @ into _, smk fails the SecretSync on such a name; more than ${maxDiscovered} matches fail (discover.limit), ESO has no bound`,
  );
  return { object: { objectType, discover }, issues };
}
