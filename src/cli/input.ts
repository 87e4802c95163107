/**
 * Files named on the command line ("-" is stdin): read once, and when they cannot be read the
 * message says which flag, which file and why (not a bare system error from deep inside).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { InvalidInputError } from '../core/errors.ts';
import { usageError } from './args.ts';
import { systemErrorReason } from './errors.ts';

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * "smk fetch: --objects /x: no such file or directory (ENOENT)": the flag, the path, the reason.
 * An error that is not a file system one is passed through as it is.
 */
export function unreadable(command: string, flag: string, path: string, error: unknown): unknown {
  const reason = systemErrorReason(error);
  if (reason === undefined) return error;
  return new InvalidInputError(`smk ${command}: ${flag} ${path}: ${reason}`, {
    subject: path,
    field: flag,
    cause: error,
  });
}

/** One file's text, or stdin's for "-". A directory is refused with the flag named. */
export async function readTextArgument(command: string, flag: string, source: string): Promise<string> {
  if (source === '-') return readStdin();
  try {
    return await readFile(source, 'utf8');
  } catch (error) {
    throw unreadable(command, flag, source, error);
  }
}

const manifestExtensions = new Set(['.yaml', '.yml', '.json']);

/**
 * The files of a -f argument, as kubectl takes them: a file as it is; a directory's .yaml, .yml
 * and .json files, recursively, in path order (so output is the same from run to run).
 */
export async function manifestFiles(command: string, flag: string, source: string): Promise<string[]> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(source)).isDirectory();
  } catch (error) {
    throw unreadable(command, flag, source, error);
  }
  if (!isDirectory) return [source];
  let entries: string[];
  try {
    entries = await readdir(source, { recursive: true });
  } catch (error) {
    throw unreadable(command, flag, source, error);
  }
  const files: string[] = [];
  for (const entry of entries.sort()) {
    if (!manifestExtensions.has(extname(entry).toLowerCase())) continue;
    const path = join(source, entry);
    // A directory named x.yaml, or a dangling link, is not a manifest.
    if (
      await stat(path).then(
        (found) => found.isFile(),
        () => false,
      )
    )
      files.push(path);
  }
  if (files.length === 0) {
    throw new InvalidInputError(
      `smk ${command}: ${flag} ${source}: no .yaml, .yml or .json files in this directory`,
      {
        subject: source,
        field: flag,
      },
    );
  }
  return files;
}

export interface ManifestSource {
  /** The file's path, or "stdin". */
  readonly name: string;
  readonly text: string;
}

/** The texts of every -f argument (files, directories, "-" once), in order: what `smk inject` and `smk convert` read. */
export async function readManifestSources(
  command: string,
  arguments_: readonly string[],
): Promise<ManifestSource[]> {
  if (arguments_.filter((source) => source === '-').length > 1) {
    throw usageError(command, '-f - (stdin) may be given once', '--filename');
  }
  const sources: ManifestSource[] = [];
  for (const argument of arguments_) {
    if (argument === '-') {
      sources.push({ name: 'stdin', text: await readStdin() });
      continue;
    }
    for (const file of await manifestFiles(command, '-f', argument)) {
      sources.push({ name: file, text: await readTextArgument(command, '-f', file) });
    }
  }
  return sources;
}
