/**
 * The objects spec's shape, checked with zod: the text (YAML or JSON) → a list, each entry → a
 * RawObject, and the unknown fields ASCP ignores (named for a warning, never their values).
 * What the fields mean together is checked by ./spec-object.ts.
 */
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { maxDiscovered } from './discovery.ts';
import { InvalidInputError } from './errors.ts';
import type { FileMode } from './spec-types.ts';

function typeName(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  return `a ${typeof input}`;
}

/**
 * YAML or JSON text → the list it holds. JSON is tried first (tabs and all); YAML errors are
 * reduced to their first line (the text is a spec, never a secret value).
 */
export function parseObjectsText(text: string, subject: string): unknown[] {
  const fail = (what: string): never => {
    throw new InvalidInputError(`${subject}: objects ${what}`, { subject, field: 'objects' });
  };
  if (text.trim() === '') fail('is empty; expected a YAML or JSON list of objects');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    try {
      // logLevel error: the yaml package would otherwise print warnings quoting the spec to stderr.
      parsed = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100, logLevel: 'error' });
    } catch (error) {
      const reason = error instanceof Error ? (error.message.split('\n')[0] ?? '') : 'unreadable';
      fail(`is not valid YAML or JSON: ${reason}`);
    }
  }
  if (!Array.isArray(parsed)) {
    return fail(`must be a list (YAML sequence or JSON array) of objects, got ${typeName(parsed)}`);
  }
  return parsed;
}

// ---- shape and types (zod) -------------------------------------------------------------------

const text = z
  .string({
    error: (issue) =>
      issue.input === undefined ? 'is required' : `must be a string, got ${typeName(issue.input)}`,
  })
  .min(1, 'must not be empty');

/** SSM parameter versions are numbers; YAML users write them unquoted. */
const version = z.union([text, z.int().positive().transform(String)], {
  error: (issue) => `must be a string or a whole number, got ${typeName(issue.input)}`,
});

const filePermission = z.unknown().transform((input, context): FileMode => {
  const fail = (message: string): never => {
    context.issues.push({ code: 'custom', message, input });
    return z.NEVER;
  };
  if (typeof input === 'number') {
    return fail('must be a quoted string like "0640" (an unquoted number loses its leading zero)');
  }
  if (typeof input !== 'string' || !/^[0-7]{4}$/.test(input)) {
    return fail('must be four octal digits like "0640"');
  }
  if (input[0] !== '0')
    return fail('must not set setuid, setgid or sticky bits; expected "0" as first digit');
  return Number.parseInt(input, 8);
});

const objectTypeField = z.enum(['secretsmanager', 'ssmparameter'], {
  error: (issue) =>
    typeof issue.input === 'string'
      ? `must be "secretsmanager" or "ssmparameter", got ${JSON.stringify(issue.input)}`
      : `must be "secretsmanager" or "ssmparameter", got ${typeName(issue.input)}`,
});

const jmesPathEntryKeys = ['path', 'objectAlias', 'filePermission'] as const;
const failoverObjectKeys = ['objectName', 'objectVersion', 'objectVersionLabel'] as const;
const objectKeys = [
  'objectName',
  'objectType',
  'objectAlias',
  'objectVersion',
  'objectVersionLabel',
  'filePermission',
  'jmesPath',
  'failoverObject',
  'extractKeys',
  'keyPrefix',
  'discover',
] as const;
const discoverKeys = ['namePrefix', 'nameGlob', 'tags', 'path', 'recursive', 'limit', 'stripPrefix'] as const;

const mappingError = (keys: readonly string[]) => (issue: { input: unknown }) =>
  `must be a mapping with ${keys.join(', ')}; got ${typeName(issue.input)}`;

const jmesPathEntrySchema = z.object(
  { path: text, objectAlias: text, filePermission: filePermission.optional() },
  { error: mappingError(jmesPathEntryKeys) },
);

const failoverObjectSchema = z.object(
  { objectName: text, objectVersion: version.nullish(), objectVersionLabel: text.nullish() },
  { error: mappingError(failoverObjectKeys) },
);

const flag = z.boolean({ error: (issue) => `must be true or false, got ${typeName(issue.input)}` });

