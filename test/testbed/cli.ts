/**
 * `npm run testbed`: the whole local world (moto + the Kubernetes test bed) for a person or a
 * script. Once everything is ready it prints `export NAME=value` lines on stdout in one write
 * (progress goes to stderr), e.g. for a script:
 *   npm run -s testbed > world.env &   until grep -q SMK_TEST_BED world.env; do sleep 1; done; . ./world.env
 * It stays up until Ctrl-C / SIGTERM, then stops what it started and removes its temp dir.
 *
 * `npm run testbed -- --node`: the same with a real node where pods run (root; test/testbed/node),
 * plus `export SMK_NODE_BED=…` and `export SMK_NODE_HELM_ARGS="--set …"`, so that
 *   helm upgrade --install smk deploy/helm/smk -n smk-system --create-namespace $SMK_NODE_HELM_ARGS
 * installs smk as on a cluster. The first time, build the node first: bash test/testbed/node/build.sh.
 */
import { parseArgs } from 'node:util';
import { startNodeWorld } from '../harness/node-world.ts';
import { startWorld, type World } from '../harness/world.ts';

const { values } = parseArgs({ options: { node: { type: 'boolean', default: false } } });

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

let world: World;
try {
  world = values.node ? await startNodeWorld() : await startWorld();
} catch (error) {
  process.stderr.write(
    `[testbed] could not start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
}

process.stdout.write(
  Object.entries(world.env)
    .map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
    .join(''),
);
process.stderr.write('[testbed] up; press Ctrl-C (or send SIGTERM) to stop and clean up\n');

// Child processes keep the event loop alive too, but the wait must not depend on them.
const keepAlive = setInterval(() => {}, 1 << 30);
let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    process.stderr.write(`[testbed] ${signal} again: exiting without cleanup\n`);
    process.exit(130);
  }
  stopping = true;
  process.stderr.write(`[testbed] ${signal}: stopping\n`);
  clearInterval(keepAlive);
  try {
    await world.stop();
    process.stderr.write('[testbed] stopped\n');
    process.exit(0);
  } catch (error) {
    process.stderr.write(
      `[testbed] cleanup failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  }
}
// `npm run` passes SIGTERM to its shell, which may exit without passing it on: we then become an
// orphan, and stop as if we had been told to.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void shutdown('SIGTERM');
}, 1000).unref();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, (received) => {
    void shutdown(received);
  });
}
