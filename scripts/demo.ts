/**
 * `npm run demo`: the main job, end to end, on one machine. Starts the local world (moto as the AWS
 * endpoint and, for the Kubernetes scenarios, the test bed), then walks through the seed scenarios with
 * a short narrative each, and ends with a summary table. Exits non-zero when any scenario failed.
 *
 * The demo secrets are made-up values created in the local moto only; printing them here is the point
 * of the demo (it shows the bytes arrived), unlike anything smk itself logs.
 */
import { scenarios } from './demo/scenarios.ts';
import { startDemoWorld } from './demo/world.ts';

interface Outcome {
  readonly title: string;
  readonly ok: boolean;
  readonly seconds: number;
  readonly detail: string;
}

const world = await startDemoWorld();
const outcomes: Outcome[] = [];
try {
  for (const scenario of scenarios) {
    process.stdout.write(`\n━━ ${scenario.title}\n${scenario.story}\n\n`);
    const started = performance.now();
    try {
      const detail = await scenario.run(world);
      outcomes.push({
        title: scenario.title,
        ok: true,
        seconds: (performance.now() - started) / 1000,
        detail,
      });
      process.stdout.write(`✔ ${detail}\n`);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      outcomes.push({
        title: scenario.title,
        ok: false,
        seconds: (performance.now() - started) / 1000,
        detail,
      });
      process.stdout.write(`✘ ${detail}\n`);
    }
  }
} finally {
  await world.stop();
}

const width = Math.max(...outcomes.map((outcome) => outcome.title.length), 8);
process.stdout.write(`\n${'scenario'.padEnd(width)}  result  time\n${'-'.repeat(width)}  ------  -------\n`);
for (const outcome of outcomes) {
  process.stdout.write(
    `${outcome.title.padEnd(width)}  ${(outcome.ok ? 'pass' : 'FAIL').padEnd(6)}  ${outcome.seconds.toFixed(1).padStart(5)} s\n`,
  );
}
const failed = outcomes.filter((outcome) => !outcome.ok).length;
process.stdout.write(`\n${outcomes.length - failed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
