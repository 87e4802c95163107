/**
 * Parses an objects spec in exactly the AWS Secrets Store CSI provider's (ASCP) `objects` format
 * and validates it once, so every role gets a MountSpec it can trust.
 *
 * Rules are ASCP's (provider/secret_descriptor.go) or stricter:
 * - ASCP's duplicate check looks at objectName/objectAlias/objectVersionLabel; we check the file
 *   names actually produced (after pathTranslation), which also catches `a/b` vs `a_b` and a
 *   name used as a file and as a directory.
 * - An ARN in a region other than `region` (or, for a failoverObject, `failoverRegion`) is
 *   refused, as ASCP refuses it; so is a pathTranslation other than "False" or one character
 *   ("True" included), and a failoverObject that is not an ARN when the object has no
 *   objectType. A failover read of an ARN object needs a failoverObject.
 * - filePermission may not set setuid/setgid/sticky bits; unquoted numbers are refused because
 *   YAML reads `0644` as decimal 644.
 */
import { compile } from '@jmespath-community/jmespath';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { type ObjectArn, parseObjectArn } from './arn.ts';
import { InvalidInputError } from './errors.ts';
import { notPlainFieldPath, parseFieldPath } from './field-path.ts';
import {
  jmesPathFileName,
  type NamedFile,
  nameConflicts,
  objectFileName,
  unsafeNameReason,
} from './naming.ts';
import { awsRegionExpectation, isAwsRegion } from './regions.ts';
import type { ObjectType } from './source.ts';
import type {
  FailoverObject,
  FileMode,
  JmesPathEntry,
  MountSpec,
  ObjectSpec,
  PathTranslation,
} from './spec-types.ts';

/** SecretProviderClass-style parameters; callers pass only these fields of their input. */
export interface MountParams {
  readonly objects: string | readonly unknown[];
  readonly region?: string | undefined;
  readonly failoverRegion?: string | undefined;
  readonly pathTranslation?: string | undefined;
}

/** How a role reads specs; every role that evaluates a spec parses it with the same options. */
export interface SpecOptions {
  /**
   * Accept full JMESPath expressions in jmesPath[].path (a cluster administrator's choice,
   * `--allow-jmespath-expressions`); default: plain field paths only (./field-path.ts).
   */
  readonly allowExpressions?: boolean | undefined;
}

/**
 * Longest expression accepted: its syntax is checked here, on the caller's event loop, at about
 * 2 µs a character; a real expression is a few dozen characters.
 */
const maxExpressionLength = 2_048;

/** At most this many problems are listed in one error; the rest are counted. */
const maxReportedProblems = 10;

const secretNamePattern = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const parameterNamePattern = /^[A-Za-z0-9/_.-]{1,2048}$/;
const secretVersionIdPattern = /^[A-Za-z0-9-]{32,64}$/;
const parameterVersionPattern = /^[1-9][0-9]*$/;

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
] as const;

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

const objectSchema = z.object(
  {
    objectName: text,
    objectType: objectTypeField.nullish(),
    objectAlias: text.nullish(),
    objectVersion: version.nullish(),
    objectVersionLabel: text.nullish(),
    filePermission: filePermission.optional(),
    jmesPath: z.array(jmesPathEntrySchema, { error: 'must be a list of {path, objectAlias}' }).nullish(),
    failoverObject: failoverObjectSchema.nullish(),
  },
  { error: mappingError(objectKeys) },
);

type RawObject = z.infer<typeof objectSchema>;

function fieldName(path: readonly PropertyKey[]): string {
  let name = '';
  for (const part of path) {
    name += typeof part === 'number' ? `[${part}]` : `${name === '' ? '' : '.'}${String(part)}`;
  }
  return name;
}

