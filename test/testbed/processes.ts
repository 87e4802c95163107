/**
 * The bed's child processes: each writes stdout+stderr straight into its own log file (so the
 * log survives us), is remembered by its own handle, and is stopped only through that handle.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename } from 'node:path';

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Settles when the process has exited, with its exit code or the signal that ended it. */
  readonly exited: Promise<string>;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Processes still running when Node exits are killed, so a crashed test run leaves no orphans. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  logPath: string,
  /** Added to this process's environment. */
  env?: Readonly<Record<string, string>>,
): ManagedProcess {
  installExitHook();
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      stdio: ['ignore', fd, fd],
      ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
    });
  } finally {
    closeSync(fd);
  }
  let done = false;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      running.delete(child);
      resolve(signal === null ? `exit code ${code}` : `signal ${signal}`);
    });
    child.once('error', (error) => {
      done = true;
      running.delete(child);
      resolve(`failed to start ${basename(command)}: ${error.message}`);
    });
  });
  if (child.pid === undefined) {
    return { name, pid: -1, logPath, exited, isRunning: () => false, stop: async () => {} };
  }
  running.add(child);
  const pid = child.pid;
  return {
    name,
    pid,
    logPath,
    exited,
    isRunning: () => !done,
    async stop(graceMs = 5000): Promise<void> {
      if (done) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The last `lines` lines of a log file, or a note that it is missing. */
export function tailFile(path: string, lines: number): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return '(no log)';
  }
  const all = text.trimEnd().split('\n');
  const kept = all.slice(-lines);
  return (
    (all.length > kept.length ? `… ${all.length - kept.length} earlier lines in ${path}\n` : '') +
    kept.join('\n')
  );
}

/** Distinct free loopback ports: all are held open together so none is handed out twice. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('listening socket has no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
