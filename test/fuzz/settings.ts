/**
 * One place for the fuzz suites' size and seed. The normal run uses a fixed seed and a size that
 * fits CI; `npm test -- --fuzz-long` (SMK_FUZZ_LONG=1) runs 50× the cases with a fresh seed,
 * printed so a failure can be replayed with SMK_FUZZ_SEED.
 */
import type { TestContext } from 'node:test';
import fc from 'fast-check';

const long = process.env.SMK_FUZZ_LONG === '1';
const seedText = process.env.SMK_FUZZ_SEED;

/** Fixed in normal runs so CI is reproducible; random in long runs unless SMK_FUZZ_SEED is given. */
export const fuzzSeed: number =
  seedText !== undefined && seedText !== '' ? Number(seedText) : long ? Date.now() % 2 ** 31 : 20_240_611;
export const fuzzScale: number = long ? 50 : 1;

/**
 * Runs `property` with `baseRuns` × scale cases and names the count (and seed) in the test's
 * diagnostics, which the report of the run shows.
 */
export async function checkProperty<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  baseRuns: number,
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
): Promise<void> {
  const numRuns = baseRuns * fuzzScale;
  const details = await fc.check(property as fc.IAsyncProperty<Ts>, {
    seed: fuzzSeed,
    numRuns,
    // A hang is a failure too: an async case gets 10 s, the whole property a bounded time.
    timeout: 10_000,
    interruptAfterTimeLimit: 120_000 * fuzzScale,
    markInterruptAsFailure: true,
  });
  if (details.failed) {
    throw new Error(fc.defaultReportMessage(details) ?? 'property failed', { cause: details.errorInstance });
  }
  t.diagnostic(`fuzz: ${details.numRuns} cases (seed ${fuzzSeed})`);
}
