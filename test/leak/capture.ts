/**
 * Preloaded into every Node process of a test run (`NODE_OPTIONS=--import …/capture.ts`, set by
 * scripts/test.ts with SMK_LEAK_DIR): copies everything the process writes to stdout and stderr —
 * console, process.stdout, and pino's direct fs writes to fd 1/2 — and the bodies of smk's own
 * HTTP endpoints fetched on loopback (/metrics, /healthz, /readyz, /livez) into one file per
 * process, for the leak scan at the end of the run. Tests need not cooperate. Without
 * SMK_LEAK_DIR it does nothing.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { captureMarker } from './capture-format.ts';

const dir = process.env.SMK_LEAK_DIR;

function install(captureDir: string): void {
  const originalWriteSync = fs.writeSync;
  const originalWrite = fs.write;
  fs.mkdirSync(captureDir, { recursive: true });
  const file = join(captureDir, `${process.pid}-${process.hrtime.bigint()}.log`);
  const fd = fs.openSync(file, 'a');
  // Names the process in hits: its command line (long -e scripts shortened), paths shortened.
  // Node flags only matter for `node -e …` (the script is among them); else the script names it.
  const flags = process.argv.length > 1 ? [] : process.execArgv;
  const argv = [process.argv[0] ?? 'node', ...flags, ...process.argv.slice(1)]
    .filter((arg) => !arg.includes('capture.ts'))
    .map((arg) =>
      arg
        .replace(/^.*\/(work|tmp)\//, '…/')
        .replace(/\s+/g, ' ')
        .slice(0, 60),
    )
    .join(' ');
  originalWriteSync(fd, `${captureMarker} pid ${process.pid}: ${argv}\n`);

  const keep = (chunk: unknown, offset?: unknown, length?: unknown): void => {
    try {
      if (typeof chunk === 'string') originalWriteSync(fd, chunk);
      else if (ArrayBuffer.isView(chunk)) {
        const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        const start = typeof offset === 'number' ? offset : 0;
        const end = typeof length === 'number' ? start + length : bytes.byteLength;
        originalWriteSync(fd, bytes.subarray(start, end));
      }
    } catch {
      // Capturing must never break the process under test.
    }
  };

  // process.stdout on a file writes through fs.writeSync: count such a write once.
  let inStreamWrite = false;
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      keep(chunk);
      inStreamWrite = true;
      try {
        return original(chunk, ...rest);
      } finally {
        inStreamWrite = false;
      }
    }) as typeof stream.write;
  }

  const isStdio = (target: unknown): boolean => target === 1 || target === 2;
  fs.writeSync = ((target: number, chunk: unknown, ...rest: unknown[]) => {
    if (isStdio(target) && !inStreamWrite) keep(chunk, rest[0], rest[1]);
    return (originalWriteSync as (...args: unknown[]) => number)(target, chunk, ...rest);
  }) as typeof fs.writeSync;
  fs.write = ((target: number, chunk: unknown, ...rest: unknown[]) => {
    if (isStdio(target) && !inStreamWrite) keep(chunk, rest[0], rest[1]);
    return (originalWrite as (...args: unknown[]) => void)(target, chunk, ...rest);
  }) as typeof fs.write;

  const originalFetch = globalThis.fetch;
  const endpointPath = /^\/(metrics|healthz|readyz|livez)\b/;
  globalThis.fetch = async (input, init) => {
    const response = await originalFetch(input, init);
    try {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const loopback =
        url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
      if (loopback && endpointPath.test(url.pathname)) {
        const body = await response.clone().text();
        originalWriteSync(
          fd,
          `\n${captureMarker} HTTP ${response.status} from ${url.origin}${url.pathname}\n${body}\n${captureMarker} end of HTTP body\n`,
        );
      }
    } catch {
      // As above: the fetch result is what the test gets, whatever capture does.
    }
    return response;
  };
}

if (dir !== undefined && dir !== '') install(dir);
