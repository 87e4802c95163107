/**
 * The one logger. JSON lines (pino) on stderr with redaction of every field name that could carry
 * secret material, as a second line of defence: our own code never puts a value in a log call.
 * Levels are words ("level":"warn"), as people grep and alert on them, not pino's numbers.
 */
import { type Logger, pino } from 'pino';

export type { Logger };

const redactedPaths = [
  'value',
  'bytes',
  'data',
  'stringData',
  'secretString',
  'SecretString',
  'SecretBinary',
  'token',
  'credentials',
  'password',
  '*.value',
  '*.bytes',
  '*.data',
  '*.stringData',
  '*.SecretString',
  '*.SecretBinary',
  '*.token',
  '*.credentials',
  '*.password',
  'headers.authorization',
  '*.headers.authorization',
];

export interface LoggerOptions {
  readonly level?: string;
  readonly name?: string;
  /** Where lines go; default stderr so stdout stays free for command output (`smk inject`). */
  readonly destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'smk',
      level: options.level ?? 'info',
      redact: { paths: redactedPaths, censor: '[redacted]' },
      base: { pid: process.pid },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that discards everything (unit tests, library use without logging). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
