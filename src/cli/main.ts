/**
 * `smk <command>`: one binary for every role. Each command module is imported only when used, so a
 * one-shot command like `smk fetch` does not pay for the Kubernetes client or gRPC at start.
 * The program starts at smk.mjs, which checks the Node version before this module is loaded.
 */
import { debugRequested } from '../config.ts';
import { isSmkError } from '../core/errors.ts';
import { UsageError, usageExitCode } from './args.ts';
import { type CommandName, commands } from './commands.ts';
import { describeCliError, describeSystemError } from './errors.ts';

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
    return name === undefined ? usageExitCode : 0;
  }
  if (name === '--version') return main(['version']);
  if (name.startsWith('-')) {
    process.stderr.write(`smk: unknown flag ${name} (see smk --help; flags go after the command)\n`);
    return usageExitCode;
  }
  if (!isCommandName(name)) {
    process.stderr.write(`smk: unknown command "${name}" (see smk --help)\n\n${usage()}`);
    return usageExitCode;
  }
  const command = commands[name];
  const module = await command.load();
  return module.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Our own errors are value-free by construction; system errors are described by their code and
  // place (file, address); anything else is reduced to its class name.
  const message = describeCliError(error);
  // Command errors already start with "smk <command>:"; others get the program name.
  process.stderr.write(message.startsWith('smk ') ? `${message}\n` : `smk: ${message}\n`);
  if (!isSmkError(error) && error instanceof Error) {
    if (debugRequested()) process.stderr.write(`${error.stack ?? ''}\n`);
    // An error neither ours nor the system's: the stack says where (it may quote input, so on request).
    else if (describeSystemError(error) === undefined) {
      process.stderr.write(
        'smk: SMK_DEBUG=1 prints where this error came from (its stack may quote input)\n',
      );
    }
  }
  process.exitCode = error instanceof UsageError ? usageExitCode : 1;
}
