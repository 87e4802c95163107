#!/usr/bin/env node
/**
 * `smk <command>`: one binary for every role. Each command module is imported only when used, so a
 * one-shot command like `smk fetch` does not pay for the Kubernetes client or gRPC at start.
 */
import { enableCompileCache } from 'node:module';
import { describeError, isSmkError } from '../core/errors.ts';
import { type CommandName, commands } from './commands.ts';

// V8's code cache on disk makes every later start skip compiling the bundle (a no-op where the
// cache directory is not writable, e.g. a read-only root file system without a writable tmp).
enableCompileCache?.();

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(
    ([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`,
  );
  return [
    'smk — AWS Secrets Manager as the source of truth for Kubernetes secrets',
    '',
    'Usage: smk <command> [options]   (smk <command> --help for its options)',
    '',
    'Commands:',
    ...lines,
    '',
  ].join('\n');
}

function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(commands, name);
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') return main(['version']);
  if (!isCommandName(name)) {
    process.stderr.write(`smk: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const command = commands[name];
  const module = await command.load();
  return module.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Our own errors are value-free by construction; anything else is reduced to its class name.
  const message = describeError(error);
  // Command errors already start with "smk <command>:"; others get the program name.
  process.stderr.write(message.startsWith('smk ') ? `${message}\n` : `smk: ${message}\n`);
  if (!isSmkError(error) && process.env.SMK_DEBUG === '1' && error instanceof Error) {
    process.stderr.write(`${error.stack ?? ''}\n`);
  }
  process.exitCode = 1;
}
