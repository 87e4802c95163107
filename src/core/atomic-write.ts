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
 *
 * The directory may be writable by others (an emptyDir is 0777; a pod's other containers share
 * it), so nothing found in it is trusted: `..data` must point at a version directory name smk
 * makes, which must be a real directory; nothing is ever followed out of the directory or
 * removed outside it. On Linux every step goes through a descriptor of the opened directory
 * (`/proc/self/fd/N/name`, the openat(2) discipline), so a link swapped in by name mid-way is
 * not followed either; elsewhere the same checks run by path.
 */
import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import {
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rmdir,
  symlink,
  unlink,
} from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError } from './errors.ts';
import { assertSafeRelativeName, nameConflicts } from './naming.ts';
import type { Payload } from './spec-types.ts';

const dataLink = '..data';
const dataLinkTemp = '..data_tmp';
const directoryMode = 0o755;
/** The names writeVersionDir gives: nothing else is ever taken for a version directory. */
const versionDirPattern = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d{3}\.[A-Za-z0-9_-]{8}$/;
const openDirectoryFlags = constants.O_RDONLY | constants.O_DIRECTORY;
/** Linux: a path under /proc/self/fd/N resolves from the open directory itself, like openat(2). */
const descriptorPaths = existsSync('/proc/self/fd');

export interface WriteResult {
  /** False when the directory already held exactly these files with these modes. */
  readonly changed: boolean;
}

