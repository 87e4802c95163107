/**
 * `smk agent refresh`: the refresh sidecar. Every interval (with jitter, so pods started together
 * do not call AWS together) it asks where each object's version selector points now — a cheap
 * DescribeSecret / parameter history call, no value read — and only when one moved does it run
 * the core pipeline and swap the whole file set atomically (a spec with `discover` runs it every
 * interval, as only a listing shows a new or deleted match). On failure the last good files stay;
 * transient failures are retried with exponential backoff (capped at the interval).
 */
import { writePayloadsAtomically } from '../core/atomic-write.ts';
import { describeError, isSmkError } from '../core/errors.ts';
import type { ExpressionEvaluator } from '../core/expressions.ts';
import type { Logger } from '../core/log.ts';
import { type PlannedObject, planRequests, resolvePayloads } from '../core/payloads.ts';
import { followedStage, type SecretReader, type SecretRequest } from '../core/source.ts';
import type { MountSpec } from '../core/spec-types.ts';
import type { FileTemplate } from '../core/template.ts';
import { describePayloads } from './init.ts';

export interface RefreshOptions {
  readonly spec: MountSpec;
  readonly dir: string;
  readonly reader: SecretReader;
  readonly defaultRegion?: string | undefined;
  /** Full JMESPath expressions, when the injector allowed them (SMK_JMESPATH_EXPRESSIONS). */
  readonly expressions?: ExpressionEvaluator | undefined;
  /** Files rendered from the spec's own files (`smk.dev/template-<file>`, SMK_TEMPLATES). */
  readonly templates?: readonly FileTemplate[] | undefined;
  readonly log: Logger;
  readonly intervalMs: number;
  /** Stops the loop; the current cycle finishes its write first. */
  readonly signal: AbortSignal;
  /** First backoff after a transient failure (default 1 s); doubles up to the interval. */
  readonly minBackoffMs?: number;
  /** Source of jitter in [0, 1) (tests pin it). */
  readonly random?: () => number;
  /** Called after every cycle (tests and metrics). */
  readonly onCycle?: (cycle: CycleReport) => void;
  /** How the loop waits (tests record the delays); default a timer that the signal cuts short. */
  readonly wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export type CycleReport =
  | { readonly outcome: 'unchanged' }
  | { readonly outcome: 'updated'; readonly changed: boolean; readonly files: number }
  | { readonly outcome: 'failed'; readonly transient: boolean; readonly message: string };

/** Object index → where its selector points now (`region/versionId`), or undefined for pinned versions. */
export type VersionFingerprint = ReadonlyMap<number, string>;

async function pointsAt(reader: SecretReader, request: SecretRequest, selector: string): Promise<string> {
  const versions = await reader.describe(request);
  for (const [versionId, stages] of versions.versionsToStages) {
    if (stages.includes(selector)) return `${request.region}/${versionId}`;
  }
  // Nothing carries the selector (a label removed): remember that state, so its return is a change.
  return `${request.region}/-`;
}

/**
 * Where every followed selector of the spec points now. A primary region that fails is asked
 * through its failover request, as the pipeline would read it.
 */
export async function currentVersions(
  plans: readonly PlannedObject[],
  reader: SecretReader,
): Promise<VersionFingerprint> {
  const entries = await Promise.all(
    plans.map(async (plan): Promise<[number, string] | undefined> => {
      const selector = followedStage(plan.primary);
      if (selector === undefined) return undefined;
      try {
        return [plan.object.index, await pointsAt(reader, plan.primary, selector)];
      } catch (error) {
        const failover = plan.failover;
        const failoverSelector = failover && followedStage(failover);
        if (!failover || failoverSelector === undefined) throw error;
        return [plan.object.index, await pointsAt(reader, failover, failoverSelector)];
      }
    }),
  );
  return new Map(entries.filter((entry) => entry !== undefined));
}

/** Our errors are value-free; a filesystem error is reduced to its code (its message holds only a path). */
function failureMessage(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (!isSmkError(error) && typeof code === 'string') return `filesystem error ${code}`;
  return describeError(error);
}

function sameVersions(a: VersionFingerprint, b: VersionFingerprint): boolean {
  if (a.size !== b.size) return false;
  for (const [index, version] of a) if (b.get(index) !== version) return false;
  return true;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs until `signal` aborts. The first cycle reads and writes at once (it sets the baseline the
 * version checks compare against; an unchanged set is not rewritten).
 */
export async function runRefreshLoop(options: RefreshOptions): Promise<void> {
  const { log, signal } = options;
  const random = options.random ?? Math.random;
  const minBackoffMs = options.minBackoffMs ?? 1_000;
  const plans = planRequests(options.spec, options.defaultRegion, 'SMK_OBJECTS');
  const discovers = options.spec.objects.some((object) => object.discover !== undefined);
  let known: VersionFingerprint | undefined;
  let failures = 0;

  while (!signal.aborted) {
    let report: CycleReport;
    try {
      const versions = await currentVersions(plans, options.reader);
      // A discover entry's set can change without any listed object moving: list it every cycle
      // (unchanged matches are read from the cache, and an unchanged file set is not rewritten).
      if (known !== undefined && !discovers && sameVersions(known, versions)) {
        report = { outcome: 'unchanged' };
      } else {
        const payloads = await resolvePayloads(options.spec, options.reader, {
          defaultRegion: options.defaultRegion,
          templates: options.templates,
          subject: 'SMK_OBJECTS',
          expressions: options.expressions,
        });
        const { changed } = await writePayloadsAtomically(options.dir, payloads);
        known = versions;
        report = { outcome: 'updated', changed, files: payloads.length };
        if (changed) log.info({ dir: options.dir, files: describePayloads(payloads) }, 'secrets updated');
      }
      failures = 0;
    } catch (error) {
      // Filesystem and unexpected errors are retried like transient ones: the files stay as they were.
      const transient = !isSmkError(error) || error.transient;
      failures = transient ? failures + 1 : 0;
      report = { outcome: 'failed', transient, message: failureMessage(error) };
      log[transient ? 'warn' : 'error'](
        { failures },
        `${report.message}; keeping the last good files${transient ? ', retrying with backoff' : ''}`,
      );
    }
    options.onCycle?.(report);
    const base =
      failures > 0 ? Math.min(options.intervalMs, minBackoffMs * 2 ** (failures - 1)) : options.intervalMs;
    await (options.wait ?? sleep)(base * (0.9 + 0.2 * random()), signal);
  }
}
