/**
 * What the benchmarks that put smk beside the real peers (the seeds' Go injector, ASCP) share:
 * building the peers (bench/tools/build-peers.sh, cached), pinning servers and load to separate
 * cores, reading a process's CPU and RSS, and the "Peers" table of per-round ratios that
 * `npm run bench` collects (bench/run.ts).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { type Cell, percentile, printTable } from './table.ts';

const root = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);

const builtSchema = z.object({ injector: z.string(), ascp: z.string(), wrk: z.string() });
export type BuiltPeers = z.infer<typeof builtSchema>;

/** Builds (first use) or reuses the peers and the load generator; their build log goes to stderr. */
export function buildPeers(): Promise<BuiltPeers> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(root, 'bench/tools/build-peers.sh')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = output.trim().split('\n').at(-1) ?? '';
      if (code !== 0) reject(new Error(`bench/tools/build-peers.sh exited ${code}`));
      else resolve(builtSchema.parse(JSON.parse(last)));
    });
  });
}

/**
 * Bundles smk (scripts/build.ts) and returns dist/smk.mjs: the benchmarks run what the image
 * ships, not src/ (Node's type stripping alone adds tens of MiB of RSS and a slower start).
 */
export async function buildSmk(): Promise<string> {
  await run(process.execPath, [join(root, 'scripts/build.ts')], { cwd: root });
  return join(root, 'dist/smk.mjs');
}

/**
 * The core servers run on and the one the load runs on: on a machine with two or more cores the
 * servers share core 0 (one at a time is under load) and this process, with every load generator
 * it starts, moves to core 1, so a server never competes with its own load.
 */
export const serverCore = 0;
export const loadCore = 1;
export const pinning = cpus().length >= 2;

/** `command args` run on the servers' core (taskset), or as is on a one-core machine. */
export function onServerCore(command: string, args: readonly string[]): [string, string[]] {
  return pinning ? ['taskset', ['-c', String(serverCore), command, ...args]] : [command, [...args]];
}

/** Moves this process (and what it starts later) to the load core. */
export async function pinSelfToLoadCore(): Promise<void> {
  if (pinning) await run('taskset', ['-a', '-p', '-c', String(loadCore), String(process.pid)]);
}

/** CPU seconds a process has used so far (Linux /proc; NaN elsewhere). */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5); after the command they are at 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size of a process in MiB (Linux /proc; NaN elsewhere). */
export async function rssMiB(pid: number | undefined): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? Number.NaN : Number(kib) / 1024;
  } catch {
    return Number.NaN;
  }
}

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export function spreadOf(values: readonly number[]): Spread {
  return {
    min: Math.min(...values),
    median: percentile(values, 50),
    max: Math.max(...values),
  };
}

/** One figure of smk beside a peer: both medians, and smk ÷ peer per round. */
export interface PeerFigure {
  readonly figure: string;
  readonly unit: string;
  readonly smk: number;
  readonly peer: number;
  readonly peerName: string;
  /** smk ÷ peer of each round (same round, same machine load). */
  readonly ratios: readonly number[];
  readonly goal: string;
  /** Whether the goal is met; undefined when the figure carries no goal. */
  readonly met?: boolean | undefined;
}

/** The title bench/run.ts recognises: every row of such a table becomes a row of the summary. */
export const peerTableTitle = 'Peers: smk beside the programs users run today';

export function printPeerTable(note: string, figures: readonly PeerFigure[]): void {
  const cell = (value: number, unit: string): Cell =>
    `${value >= 100 ? value.toFixed(0) : value.toFixed(2)}${unit ? ` ${unit}` : ''}`;
  printTable(
    `${peerTableTitle} (${note})`,
    ['figure', 'smk', 'peer', 'peer figure', 'ratio min', 'ratio median', 'ratio max', 'goal', 'met'],
    figures.map((figure) => {
      const spread = spreadOf(figure.ratios);
      return [
        figure.figure,
        cell(figure.smk, figure.unit),
        figure.peerName,
        cell(figure.peer, figure.unit),
        spread.min,
        spread.median,
        spread.max,
        figure.goal,
        figure.met === undefined ? '–' : figure.met ? 'met' : 'NOT met',
      ];
    }),
  );
}

/** Load on the machine right now (1-minute load average over cores), printed beside the figures. */
export async function machineLoad(): Promise<string> {
  const loadavg = (await readFile('/proc/loadavg', 'utf8').catch(() => '')).split(' ')[0] ?? '?';
  return `load average ${loadavg} on ${cpus().length} cores`;
}

// ---- webhook servers (bench/webhook.ts, bench/webhook-memory.ts) --------------------------------

/** A webhook server under test (smk, the bare baseline, the Go injector). */
export interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  readonly path: string;
}

/** Starts a Node server (with `nodeOptions` as NODE_OPTIONS) on the servers' core and waits for its `webhook listening` line (with the port). */
export function startNodeServer(name: string, args: readonly string[], nodeOptions = ''): Promise<Server> {
  return new Promise((resolve, reject) => {
    const [command, pinned] = onServerCore(process.execPath, args);
    const child = spawn(command, pinned, {
      cwd: root,
      env: { ...process.env, SMK_LOG_LEVEL: 'info', NODE_OPTIONS: nodeOptions },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let buffered = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const line of buffered.split('\n')) {
        const port = /"msg":"webhook listening"/.test(line) ? /"port":(\d+)/.exec(line)?.[1] : undefined;
        if (port !== undefined) {
          child.stderr?.removeAllListeners('data');
          child.stderr?.resume();
          resolve({ name, child, port: Number(port), path: '/mutate/pods' });
          return;
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`${name} exited ${code}: ${buffered}`)));
    setTimeout(() => reject(new Error(`${name}: not listening after 120 s: ${buffered}`)), 120_000).unref();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** The Go injector as its chart runs it (klog to stderr, which goes nowhere here), ready on /readyz. */
export async function startGoInjector(
  binary: string,
  certFile: string,
  keyFile: string,
  caPem: string,
): Promise<Server> {
  const port = await freePort();
  const [command, pinned] = onServerCore(binary, [
    `--tls-cert-file=${certFile}`,
    `--tls-private-key-file=${keyFile}`,
    `--port=${port}`,
    '--sidecar-image=amazon/aws-secrets-manager-secret-sidecar:v0.1.4',
  ]);
  const child = spawn(command, pinned, { stdio: ['ignore', 'ignore', 'ignore'] });
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`the Go injector exited ${child.exitCode}`);
    const ready = await post(port, '/readyz', caPem, '', 'GET').then(
      (answer) => answer.status === 200,
      () => false,
    );
    if (ready) return { name: 'Go injector', child, port, path: '/mutating-pods' };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the Go injector did not answer /readyz');
}

/** One HTTPS request with the bench CA; the whole answer as text. */
export function post(
  port: number,
  path: string,
  caPem: string,
  body: string,
  method = 'POST',
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, ca: caPem, headers: { 'content-type': 'application/json' } },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The bare baseline of the webhook benchmarks (run with `node --input-type=module -e`): read the
 * body, parse it, answer allowed. What any Node HTTPS webhook costs before doing anything.
 */
export const bareServer = `
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
const server = createServer({ cert: readFileSync(process.argv[1]), key: readFileSync(process.argv[2]) }, (req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => process.stderr.write(JSON.stringify({ msg: 'webhook listening', port: server.address().port }) + '\\n'));
`;