function isErrno(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

const topSegment = (name: string): string => name.split('/')[0] ?? name;

/** An open directory: `at(name)` addresses an entry through the descriptor (Linux) or by path. */
interface OpenDirectory {
  /** The path as the caller knows it, for messages. */
  readonly shown: string;
  at(name: string): string;
  chmod(mode: number): Promise<void>;
  close(): Promise<void>;
}

function directoryOn(handle: FileHandle, shown: string): OpenDirectory {
  const base = descriptorPaths ? `/proc/self/fd/${handle.fd}` : shown;
  return {
    shown,
    at: (name) => (name === '' ? base : join(base, name)),
    chmod: (mode) => handle.chmod(mode),
    close: () => handle.close(),
  };
}

function refuse(dir: string, field: string, why: string): never {
  throw new InvalidInputError(`writing ${dir}: ${why}`, { subject: `writing ${dir}`, field });
}

/**
 * Opens the target directory (made if missing). The path is the caller's and may pass through
 * links, but a last component that is a link someone else owns is refused, as the kernel's
 * protected_symlinks does in sticky directories: it could send secrets anywhere.
 */
async function openTarget(dir: string): Promise<OpenDirectory> {
  await mkdir(dir, { recursive: true, mode: directoryMode });
  const stats = await lstat(dir);
  const me = process.getuid?.();
  if (stats.isSymbolicLink() && me !== undefined && stats.uid !== me && stats.uid !== 0) {
    refuse(
      dir,
      'dir',
      `${dir} is a symlink owned by uid ${stats.uid}, not by this user; refusing to follow it`,
    );
  }
  return directoryOn(await open(dir, openDirectoryFlags), dir);
}

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

/**
 * The version directory `..data` names, checked: a link to a name smk makes that is a real
 * directory here. Anything else is refused, never followed and never removed (a planted
 * `..data -> ../home` once made the old-version cleanup delete ../home).
 */
async function currentVersionDir(dir: OpenDirectory): Promise<string | undefined> {
  const shown = join(dir.shown, dataLink);
  let target: string;
  try {
    target = await readlink(dir.at(dataLink));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    if (isErrno(error, 'EINVAL')) {
      refuse(dir.shown, dataLink, `${shown} exists but is not a symlink; expected a directory smk manages`);
    }
    throw error;
  }
  if (!versionDirPattern.test(target)) {
    refuse(
      dir.shown,
      dataLink,
      `${shown} points to ${JSON.stringify(target)}, not to a version directory smk makes; refusing to follow or remove it`,
    );
  }
  const stats = await lstat(dir.at(target)).catch((error: unknown) => {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  });
  // A dangling ..data (its version removed) is replaced like a missing one.
  if (stats === undefined) return undefined;
  if (!stats.isDirectory()) {
    refuse(
      dir.shown,
      dataLink,
      `${join(dir.shown, target)} (where ${dataLink} points) is not a directory smk made; refusing to follow or remove it`,
    );
  }
  return target;
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
async function checkVisibleNames(dir: OpenDirectory, wanted: ReadonlySet<string>): Promise<Set<string>> {
  const linked = new Set<string>();
  for (const name of wanted) {
    let target: string;
    try {
      target = await readlink(dir.at(name));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue;
      if (isErrno(error, 'EINVAL')) {
        refuse(
          dir.shown,
          name,
          `${name} exists and was not written by smk; expected an empty directory or one smk manages`,
        );
      }
      throw error;
    }
    if (target !== `${dataLink}/${name}`) {
      refuse(
        dir.shown,
        name,
        `${name} is a symlink smk did not make; expected an empty directory or one smk manages`,
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

/** Opens an entry of `parent` as a directory without following a link in its place. */
async function openChild(parent: OpenDirectory, name: string): Promise<OpenDirectory> {
  return directoryOn(
    await open(parent.at(name), openDirectoryFlags | constants.O_NOFOLLOW),
    join(parent.shown, name),
  );
}

/** Creates a file that did not exist (O_EXCL: never through a link) with exactly `mode`. */
async function createFile(path: string, payload: Payload): Promise<void> {
  const file = await open(path, 'wx', payload.mode);
  try {
    // Explicit chmod after every create: the process umask must not change requested modes.
    await file.chmod(payload.mode);
    await file.writeFile(payload.bytes);
  } finally {
    await file.close();
  }
}

/** Makes a directory entry of `parent` with exactly `directoryMode`, whatever the umask. */
async function makeDirectory(parent: OpenDirectory, name: string): Promise<void> {
  await mkdir(parent.at(name), { mode: directoryMode });
  const made = await openChild(parent, name);
  await made.chmod(directoryMode).finally(() => made.close());
}

async function writeVersionDir(dir: OpenDirectory, payloads: readonly Payload[]): Promise<string> {
  const name = `..${timestamp(new Date())}.${randomBytes(6).toString('base64url')}`;
  await makeDirectory(dir, name);
  try {
    const version = await openChild(dir, name);
    try {
      const made = new Set<string>();
      for (const payload of payloads) {
        // Directories of nested names, top down, each made here and so ours.
        const parts = payload.name.split('/').slice(0, -1);
        for (let depth = 1; depth <= parts.length; depth++) {
          const sub = parts.slice(0, depth).join('/');
          if (made.has(sub)) continue;
          await makeDirectory(version, sub);
          made.add(sub);
        }
        await createFile(version.at(payload.name), payload);
      }
    } finally {
      await version.close();
    }
    return name;
  } catch (error) {
    await removeTree(dir, name);
    throw error;
  }
}

/**
 * Removes the directory `name` of `parent` and everything in it without following any link: the
 * directory is opened with O_NOFOLLOW and emptied through its descriptor. A link found in its
 * place is only unlinked.
 */
async function removeTree(parent: OpenDirectory, name: string): Promise<void> {
  let tree: OpenDirectory;
  try {
    tree = await openChild(parent, name);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    if (isErrno(error, 'ELOOP', 'ENOTDIR')) {
      await unlink(parent.at(name)).catch(() => undefined);
      return;
    }
    throw error;
  }
  try {
    for (const entry of await readdir(tree.at(''), { withFileTypes: true })) {
      if (entry.isDirectory()) await removeTree(tree, entry.name);
      else await unlink(tree.at(entry.name));
    }
  } finally {
    await tree.close();
  }
  await rmdir(parent.at(name));
}

async function linkVisibleNames(
  dir: OpenDirectory,
  wanted: ReadonlySet<string>,
  linked: ReadonlySet<string>,
): Promise<boolean> {
  let created = false;
  for (const name of wanted) {
    if (linked.has(name)) continue;
    await symlink(`${dataLink}/${name}`, dir.at(name));
    created = true;
  }
  return created;
}

/** Removes visible links into ..data whose names the new set no longer has (the links, never their targets). */
async function unlinkStaleNames(dir: OpenDirectory, wanted: ReadonlySet<string>): Promise<void> {
  for (const entry of await readdir(dir.at(''), { withFileTypes: true })) {
    if (entry.name.startsWith('..') || wanted.has(entry.name) || !entry.isSymbolicLink()) continue;
    const target = await readlink(dir.at(entry.name));
    if (target === `${dataLink}/${entry.name}`) await unlink(dir.at(entry.name)).catch(() => undefined);
  }
}

/** Clears a leftover `..data_tmp` (an interrupted swap): a link is unlinked; anything else is not ours. */
async function clearTempLink(dir: OpenDirectory): Promise<void> {
  const stats = await lstat(dir.at(dataLinkTemp)).catch((error: unknown) => {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  });
  if (stats === undefined) return;
  if (!stats.isSymbolicLink()) {
    refuse(dir.shown, dataLinkTemp, `${join(dir.shown, dataLinkTemp)} exists but is not a symlink smk made`);
  }
  await unlink(dir.at(dataLinkTemp));
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
  const target = await openTarget(dir);
  try {
    const wanted = new Set(payloads.map((p) => topSegment(p.name)));
    const previous = await currentVersionDir(target);
    const linked = await checkVisibleNames(target, wanted);

    if (previous !== undefined && (await holdsExactly(target.at(previous), payloads))) {
      const repaired = await linkVisibleNames(target, wanted, linked);
      return { changed: repaired };
    }

    await clearTempLink(target);
    const next = await writeVersionDir(target, payloads);
    try {
      await symlink(next, target.at(dataLinkTemp));
      await rename(target.at(dataLinkTemp), target.at(dataLink));
    } catch (error) {
      await removeTree(target, next);
      throw error;
    }
    await linkVisibleNames(target, wanted, linked);
    await unlinkStaleNames(target, wanted);
    if (previous !== undefined && previous !== next) await removeTree(target, previous);
    return { changed: true };
  } finally {
    await target.close();
  }
}
