/**
 * Writes a set of payloads so a reader never sees a mix of old and new, the way the
 * Kubernetes/CSI AtomicWriter does:
 *
 *   dir/..2025_01_02_03_04_05.123.AbCdEf/   every file of one version, written once, never changed
 *   dir/..data -> ..2025_01_02_...          swapped by rename(2) of a temporary symlink
 *   dir/<name> -> ..data/<name>             user-visible names (top-level segment of nested names)
 *
 * A reader that resolves `..data` once sees one complete version; every open of a visible name
 * sees one complete file. One writer per directory (the caller serialises). No fsync: targets
 * are memory-backed (emptyDir medium Memory, CSI tmpfs), as for the Kubernetes writer.
 */
import { randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InvalidInputError } from './errors.ts';
import { assertSafeRelativeName, nameConflicts } from './naming.ts';
import type { Payload } from './spec-types.ts';

const dataLink = '..data';
const dataLinkTemp = '..data_tmp';
const directoryMode = 0o755;

export interface WriteResult {
  /** False when the directory already held exactly these files with these modes. */
  readonly changed: boolean;
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

const topSegment = (name: string): string => name.split('/')[0] ?? name;

function validate(dir: string, payloads: readonly Payload[]): void {
  const subject = `writing ${dir}`;
  for (const payload of payloads) {
    assertSafeRelativeName(payload.name, subject, 'name');
    if (!Number.isInteger(payload.mode) || payload.mode < 0 || payload.mode > 0o777) {
      throw new InvalidInputError(
        `${subject}: ${payload.name} has mode ${String(payload.mode)}; expected permission bits 0000–0777`,
        { subject, field: 'mode' },
      );
    }
  }
  const conflicts = nameConflicts(payloads.map((p) => ({ name: p.name, origin: subject, field: 'payload' })));
  if (conflicts[0]) throw new InvalidInputError(conflicts[0].message, { subject, field: 'name' });
}

async function currentVersionDir(dir: string): Promise<string | undefined> {
  try {
    return await readlink(join(dir, dataLink));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    if (isErrno(error, 'EINVAL')) {
      throw new InvalidInputError(
        `writing ${dir}: ${dataLink} exists but is not a symlink; expected a directory smk manages`,
        {
          subject: `writing ${dir}`,
          field: dataLink,
        },
      );
    }
    throw error;
  }
}

/** True when `versionDir` holds exactly these files, bytes and modes. */
async function holdsExactly(versionDir: string, payloads: readonly Payload[]): Promise<boolean> {
  let entries: string[];
  try {
    const listed = await readdir(versionDir, { recursive: true, withFileTypes: true });
    entries = listed
      .filter((entry) => !entry.isDirectory())
      .map((entry) => join(entry.parentPath, entry.name));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
  if (entries.length !== payloads.length) return false;
  const expected = new Set(payloads.map((p) => join(versionDir, p.name)));
  if (!entries.every((entry) => expected.has(entry))) return false;
  for (const payload of payloads) {
    const path = join(versionDir, payload.name);
    const stats = await lstat(path);
    if (!stats.isFile() || (stats.mode & 0o7777) !== payload.mode) return false;
    if (!Buffer.from(payload.bytes).equals(await readFile(path))) return false;
  }
  return true;
}

/** Top-level names that are links into ..data (ours), and refusal of anything else in their way. */
async function checkVisibleNames(dir: string, wanted: ReadonlySet<string>): Promise<Set<string>> {
  const linked = new Set<string>();
  for (const name of wanted) {
    let target: string;
    try {
      target = await readlink(join(dir, name));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue;
      if (isErrno(error, 'EINVAL')) {
        throw new InvalidInputError(
          `writing ${dir}: ${name} exists and was not written by smk; expected an empty directory or one smk manages`,
          { subject: `writing ${dir}`, field: name },
        );
      }
      throw error;
    }
    if (target !== `${dataLink}/${name}`) {
      throw new InvalidInputError(
        `writing ${dir}: ${name} is a symlink smk did not make; expected an empty directory or one smk manages`,
        { subject: `writing ${dir}`, field: name },
      );
    }
    linked.add(name);
  }
  return linked;
}

function timestamp(now: Date): string {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}.${pad(now.getUTCMilliseconds(), 3)}`;
}

async function writeVersionDir(dir: string, payloads: readonly Payload[]): Promise<string> {
  const name = `..${timestamp(new Date())}.${randomBytes(6).toString('base64url')}`;
  const versionDir = join(dir, name);
  await mkdir(versionDir, { mode: directoryMode });
  try {
    // Explicit chmod after every create: the process umask must not change requested modes.
    await chmod(versionDir, directoryMode);
    const made = new Set<string>();
    for (const payload of payloads) {
      const path = join(versionDir, payload.name);
      const parent = dirname(path);
      if (parent !== versionDir && !made.has(parent)) {
        const first = await mkdir(parent, { recursive: true, mode: directoryMode });
        for (let d = parent; first !== undefined && d.length >= first.length; d = dirname(d)) {
          await chmod(d, directoryMode);
        }
        made.add(parent);
      }
      await writeFile(path, payload.bytes, { mode: payload.mode, flag: 'wx' });
      await chmod(path, payload.mode);
    }
    return name;
  } catch (error) {
    await rm(versionDir, { recursive: true, force: true });
    throw error;
  }
}

async function linkVisibleNames(
  dir: string,
  wanted: ReadonlySet<string>,
  linked: ReadonlySet<string>,
): Promise<boolean> {
  let created = false;
  for (const name of wanted) {
    if (linked.has(name)) continue;
    await symlink(`${dataLink}/${name}`, join(dir, name));
    created = true;
  }
  return created;
}

/** Removes visible links into ..data whose names the new set no longer has. */
async function unlinkStaleNames(dir: string, wanted: ReadonlySet<string>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('..') || wanted.has(entry.name) || !entry.isSymbolicLink()) continue;
    const target = await readlink(join(dir, entry.name));
    if (target === `${dataLink}/${entry.name}`) await rm(join(dir, entry.name), { force: true });
  }
}

/**
 * Makes `dir` show exactly `payloads`: a new version directory, one atomic swap of `..data`,
 * then visible links added, stale ones and the old version removed. Writing the same files
 * and modes again touches nothing and returns `{ changed: false }`.
 */
export async function writePayloadsAtomically(
  dir: string,
  payloads: readonly Payload[],
): Promise<WriteResult> {
  validate(dir, payloads);
  await mkdir(dir, { recursive: true });
  const wanted = new Set(payloads.map((p) => topSegment(p.name)));
  const previous = await currentVersionDir(dir);
  const linked = await checkVisibleNames(dir, wanted);

  if (previous !== undefined && (await holdsExactly(join(dir, previous), payloads))) {
    const repaired = await linkVisibleNames(dir, wanted, linked);
    return { changed: repaired };
  }

  const next = await writeVersionDir(dir, payloads);
  const temp = join(dir, dataLinkTemp);
  try {
    await rm(temp, { force: true });
    await symlink(next, temp);
    await rename(temp, join(dir, dataLink));
  } catch (error) {
    await rm(join(dir, next), { recursive: true, force: true });
    throw error;
  }
  await linkVisibleNames(dir, wanted, linked);
  await unlinkStaleNames(dir, wanted);
  if (previous !== undefined && previous !== next && previous.startsWith('..')) {
    await rm(join(dir, previous), { recursive: true, force: true });
  }
  return { changed: true };
}
