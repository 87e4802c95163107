/**
 * The one test command (`npm test`, also what .ci/run calls): lint, type-check, bundle, then every
 * unit and integration test with coverage, against a real local world — moto (AWS wire endpoint) and
 * the test bed (etcd + kube-apiserver + kube-controller-manager) — started once for the whole run.
 *   npm test                 everything (what CI runs)
 *   npm test -- --unit       lint, type-check and unit tests only (no servers)
 *   npm test -- FILE...      the given test files, with the world started
 *   npm test -- --fuzz-long  the fuzz suites (test/fuzz) with 50× the cases and a fresh seed
 * With the world, every Node process of the run has its output captured (test/leak/capture.ts) and
 * the run ends with the secret-leak scan (test/leak/run.ts): a secret value found anywhere fails it.
 * `--no-leak-scan` skips the scan.
 * A component that cannot start fails the run: integration tests never skip.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: {
    unit: { type: 'boolean', default: false },
    'no-checks': { type: 'boolean', default: false },
    'fuzz-long': { type: 'boolean', default: false },
    'no-leak-scan': { type: 'boolean', default: false },
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
const allFiles = [...unitFiles, 'test/**/*.test.ts'];
const fuzzFiles = ['test/fuzz/*.test.ts'];
const files =
  positionals.length > 0 ? positionals : values['fuzz-long'] ? fuzzFiles : values.unit ? unitFiles : allFiles;
// The fuzz suites are pure (no moto, no test bed).
const needsWorld =
  !values.unit &&
  files.some(
    (file) => !file.startsWith('src/') && !file.startsWith('scripts/') && !file.startsWith('test/fuzz/'),
  );

const env: NodeJS.ProcessEnv = { ...process.env };
if (values['fuzz-long']) env.SMK_FUZZ_LONG = '1';
const stops: Array<() => Promise<void>> = [];
let worldLogs: (() => string) | undefined;
let leakScan: { captureDir: string; auditLogPath: string } | undefined;
let exitCode = 1;
try {
  if (needsWorld) {
    process.stderr.write('\n== starting the local world (moto + Kubernetes test bed)\n');
    const { startWorld } = await import('../test/harness/world.ts');
    const world = await startWorld();
    stops.push(world.stop);
    worldLogs = world.logs;
    Object.assign(env, world.env);
    if (!values['no-leak-scan']) {
      const captureDir = await mkdtemp(join(tmpdir(), 'smk-leak-'));
      // SMK_LEAK_KEEP=1 keeps the captured output for a look at a hit (with SMK_TEST_BED_KEEP=1, the audit log too).
      if (process.env.SMK_LEAK_KEEP === '1') process.stderr.write(`captured output kept in ${captureDir}\n`);
      else stops.push(() => rm(captureDir, { recursive: true, force: true }));
      leakScan = { captureDir, auditLogPath: world.auditLogPath };
      env.SMK_LEAK_DIR = captureDir;
      env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import=${root}test/leak/capture.ts`.trim();
    }
  }
  process.stderr.write(`\n== tests: ${files.join(' ')}\n`);
  exitCode = await run(
    process.execPath,
    [
      '--test',
      '--experimental-test-coverage',
      '--test-coverage-include=src/**',
      '--test-coverage-exclude=**/*.test.ts',
      '--test-concurrency=2',
      '--test-timeout=180000',
      ...files,
    ],
    env,
  );
  if (exitCode !== 0 && worldLogs) {
    process.stderr.write(`\n== tests failed: the local world's logs (last lines)\n${worldLogs()}\n`);
  }
  if (leakScan && env.AWS_ENDPOINT_URL) {
    process.stderr.write('\n== secret-leak scan\n');
    const { runLeakScan } = await import('../test/leak/run.ts');
    const result = await runLeakScan({ awsEndpoint: env.AWS_ENDPOINT_URL, ...leakScan });
    process.stderr.write(`${result.report}\n`);
    if (result.hits.length > 0) exitCode ||= 1;
  }
} finally {
  for (const stop of stops.reverse()) await stop();
}
process.exit(exitCode);
