/**
 * The one test command (`npm test`, also what .ci/run calls): lint, type-check, bundle, then every
 * unit and integration test with coverage, against a real local world — moto (AWS wire endpoint) and
 * the test bed (etcd + kube-apiserver + kube-controller-manager) — started once for the whole run.
 *   npm test                 everything (what CI runs)
 *   npm test -- --unit       lint, type-check and unit tests only (no servers)
 *   npm test -- FILE...      the given test files, with the world started
 *   npm test -- --fuzz-long  the fuzz suites (test/fuzz) with 50× the cases and a fresh seed
 *   npm test -- --node       the node tests only (test/node: real pods on the node bed; root)
 *   npm test -- --no-node    everything but the node tests (a quick local run; CI never passes it)
 * The node tests (test/node) run in a second phase against the node bed (test/testbed/node: a
 * kubelet, containerd, kube-proxy and moto reachable from pods), one file at a time (they share the
 * node and one smk release); the other integration tests keep the plain bed, where no pod runs.
 * With a world, every Node process of the phase has its output captured (test/leak/capture.ts) and
 * the phase ends with the secret-leak scan (test/leak/run.ts): a secret value found anywhere fails it.
 * `--no-leak-scan` skips the scan.
 * A component that cannot start fails the run: integration tests never skip.
 */