function describeIssue(issue: z.core.$ZodIssue): { field: string; message: string } {
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
function ignoredFieldsOf(index: number, raw: unknown): string[] {
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

// ---- meaning (what zod cannot say) -------------------------------------------------------------

interface Problem {
  readonly field: string;
  readonly message: string;
}

interface TopLevel {
  readonly region: string | undefined;
  readonly failoverRegion: string | undefined;
}

function objectLabel(index: number, raw: unknown): string {
  const name =
    typeof raw === 'object' && raw !== null && 'objectName' in raw && typeof raw.objectName === 'string'
      ? raw.objectName
      : '';
  return name === '' ? `objects[${index}]` : `objects[${index}] (${name})`;
}

function checkName(
  name: string,
  objectType: ObjectType,
  field: string,
  problems: Problem[],
): ObjectArn | undefined {
  if (name.startsWith('arn:')) {
    const arn = parseObjectArn(name);
    if (!arn) {
      problems.push({
        field,
        message: `${field} looks like an ARN but is not arn:<partition>:secretsmanager:<region>:<account>:secret:<name> or arn:<partition>:ssm:<region>:<account>:parameter/<name>`,
      });
    } else if (!isAwsRegion(arn.region)) {
      problems.push({
        field,
        message: `${field} is an ARN in region ${JSON.stringify(arn.region)}; expected ${awsRegionExpectation}`,
      });
    } else if (arn.objectType !== objectType) {
      problems.push({
        field,
        message: `${field} is an ARN of a ${arn.objectType === 'secretsmanager' ? 'Secrets Manager secret' : 'SSM parameter'}, but the object is of type ${objectType}`,
      });
    }
    return arn;
  }
  if (objectType === 'secretsmanager' && !secretNamePattern.test(name)) {
    problems.push({
      field,
      message: `${field} must be a secret name (1–512 of A–Z a–z 0–9 / _ + = . @ -) or an ARN`,
    });
  }
  if (objectType === 'ssmparameter' && !parameterNamePattern.test(name)) {
    problems.push({
      field,
      message: `${field} must be a parameter name (1–2048 of A–Z a–z 0–9 / _ . -) or an ARN`,
    });
  }
  return undefined;
}

function checkVersions(
  objectType: ObjectType,
  prefix: string,
  versionId: string | null | undefined,
  label: string | null | undefined,
  problems: Problem[],
): void {
  if (versionId != null) {
    if (objectType === 'ssmparameter' && !parameterVersionPattern.test(versionId)) {
      problems.push({
        field: `${prefix}objectVersion`,
        message: `${prefix}objectVersion must be a parameter version number like "3" for an ssmparameter object`,
      });
    }
    if (objectType === 'secretsmanager' && !secretVersionIdPattern.test(versionId)) {
      problems.push({
        field: `${prefix}objectVersion`,
        message: `${prefix}objectVersion must be a secret VersionId (32–64 letters, digits or -)`,
      });
    }
  }
  // SSM addresses a parameter as name:version or name:label, never both.
  if (objectType === 'ssmparameter' && versionId != null && label != null) {
    problems.push({
      field: `${prefix}objectVersion`,
      message: `${prefix}objectVersion and ${prefix}objectVersionLabel cannot both be set for an ssmparameter object; expected one of them`,
    });
  }
}

function buildObject(
  index: number,
  raw: RawObject,
  top: TopLevel,
  options: SpecOptions,
  problems: Problem[],
): ObjectSpec | undefined {
  const arnGuess = raw.objectName.startsWith('arn:') ? parseObjectArn(raw.objectName) : undefined;
  const objectType = raw.objectType ?? arnGuess?.objectType;
  if (objectType === undefined) {
    if (raw.objectName.startsWith('arn:'))
      checkName(raw.objectName, 'secretsmanager', 'objectName', problems);
    else {
      problems.push({
        field: 'objectType',
        message:
          'objectType is required unless objectName is an ARN; expected "secretsmanager" or "ssmparameter"',
      });
    }
    return undefined;
  }
  const arn = checkName(raw.objectName, objectType, 'objectName', problems);
  if (arn && top.region !== undefined && arn.region !== top.region) {
    problems.push({
      field: 'objectName',
      message: `objectName is an ARN in ${arn.region}; expected one in region ${top.region} (ASCP refuses the mismatch too)`,
    });
  }
  checkVersions(objectType, '', raw.objectVersion, raw.objectVersionLabel, problems);

  const jmesPath: JmesPathEntry[] = [];
  for (const [position, entry] of (raw.jmesPath ?? []).entries()) {
    const field = `jmesPath[${position}].path`;
    const plain = parseFieldPath(entry.path);
    if (!plain.ok && !options.allowExpressions) {
      problems.push({ field, message: notPlainFieldPath(field, plain.at) });
    } else if (!plain.ok && entry.path.length > maxExpressionLength) {
      problems.push({
        field,
        message: `${field} is an expression of ${entry.path.length} characters; expected at most ${maxExpressionLength}`,
      });
    } else if (!plain.ok) {
      try {
        compile(entry.path);
      } catch (error) {
        const reason = error instanceof Error ? error.message : 'unreadable';
        problems.push({ field, message: `${field} is not a valid JMESPath expression: ${reason}` });
      }
    }
    jmesPath.push({
      path: entry.path,
      objectAlias: entry.objectAlias,
      ...(entry.filePermission === undefined ? {} : { filePermission: entry.filePermission }),
    });
  }

  let failoverObject: FailoverObject | undefined;
  const failover = raw.failoverObject;
  if (failover != null) {
    if (top.failoverRegion === undefined) {
      problems.push({
        field: 'failoverObject',
        message:
          'failoverObject is set but the spec has no failoverRegion; expected failoverRegion next to region',
      });
    }
    if (raw.objectAlias == null) {
      problems.push({
        field: 'objectAlias',
        message:
          'objectAlias is required when failoverObject is set, so the file name does not depend on the region that answered',
      });
    }
    const failoverArn = checkName(failover.objectName, objectType, 'failoverObject.objectName', problems);
    if (!failover.objectName.startsWith('arn:') && raw.objectType == null) {
      // ASCP takes the type from the object's own name only: a plain failover name has none.
      problems.push({
        field: 'objectType',
        message:
          'objectType is required when failoverObject.objectName is not an ARN; expected "secretsmanager" or "ssmparameter"',
      });
    }
    if (failoverArn && top.failoverRegion !== undefined && failoverArn.region !== top.failoverRegion) {
      problems.push({
        field: 'failoverObject.objectName',
        message: `failoverObject.objectName is an ARN in ${failoverArn.region}; expected one in failoverRegion ${top.failoverRegion}`,
      });
    }
    checkVersions(
      objectType,
      'failoverObject.',
      failover.objectVersion,
      failover.objectVersionLabel,
      problems,
    );
    if ((failover.objectVersion ?? undefined) !== (raw.objectVersion ?? undefined)) {
      problems.push({
        field: 'failoverObject.objectVersion',
        message:
          'failoverObject.objectVersion must equal objectVersion (replicas share version ids); expected both unset or the same',
      });
    }
    failoverObject = {
      objectName: failover.objectName,
      ...(failover.objectVersion == null ? {} : { objectVersion: failover.objectVersion }),
      ...(failover.objectVersionLabel == null ? {} : { objectVersionLabel: failover.objectVersionLabel }),
    };
  } else if (arn && top.failoverRegion !== undefined) {
    problems.push({
      field: 'failoverObject',
      message: `objectName is an ARN in ${arn.region}, which cannot be read in failoverRegion ${top.failoverRegion}; expected a failoverObject naming the failover copy`,
    });
  }
  if (arn && top.failoverRegion !== undefined && arn.region === top.failoverRegion) {
    problems.push({
      field: 'objectName',
      message: `objectName is an ARN in failoverRegion ${top.failoverRegion}; expected the primary copy in another region`,
    });
  }

  return {
    index,
    objectName: raw.objectName,
    objectType,
    ...(arn ? { arnRegion: arn.region } : {}),
    ...(raw.objectAlias == null ? {} : { objectAlias: raw.objectAlias }),
    ...(raw.objectVersion == null ? {} : { objectVersion: raw.objectVersion }),
    ...(raw.objectVersionLabel == null ? {} : { objectVersionLabel: raw.objectVersionLabel }),
    ...(raw.filePermission === undefined ? {} : { filePermission: raw.filePermission }),
    jmesPath,
    ...(failoverObject ? { failoverObject } : {}),
  };
}

function parsePathTranslation(value: string | undefined, problems: Problem[]): PathTranslation {
  if (value === undefined || value === '') return '_';
  const lower = value.toLowerCase();
  if (lower === 'false') return false;
  const characters = [...value];
  if (characters.length !== 1 || value === '.' || value === '/' || value === '\0') {
    problems.push({
      field: 'pathTranslation',
      message: `pathTranslation must be "False" or one character other than ".", "/" and NUL (ASCP refuses "True" too), got ${JSON.stringify(value)}`,
    });
    return '_';
  }
  return value;
}

function parseRegion(field: string, value: string | undefined, problems: Problem[]): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!isAwsRegion(value)) {
    problems.push({
      field,
      message: `${field} must be ${awsRegionExpectation}, got ${JSON.stringify(value)}`,
    });
    return undefined;
  }
  return value;
}