/** Strict: `discover` is smk's own field, so a misspelt key inside it is an error, not a warning. */
const discoverSchema = z.strictObject(
  {
    namePrefix: text.nullish(),
    nameGlob: text.nullish(),
    path: text.nullish(),
    tags: z
      .record(z.string().min(1).max(128), z.string().max(256), {
        error: 'must be a mapping of tag key to tag value',
      })
      .nullish(),
    recursive: flag.nullish(),
    stripPrefix: flag.nullish(),
    limit: z
      .int({ error: `must be a whole number from 1 to ${maxDiscovered}` })
      .min(1, `must be a whole number from 1 to ${maxDiscovered}`)
      .max(maxDiscovered, `must be at most ${maxDiscovered} (the bound on objects per discover entry)`)
      .nullish(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `has unknown field(s) ${issue.keys.join(', ')}; expected ${discoverKeys.join(', ')}`
        : `must be a mapping with ${discoverKeys.join(', ')}; got ${typeName(issue.input)}`,
  },
);

export const objectSchema = z.object(
  {
    // Required unless discover is set (./spec-object.ts says so by name).
    objectName: text.nullish(),
    objectType: objectTypeField.nullish(),
    objectAlias: text.nullish(),
    objectVersion: version.nullish(),
    objectVersionLabel: text.nullish(),
    filePermission: filePermission.optional(),
    jmesPath: z.array(jmesPathEntrySchema, { error: 'must be a list of {path, objectAlias}' }).nullish(),
    failoverObject: failoverObjectSchema.nullish(),
    extractKeys: z
      .boolean({ error: (issue) => `must be true or false, got ${typeName(issue.input)}` })
      .nullish(),
    keyPrefix: z.string({ error: (issue) => `must be a string, got ${typeName(issue.input)}` }).nullish(),
    discover: discoverSchema.nullish(),
  },
  { error: mappingError(objectKeys) },
);

export type RawObject = z.infer<typeof objectSchema>;

function fieldName(path: readonly PropertyKey[]): string {
  let name = '';
  for (const part of path) {
    name += typeof part === 'number' ? `[${part}]` : `${name === '' ? '' : '.'}${String(part)}`;
  }
  return name;
}

export function describeIssue(issue: z.core.$ZodIssue): { field: string; message: string } {
  const field = fieldName(issue.path);
  return { field, message: field === '' ? issue.message : `${field} ${issue.message}` };
}

/** Longest unknown field name quoted in a warning; longer ones are cut (a key, never a value). */
const maxIgnoredNameLength = 64;

const keysOutside = (input: unknown, allowed: readonly string[]): string[] =>
  typeof input === 'object' && input !== null && !Array.isArray(input)
    ? Object.keys(input).filter((key) => !allowed.includes(key))
    : [];

/**
 * Fields of an object entry that ASCP ignores (its YAML decoding drops unknown keys, and its own
 * tests carry such fields): `objects[0] (db): objectTemplate`. Names only, never their values.
 */
export function ignoredFieldsOf(index: number, raw: unknown): string[] {
  const found = keysOutside(raw, objectKeys);
  if (typeof raw === 'object' && raw !== null) {
    const entries = 'jmesPath' in raw && Array.isArray(raw.jmesPath) ? (raw.jmesPath as unknown[]) : [];
    entries.forEach((entry, position) => {
      for (const key of keysOutside(entry, jmesPathEntryKeys)) found.push(`jmesPath[${position}].${key}`);
    });
    const failover = 'failoverObject' in raw ? raw.failoverObject : undefined;
    for (const key of keysOutside(failover, failoverObjectKeys)) found.push(`failoverObject.${key}`);
  }
  const label = objectLabel(index, raw);
  return found.map((field) => {
    const shown = field.length > maxIgnoredNameLength ? `${field.slice(0, maxIgnoredNameLength)}…` : field;
    return `${label}: ${JSON.stringify(shown)}`;
  });
}

/** `objects[1] (db)`, for messages. */
export function objectLabel(index: number, raw: unknown): string {
  if (typeof raw === 'object' && raw !== null && 'discover' in raw && !('objectName' in raw)) {
    return `objects[${index}] (discover)`;
  }
  const name =
    typeof raw === 'object' && raw !== null && 'objectName' in raw && typeof raw.objectName === 'string'
      ? raw.objectName
      : '';
  return name === '' ? `objects[${index}]` : `objects[${index}] (${name})`;
}