import { spawn } from 'node:child_process';
import { globSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: {
    unit: { type: 'boolean', default: false },
    'no-checks': { type: 'boolean', default: false },
    'fuzz-long': { type: 'boolean', default: false },
    'no-leak-scan': { type: 'boolean', default: false },
    node: { type: 'boolean', default: false },
    'no-node': { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

const root = new URL('..', import.meta.url).pathname;

function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function step(title: string, command: string, args: readonly string[]): Promise<void> {
  process.stderr.write(`\n== ${title}\n`);
  const code = await run(command, args);
  if (code !== 0) {
    process.stderr.write(`\n${title} failed (exit ${code})\n`);
    process.exit(code);
  }
}

const bin = (name: string): string => `${root}node_modules/.bin/${name}`;

if (!values['no-checks']) {
  await step('lint (biome)', bin('biome'), ['check', '.']);
  await step('type-check (tsc)', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
  await step('bundle (esbuild)', process.execPath, ['scripts/build.ts']);
}

// scripts/ holds build tooling (the image builder) with its own pure tests.
const unitFiles = ['src/**/*.test.ts', 'scripts/**/*.test.ts'];
const fuzzFiles = ['test/fuzz/*.test.ts'];
const nodeDir = 'test/node/';
const isNodeTest = (file: string): boolean => file.startsWith(nodeDir);
/** Every integration test file but the node tests (globbed here, as node --test cannot exclude a dir). */
const plainIntegrationFiles = (): string[] =>
  globSync('test/**/*.test.ts', { cwd: root })
    .filter((file) => !isNodeTest(file))
    .sort();
const allNodeFiles = (): string[] => globSync(`${nodeDir}*.test.ts`, { cwd: root }).sort();

interface Phase {
  readonly title: string;
  readonly files: readonly string[];
  readonly world: 'none' | 'plain' | 'node';
  readonly concurrency: number;
  readonly timeoutMs: number;
}

function phases(): Phase[] {
  const plain = (files: readonly string[]): Phase => ({
    title: 'tests',
    files,
    // The fuzz suites and unit tests (src/, scripts/) are pure (no moto, no test bed).
    world: files.some(
      (file) => !file.startsWith('src/') && !file.startsWith('scripts/') && !file.startsWith('test/fuzz/'),
    )
      ? 'plain'
      : 'none',
    concurrency: 2,
    timeoutMs: 180_000,
  });
  const node = (files: readonly string[]): Phase => ({
    title: 'node tests (real pods on the node bed)',
    files,
    world: 'node',
    concurrency: 1,
    timeoutMs: 900_000,
  });
  if (positionals.length > 0) {
    const plainFiles = positionals.filter((file) => !isNodeTest(file));
    const nodeFiles = positionals.filter(isNodeTest);
    return [
      ...(plainFiles.length > 0 ? [plain(plainFiles)] : []),
      ...(nodeFiles.length > 0 ? [node(nodeFiles)] : []),
    ];
  }
  if (values['fuzz-long']) return [plain(fuzzFiles)];
  if (values.unit) return [plain(unitFiles)];
  if (values.node) return [node(allNodeFiles())];
  return [
    plain([...unitFiles, ...plainIntegrationFiles()]),
    ...(values['no-node'] ? [] : [node(allNodeFiles())]),
  ];
}

/** Each phase's failed tests, one line each (test/harness/failures-reporter.ts). */
const failures: string[] = [];

async function runPhase(phase: Phase): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (values['fuzz-long']) env.SMK_FUZZ_LONG = '1';
  const stops: Array<() => Promise<void>> = [];
  let worldLogs: (() => string) | undefined;
  let collectForLeakScan: ((dir: string) => Promise<string>) | undefined;
  let leakScan: { captureDir: string; auditLogPath: string } | undefined;
  let exitCode = 1;
  try {
    if (phase.world !== 'none') {
      const started = performance.now();
      let world: import('../test/harness/world.ts').World;
      if (phase.world === 'node') {
        process.stderr.write(
          '\n== starting the node world (moto + node bed: control plane, containerd, kubelet, kube-proxy)\n',
        );
        const { startNodeWorld } = await import('../test/harness/node-world.ts');
        world = await startNodeWorld();
      } else {
        process.stderr.write('\n== starting the local world (moto + Kubernetes test bed)\n');
        const { startWorld } = await import('../test/harness/world.ts');
        world = await startWorld();
      }
      process.stderr.write(`world up in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
      stops.push(world.stop);
      worldLogs = world.logs;
      collectForLeakScan = world.collectForLeakScan;
      Object.assign(env, world.env);
      if (!values['no-leak-scan']) {
        const captureDir = await mkdtemp(join(tmpdir(), 'smk-leak-'));
        // SMK_LEAK_KEEP=1 keeps the captured output for a look at a hit (with SMK_TEST_BED_KEEP=1, the audit log too).
        if (process.env.SMK_LEAK_KEEP === '1')
          process.stderr.write(`captured output kept in ${captureDir}\n`);
        else stops.push(() => rm(captureDir, { recursive: true, force: true }));
        leakScan = { captureDir, auditLogPath: world.auditLogPath };
        env.SMK_LEAK_DIR = captureDir;
        env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import=${root}test/leak/capture.ts`.trim();
      }
    }
    process.stderr.write(`\n== ${phase.title}: ${phase.files.join(' ')}\n`);
    const started = performance.now();
    const failuresFile = join(await mkdtemp(join(tmpdir(), 'smk-failures-')), 'failed.txt');
    exitCode = await run(
      process.execPath,
      [
        '--test',
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        `--test-reporter=${root}test/harness/failures-reporter.ts`,
        `--test-reporter-destination=${failuresFile}`,
        '--experimental-test-coverage',
        '--test-coverage-include=src/**',
        '--test-coverage-exclude=**/*.test.ts',
        `--test-concurrency=${phase.concurrency}`,
        `--test-timeout=${phase.timeoutMs}`,
        ...phase.files,
      ],
      env,
    );
    process.stderr.write(`\n${phase.title}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    if (exitCode !== 0 && worldLogs) {
      process.stderr.write(`\n== tests failed: the local world's logs (last lines)\n${worldLogs()}\n`);
    }
    const failed = await readFile(failuresFile, 'utf8').catch(() => '');
    await rm(dirname(failuresFile), { recursive: true, force: true });
    if (failed) failures.push(`${phase.title}:\n${failed}`);
    if (leakScan && env.AWS_ENDPOINT_URL) {
      process.stderr.write('\n== secret-leak scan\n');
      const added = await collectForLeakScan?.(leakScan.captureDir);
      if (added) process.stderr.write(`leak scan: also scanning ${added}\n`);
      const { runLeakScan } = await import('../test/leak/run.ts');
      const result = await runLeakScan({ awsEndpoint: env.AWS_ENDPOINT_URL, ...leakScan });
      process.stderr.write(`${result.report}\n`);
      if (result.hits.length > 0) exitCode ||= 1;
    }
  } catch (error) {
    process.stderr.write(
      `\n${phase.title} could not run: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    exitCode ||= 1;
  } finally {
    for (const stop of stops.reverse()) {
      await stop().catch((error: unknown) => {
        process.stderr.write(
          `\nstopping the world failed: ${error instanceof Error ? error.message : String(error)}\n`,
        );
        exitCode ||= 1;
      });
    }
  }
  return exitCode;
}

let exitCode = 0;
for (const phase of phases()) {
  if (phase.files.length === 0) {
    process.stderr.write(`\n${phase.title}: no test files found\n`);
    exitCode ||= 1;
    continue;
  }
  exitCode = (await runPhase(phase)) || exitCode;
}
if (values['no-node'] && positionals.length === 0 && !values.unit && !values['fuzz-long']) {
  process.stderr.write('\nnode tests (test/node) NOT run: --no-node\n');
}
// Repeated last: a CI log is often read from its tail, after the world's logs and later phases.
if (failures.length > 0) process.stderr.write(`\n== failed tests\n${failures.join('\n')}`);
process.exit(exitCode);
