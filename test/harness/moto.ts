/**
 * moto in server mode as the AWS wire endpoint of the integration tests (see
 * ../shared/notes/moto.md for where it differs from AWS). `startMoto()` runs one server on a
 * free loopback port (the test runner does this once per run); tests reach it with
 * `connectMoto()`, which reads AWS_ENDPOINT_URL and fails loudly when it is missing:
 * integration tests never skip silently. Tests share one moto: isolate by unique names, never reset.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

/** One request moto recorded (`/moto-api/recorder`), decoded. */
export interface RecordedCall {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** `GetSecretValue` from `X-Amz-Target: secretsmanager.GetSecretValue`, or the `Action=` of a query API. */
  readonly api: string | undefined;
  /** The access key id from the SigV4 Authorization header, if signed. */
  readonly accessKeyId: string | undefined;
}

export interface MotoRecorder {
  reset(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  download(): Promise<RecordedCall[]>;
}

/** A moto some other process started: its endpoint and its control API. */
export interface MotoEndpoint {
  readonly endpoint: string;
  /** Wipes every backend of the shared server: only for the process that owns it, never in a test. */
  reset(): Promise<void>;
  readonly recorder: MotoRecorder;
}

export interface MotoServer extends MotoEndpoint {
  /** The server's output so far (kept for failure reports). */
  log(): string;
  stop(): Promise<void>;
}

export interface StartMotoOptions {
  /** Python with `moto[server]`; default SMK_MOTO_PYTHON, else the venv at ~/.cache/smk-moto-venv. */
  readonly python?: string;
  /** How long to wait for the server to answer (default 60 s: the first start compiles a lot). */
  readonly readyTimeoutMs?: number;
  /** The address to listen on (default 127.0.0.1; the node bed's bridge gateway, for pods to reach it). */
  readonly host?: string;
}

const maxLogBytes = 256 * 1024;

/**
 * `python -m moto.server`, plus a watcher: when our end of its stdin closes (this process
 * exited, even by SIGKILL), moto exits too instead of living on as an orphan.
 */
const motoBootstrap = [
  'import os, runpy, sys, threading',
  'def watch():',
  '    sys.stdin.read()',
  '    os._exit(0)',
  'threading.Thread(target=watch, daemon=True).start()',
  "sys.argv[0] = 'moto.server'",
  "runpy.run_module('moto.server', run_name='__main__', alter_sys=True)",
].join('\n');

export function motoPython(): string {
  return process.env.SMK_MOTO_PYTHON ?? join(homedir(), '.cache', 'smk-moto-venv', 'bin', 'python');
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function startMoto(options: StartMotoOptions = {}): Promise<MotoServer> {
  const python = options.python ?? motoPython();
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const host = options.host ?? '127.0.0.1';
  const port = await freePort();
  const endpoint = `http://${host}:${port}`;
  let log = '';
  const append = (chunk: Buffer): void => {
    log += chunk.toString('utf8');
    if (log.length > maxLogBytes) log = log.slice(log.length - maxLogBytes);
  };
  // moto's recorder writes `moto_recording` into its working directory: keep that out of the repo.
  const workDir = await mkdtemp(join(tmpdir(), 'smk-moto-'));
  const child: ChildProcess = spawn(python, ['-c', motoBootstrap, '-H', host, '-p', String(port)], {
    cwd: workDir,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  let spawnError: Error | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (error) => {
      spawnError = error;
      exited = true;
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.stdin?.end();
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 5_000);
      await exit;
      clearTimeout(timer);
    }
    await rm(workDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      const why = spawnError ? `could not run ${python} (${spawnError.message})` : 'exited during start';
      throw new Error(
        `moto ${why}. Install it with scripts/dev.sh or set SMK_MOTO_PYTHON. Its output:\n${log || '(none)'}`,
      );
    }
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto did not answer on ${endpoint} within ${readyTimeoutMs} ms. Its output:\n${log}`);
    }
    await delay(100);
  }

  return { ...motoEndpoint(endpoint), log: () => log, stop };
}

/**
 * The moto the test runner started, from AWS_ENDPOINT_URL. Throws when it is not set, so an
 * integration test run without the world fails instead of skipping.
 */
export function connectMoto(): MotoEndpoint {
  const endpoint = process.env.AWS_ENDPOINT_URL;
  if (!endpoint) {
    throw new Error(
      'AWS_ENDPOINT_URL is not set: integration tests need moto. Run them with `npm test` ' +
        '(scripts/test.ts starts moto), or start moto yourself and export AWS_ENDPOINT_URL=http://127.0.0.1:PORT.',
    );
  }
  // The runner exports these too; defaults let one test file run by hand against a moto.
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  return motoEndpoint(endpoint.replace(/\/+$/, ''));
}

function motoEndpoint(endpoint: string): MotoEndpoint {
  const control = async (method: 'GET' | 'POST', path: string, body?: string): Promise<string> => {
    const response = await fetch(`${endpoint}${path}`, {
      method,
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`moto ${method} ${path}: HTTP ${response.status}`);
    return text;
  };
  return {
    endpoint,
    reset: async () => {
      await control('POST', '/moto-api/reset');
    },
    recorder: {
      reset: async () => {
        await control('POST', '/moto-api/recorder/reset-recording');
      },
      start: async () => {
        await control('POST', '/moto-api/recorder/start-recording');
      },
      stop: async () => {
        await control('POST', '/moto-api/recorder/stop-recording');
      },
      download: async () => parseRecording(await control('GET', '/moto-api/recorder/download-recording')),
    },
  };
}

interface RawRecord {
  method?: unknown;
  url?: unknown;
  headers?: unknown;
  body?: unknown;
  body_encoded?: unknown;
}

/** moto's recording: JSON lines of {method, url, headers, body, body_encoded}. */
export function parseRecording(text: string): RecordedCall[] {
  const calls: RecordedCall[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const raw = JSON.parse(line) as RawRecord;
    const headers: Record<string, string> = {};
    if (typeof raw.headers === 'object' && raw.headers !== null) {
      for (const [name, value] of Object.entries(raw.headers)) {
        if (typeof value === 'string') headers[name.toLowerCase()] = value;
      }
    }
    const rawBody = typeof raw.body === 'string' ? raw.body : '';
    const body = raw.body_encoded === true ? Buffer.from(rawBody, 'base64').toString('utf8') : rawBody;
    const url = typeof raw.url === 'string' ? raw.url : '';
    calls.push({
      method: typeof raw.method === 'string' ? raw.method : '',
      url,
      headers,
      body,
      api: apiOf(headers['x-amz-target'], url, body),
      accessKeyId: accessKeyIdOf(headers.authorization),
    });
  }
  return calls;
}

/** The API a request calls: the X-Amz-Target operation of JSON services, else `Action=` (query services). */
export function apiOf(target: string | undefined, url: string, body: string): string | undefined {
  if (target) return target.slice(target.lastIndexOf('.') + 1);
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  return new URLSearchParams(query).get('Action') ?? new URLSearchParams(body).get('Action') ?? undefined;
}

/** `Credential=AKID/date/region/service/aws4_request` → AKID. */
export function accessKeyIdOf(authorization: string | undefined): string | undefined {
  const match = authorization ? /Credential=([^/,\s]+)\//.exec(authorization) : null;
  return match?.[1];
}
