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
import { maxDiscoverEntries, maxDiscoveryListed } from './discovery.ts';
import { InvalidInputError } from './errors.ts';
import {
  jmesPathFileName,
  type NamedFile,
  nameConflicts,
  objectFileName,
  unsafeNameReason,
} from './naming.ts';
import { awsRegionExpectation, isAwsRegion } from './regions.ts';
import { buildObject, type Problem, type SpecOptions, type TopLevel } from './spec-object.ts';
import {
  describeIssue,
  ignoredFieldsOf,
  objectLabel,
  objectSchema,
  parseObjectsText,
} from './spec-schema.ts';
import type { MountSpec, ObjectSpec, PathTranslation } from './spec-types.ts';

export type { SpecOptions } from './spec-object.ts';
export { parseObjectsText } from './spec-schema.ts';

/** SecretProviderClass-style parameters; callers pass only these fields of their input. */
export interface MountParams {
  readonly objects: string | readonly unknown[];
  readonly region?: string | undefined;
  readonly failoverRegion?: string | undefined;
  readonly pathTranslation?: string | undefined;
}

/** At most this many problems are listed in one error; the rest are counted. */
const maxReportedProblems = 10;

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
  const discovering = objects.filter((object) => object.discover !== undefined).length;
  if (discovering > maxDiscoverEntries) {
    problems.push({
      field: 'objects',
      message: `objects has ${discovering} discover entries; expected at most ${maxDiscoverEntries} (each may list up to ${maxDiscoveryListed} objects per refresh)`,
    });
  }
  if (problems.length > 0) fail(subject, problems);

  const files: NamedFile[] = [];
  for (const object of objects) {
    const origin = objectLabel(object.index, object);
    // An extractKeys or discover object's names are known only once read (payloads.ts checks them).
    if (object.extractKeys === undefined && object.discover === undefined) {
      files.push({
        name: objectFileName(object, pathTranslation),
        origin,
        field: object.objectAlias === undefined ? 'objectName' : 'objectAlias',
      });
    }
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
