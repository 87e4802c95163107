/**
 * Flag parsing for every command: node:util parseArgs, with its errors (unknown flag, missing
 * value) turned into InvalidInputError so the user sees which flag was wrong and the usage hint.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { InvalidInputError } from '../core/errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<const T extends Options>(
  command: string,
  args: readonly string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>> {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (error) {
    // parseArgs messages quote only the flag the user typed, never a value read from elsewhere.
    const reason = error instanceof Error ? error.message : 'invalid arguments';
    throw new InvalidInputError(`smk ${command}: ${reason} (see smk ${command} --help)`, {
      subject: `smk ${command}`,
    });
  }
}