function fail(subject: string, problems: readonly Problem[]): never {
  const shown = problems.slice(0, maxReportedProblems).map((problem) => problem.message);
  if (problems.length > maxReportedProblems) shown.push(`and ${problems.length - maxReportedProblems} more`);
  throw new InvalidInputError(`${subject}: ${shown.join('; ')}`, {
    subject,
    ...(problems[0] ? { field: problems[0].field } : {}),
  });
}

/**
 * Validates a whole mount spec. Throws one InvalidInputError listing every problem, each naming
 * the object (`objects[1] (db)`), the field and what was expected; never a secret value. Unknown
 * fields are ignored, as ASCP ignores them, and listed in `ignoredFields` for the role to warn. A
 * jmesPath path that is not a plain field path is refused unless `options.allowExpressions`.
 */
export function parseMountSpec(params: MountParams, subject: string, options: SpecOptions = {}): MountSpec {
  const rawObjects =
    typeof params.objects === 'string' ? parseObjectsText(params.objects, subject) : params.objects;
  const problems: Problem[] = [];
  const region = parseRegion('region', params.region, problems);
  const failoverRegion = parseRegion('failoverRegion', params.failoverRegion, problems);
  if (region !== undefined && region === failoverRegion) {
    problems.push({
      field: 'failoverRegion',
      message: `failoverRegion must differ from region (both are ${region})`,
    });
  }
  const pathTranslation = parsePathTranslation(params.pathTranslation, problems);
  if (rawObjects.length === 0) {
    problems.push({ field: 'objects', message: 'objects lists no objects; expected at least one' });
  }
  if (problems.length > 0) fail(subject, problems);

  const top: TopLevel = { region, failoverRegion };
  const objects: ObjectSpec[] = [];
  const ignoredFields: string[] = [];
  for (const [index, raw] of rawObjects.entries()) {
    const label = objectLabel(index, raw);
    const here: Problem[] = [];
    const result = objectSchema.safeParse(raw);
    const object = result.success ? buildObject(index, result.data, top, options, here) : undefined;
    if (!result.success) here.push(...result.error.issues.map(describeIssue));
    else ignoredFields.push(...ignoredFieldsOf(index, raw));
    for (const problem of here)
      problems.push({ field: problem.field, message: `${label}: ${problem.message}` });
    if (object && here.length === 0) objects.push(object);
  }
  if (problems.length > 0) fail(subject, problems);

  const files: NamedFile[] = [];
  for (const object of objects) {
    const origin = objectLabel(object.index, object);
    files.push({
      name: objectFileName(object, pathTranslation),
      origin,
      field: object.objectAlias === undefined ? 'objectName' : 'objectAlias',
    });
    for (const [position, entry] of object.jmesPath.entries()) {
      files.push({
        name: jmesPathFileName(entry, pathTranslation),
        origin,
        field: `jmesPath[${position}].objectAlias`,
      });
    }
  }
  for (const file of files) {
    const reason = unsafeNameReason(file.name);
    if (reason !== undefined) {
      problems.push({
        field: file.field,
        message: `${file.origin}: ${file.field} gives file name ${JSON.stringify(file.name)}, which ${reason}; expected a relative name inside the target directory`,
      });
    }
  }
  if (problems.length === 0) {
    problems.push(...nameConflicts(files));
  }
  if (problems.length > 0) fail(subject, problems);

  return {
    objects,
    ...(region === undefined ? {} : { region }),
    ...(failoverRegion === undefined ? {} : { failoverRegion }),
    pathTranslation,
    ignoredFields:
      ignoredFields.length > maxReportedProblems
        ? [
            ...ignoredFields.slice(0, maxReportedProblems),
            `and ${ignoredFields.length - maxReportedProblems} more`,
          ]
        : ignoredFields,
  };
}
