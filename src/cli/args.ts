/**
 * Flag parsing for every command: node:util parseArgs, with its refusals (unknown flag, a flag
 * without its value, an argument the command does not take) turned into UsageError, which names the
 * flag as the user typed it and exits with the usage code, as an unknown command does.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { InvalidInputError } from '../core/errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The exit code of a wrong command line (unknown command or flag, bad or missing flag value). */
export const usageExitCode = 2;

/** The command line itself is wrong. Its message names the flag or argument and says where help is. */
export class UsageError extends InvalidInputError {}

export function usageError(command: string, problem: string, field?: string): UsageError {
  return new UsageError(`smk ${command}: ${problem} (see smk ${command} --help)`, {
    subject: `smk ${command}`,
    ...(field === undefined ? {} : { field }),
  });
}

/**
 * What is wrong with a command line strict parsing refused, found from parseArgs' own tokens (not
 * its message text): the first flag that is unknown, lacks its value, or has a value it does not take.
 */
function problemOf(args: readonly string[], options: Options): { problem: string; field?: string } {
  const { tokens } = parseArgs({
    args: [...args],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    if (option === undefined) return { problem: `unknown flag ${token.rawName}`, field: token.rawName };
    if (option.type === 'string' && token.value === undefined) {
      return { problem: `flag ${token.rawName} needs a value`, field: token.rawName };
    }
    if (option.type === 'boolean' && token.value !== undefined) {
      return { problem: `flag ${token.rawName} takes no value`, field: token.rawName };
    }
  }
  return { problem: 'unreadable arguments' };
}

/**
 * Parses a command's flags. `positionals` is how many plain arguments the command takes (default
 * none): an extra one is refused rather than silently ignored (`smk inject app.yaml` without -f).
 */
export function parseCommandArgs<const T extends Options>(
  command: string,
  args: readonly string[],
  options: T,
  positionals = 0,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>> {
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>
  >;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch {
    // Flags carry names and references, never a secret value, so quoting the flag is safe.
    const { problem, field } = problemOf(args, options);
    throw usageError(command, problem, field);
  }
  const extra = parsed.positionals[positionals];
  if (extra !== undefined) throw usageError(command, `unexpected argument "${extra}"`);
  return parsed;
}

/**
 * Runs a flag check that lives beside the code it configures (it throws InvalidInputError naming
 * the flag), so that its refusal is a usage error too.
 */
export function checkFlags<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof InvalidInputError && !(error instanceof UsageError)) {
      throw new UsageError(error.message, {
        ...(error.subject === undefined ? {} : { subject: error.subject }),
        ...(error.field === undefined ? {} : { field: error.field }),
      });
    }
    throw error;
  }
}
