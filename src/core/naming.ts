/**
 * File names for spec objects, and the one check that keeps every produced name inside the
 * target directory.
 *
 * Naming follows the AWS CSI provider (ASCP): the name is objectAlias, else objectName (an ARN
 * stays whole, colons included). pathTranslation is applied to aliases too, as ASCP does: every
 * `/` becomes the translation character. When translation is off, `/` makes sub-directories
 * and a leading `/` is dropped (SSM names like `/prod/db` → `prod/db`).
 */
import { InvalidInputError } from './errors.ts';
import type { JmesPathEntry, ObjectSpec, PathTranslation } from './spec-types.ts';

/** Linux NAME_MAX: a longer segment fails at write time with ENAMETOOLONG, so refuse it at parse time. */
const maxSegmentBytes = 255;

export function translatePath(name: string, pathTranslation: PathTranslation): string {
  if (pathTranslation === false) return name.replace(/^\/+/, '');
  return name.replaceAll('/', pathTranslation);
}

/** The whole-value file of an object. */
export function objectFileName(object: ObjectSpec, pathTranslation: PathTranslation): string {
  return translatePath(object.objectAlias ?? object.objectName, pathTranslation);
}

export function jmesPathFileName(entry: JmesPathEntry, pathTranslation: PathTranslation): string {
  return translatePath(entry.objectAlias, pathTranslation);
}

/**
 * The one rule for names made from a JSON value's keys (extractKeys), the same in every role so a
 * spec gives the same names as files and as Secret keys: a valid Secret key (letters, digits, "-",
 * "_", "."; at most 253), not "." or "..", and not starting with ".." (the atomic writer's).
 */
export function isExtractedKeyName(name: string): boolean {
  return /^[-._a-zA-Z0-9]{1,253}$/.test(name) && name !== '.' && !name.startsWith('..');
}

/** Why `name` cannot be a file inside the target directory, or undefined when it can. */
export function unsafeNameReason(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.includes('\0')) return 'contains a NUL character';
  if (name.startsWith('/')) return 'is an absolute path';
  const segments = name.split('/');
  for (const segment of segments) {
    if (segment === '..') return 'contains a ".." segment';
    if (segment === '.') return 'contains a "." segment';
    if (segment === '') return 'contains an empty path segment';
    if (Buffer.byteLength(segment) > maxSegmentBytes) {
      return `has a path segment longer than ${maxSegmentBytes} bytes`;
    }
  }
  // The atomic writer keeps its own entries (..data, ..<timestamp>) beside the user's files.
  if (segments[0]?.startsWith('..')) return 'starts with "..", which is reserved for the atomic writer';
  return undefined;
}

/**
 * Throws InvalidInputError unless `name` is a relative path that stays inside the target
 * directory (no `..`, `.` or empty segment, not absolute, no NUL, no reserved `..` prefix).
 */
export function assertSafeRelativeName(name: string, subject: string, field: string): void {
  const reason = unsafeNameReason(name);
  if (reason === undefined) return;
  throw new InvalidInputError(
    `${subject}: ${field} gives file name ${JSON.stringify(name)}, which ${reason}; expected a relative name inside the target directory`,
    { subject, field },
  );
}

/** One produced file name and where in the spec it came from (for error messages). */
export interface NamedFile {
  readonly name: string;
  /** e.g. `objects[1] (db)`. */
  readonly origin: string;
  /** e.g. `objectAlias` or `jmesPath[0].objectAlias`. */
  readonly field: string;
}

/**
 * Problems in a set of names: two files with one name, or a name used both as a file and as
 * the directory of another (`a` and `a/b`). Returned as messages naming both origins.
 */
export function nameConflicts(files: readonly NamedFile[]): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  const byName = new Map<string, NamedFile>();
  for (const file of files) {
    const earlier = byName.get(file.name);
    if (earlier) {
      problems.push({
        field: file.field,
        message: `${file.origin}: ${file.field} gives file name ${JSON.stringify(file.name)}, already used by ${earlier.origin} ${earlier.field}; expected unique file names`,
      });
    } else {
      byName.set(file.name, file);
    }
  }
  for (const file of files) {
    const segments = file.name.split('/');
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/');
      const clash = byName.get(parent);
      if (clash) {
        problems.push({
          field: file.field,
          message: `${file.origin}: ${file.field} gives file name ${JSON.stringify(file.name)}, which needs ${JSON.stringify(parent)} as a directory, but ${clash.origin} ${clash.field} writes a file there`,
        });
        break;
      }
    }
  }
  return problems;
}
