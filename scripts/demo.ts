/**
 * `npm run demo`: the main job, end to end, on one machine, with real pods: the node bed (a kubelet
 * and containerd node, test/testbed/node), smk installed with `helm upgrade --install`, and every
 * seed scenario as pods (scripts/demo/node.ts). Needs root and the node bed built
 * (`bash test/testbed/node/build.sh`; `bash scripts/dev.sh demo` does both).
 *
 * `npm run demo -- --processes`: the earlier demo without a node — moto and the plain test bed, smk's
 * roles as local processes with the rendered chart's configuration, each seed scenario driven by
 * hand (the injected init container run here, the CSI Mount called directly).
 *
 * The demo secrets are made-up values created in the local moto only; printing them here is the point
 * of the demo (it shows the bytes arrived), unlike anything smk itself logs.
 */
import { parseArgs } from 'node:util';
import { type DemoRelease, installRelease } from './demo/release.ts';
import { scenarios } from './demo/scenarios.ts';
import { type DemoWorld, startDemoWorld } from './demo/world.ts';

interface Outcome {
  readonly title: string;
  readonly ok: boolean;
  readonly seconds: number;
  readonly detail: string;
}

const { values } = parseArgs({ options: { processes: { type: 'boolean', default: false } } });
if (!values.processes) {
  const { runNodeDemo } = await import('./demo/node.ts');
  process.exit(await runNodeDemo());
}

const outcomes: Outcome[] = [];
let world: DemoWorld | undefined;
let release: DemoRelease | undefined;
let stopping: Promise<void> | undefined;

function stopAll(): Promise<void> {
  stopping ??= (async () => {
    await release?.stop().catch(() => undefined);
    await world?.stop().catch(() => undefined);
  })();
  return stopping;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stdout.write(`\n${signal}: stopping smk and the local world…\n`);
    void stopAll().then(() => process.exit(130));
  });
}

async function step(title: string, story: string, run: () => Promise<string>): Promise<boolean> {
  process.stdout.write(`\n━━ ${title}\n${story}\n\n`);
  const started = performance.now();
  try {
    const detail = await run();
    outcomes.push({ title, ok: true, seconds: (performance.now() - started) / 1000, detail });
    process.stdout.write(`✔ ${detail}\n`);
    return true;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    outcomes.push({ title, ok: false, seconds: (performance.now() - started) / 1000, detail });
    process.stdout.write(`✘ ${detail}\n`);
    if (release)
      process.stdout.write(`\nsmk's own log lines (last ones of each role):\n${release.logs(8)}\n`);
    return false;
  }
}

try {
  const started = performance.now();
  try {
    world = await startDemoWorld();
    outcomes.push({
      title: 'start moto + Kubernetes test bed',
      ok: true,
      seconds: (performance.now() - started) / 1000,
      detail: 'up',
    });
  } catch (error) {
    outcomes.push({
      title: 'start moto + Kubernetes test bed',
      ok: false,
      seconds: (performance.now() - started) / 1000,
      detail: error instanceof Error ? error.message : String(error),
    });
    process.stdout.write(`✘ ${outcomes.at(-1)?.detail}\n`);
  }
  if (world) {
    const running = world;
    await step(
      'install smk from its Helm chart',
      'helm renders deploy/helm/smk (webhook with write-through, controller with rotation, CSI provider);\n' +
        "every object is applied to the bed, and each role runs from its rendered workload's args and env.",
      async () => {
        release = await installRelease(running, (line) => process.stdout.write(`${line}\n`));
        return `webhook, controller and CSI provider running from the rendered chart (namespace ${release.namespace})`;
      },
    );
    for (const scenario of scenarios) {
      if (scenario.needsRelease && !release) {
        outcomes.push({
          title: scenario.title,
          ok: false,
          seconds: 0,
          detail: 'not run: smk did not install',
        });
        continue;
      }
      await step(scenario.title, scenario.story, () => scenario.run(running, release));
    }
  }
} finally {
  await stopAll();
}

const width = Math.max(...outcomes.map((outcome) => outcome.title.length), 8);
process.stdout.write(`\n${'scenario'.padEnd(width)}  result  time\n${'-'.repeat(width)}  ------  -------\n`);
for (const outcome of outcomes) {
  process.stdout.write(
    `${outcome.title.padEnd(width)}  ${(outcome.ok ? 'pass' : 'FAIL').padEnd(6)}  ${outcome.seconds.toFixed(1).padStart(5)} s\n`,
  );
}
const failed = outcomes.filter((outcome) => !outcome.ok);
process.stdout.write(`\n${outcomes.length - failed.length} passed, ${failed.length} failed\n`);
for (const outcome of failed)
  process.stdout.write(`  FAIL ${outcome.title}: ${outcome.detail.split('\n')[0]}\n`);
process.exit(failed.length === 0 ? 0 : 1);
