/**
 * The change detector: one per cluster (it runs in the leader). It knows which secrets smk uses
 * (`watches()`), and where their followed stages point. Two inputs feed it:
 *   - polling: ListSecrets with versions-to-stages (100 a page), every interval with jitter,
 *     restricted to the secrets in use (a name filter when that costs fewer pages than a full
 *     listing); never GetSecretValue;
 *   - hints (SQS events): confirmed with one DescribeSecret each before anything happens.
 * Both produce the same signal, `SecretChange` ("secret X now has version V at stage S"), handed
 * to every sink in order. An observation older than the one already applied for a secret is
 * dropped, so duplicates and reordering of polls and events cannot flap a version back.
 */
import { secretIdMatches } from '../../aws/index.ts';
import { parseArn } from '../../core/arn.ts';
import { describeError, NotFoundError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { counter, gauge, histogram } from '../../core/metrics.ts';
import type { SecretVersions } from '../../core/source.ts';
import type { ChangeHint } from './messages.ts';

/** One secret a SecretSync, SecretProviderClass, mapping or workload reads or follows. */
export interface Watch {
  readonly region: string;
  /** Name, ARN or partial ARN, as written. */
  readonly id: string;
  /** The stage or label whose version matters (AWSCURRENT unless pinned); undefined for a fixed version. */
  readonly stage: string | undefined;
}

/** What a secret looks like now, reduced to what smk follows. */
export interface SecretObservation {
  readonly region: string;
  readonly arn: string;
  readonly name: string;
  /** Followed stage → version id holding it (a stage held by no version is absent). */
  readonly stages: ReadonlyMap<string, string>;
  /** Scheduled for deletion, or gone. */
  readonly deleted: boolean;
}

export type ChangeSource = 'poll' | 'event';

export interface SecretChange {
  readonly secret: SecretObservation;
  /**
   * Undefined on the first observation of the secret when it matches what was synced: a baseline,
   * not a change. On a first observation that differs from the synced versions, those versions.
   */
  readonly previous: SecretObservation | undefined;
  readonly source: ChangeSource;
  /** Event name for event-sourced changes, `poll` otherwise. */
  readonly reason: string;
  readonly detectedAt: number;
  /** When AWS saw it (events), or the previous poll (the earliest it can have happened). */
  readonly changedAfter: number | undefined;
}

/** Whoever acts on a change: the cache, the re-sync of SecretSyncs, the rollout planner. */
export interface ChangeSink {
  secretChanged(change: SecretChange): void | Promise<void>;
}

/** The reads the detector makes: a slice of src/aws's AwsSecretReader. */
export interface VersionReader {
  describe(request: { objectType: 'secretsmanager'; id: string; region: string }): Promise<SecretVersions>;
  listSecretVersions(region: string, options?: { ids?: readonly string[] }): Promise<SecretVersions[]>;
}

export interface DetectorOptions {
  readonly reader: VersionReader;
  /** The secrets in use now (called at every poll and hint). */
  readonly watches: () => readonly Watch[];
  readonly sinks: readonly ChangeSink[];
  readonly logger: Logger;
  /** Default 60 s. */
  readonly intervalMs?: number;
  /** Fraction of the interval added or taken at random (default 0.1). */
  readonly jitter?: number;
  /** Use a name-filtered listing while it needs at most this many calls, else list all (default 5). */
  readonly maxFilteredCalls?: number;
  readonly now?: () => number;
  readonly random?: () => number;
  /**
   * Followed stage → the version the durable record (synced Secrets, SecretSync status) says was
   * synced for it, asked on a secret's first observation only. The in-memory baseline is lost on
   * failover or restart, so a version that moved while no leader ran is a change, not a baseline.
   */
  readonly synced?: (observation: SecretObservation) => ReadonlyMap<string, string>;
}

export type HintOutcome = 'changed' | 'unchanged' | 'unwatched';

export interface Detector {
  /** Polls at once, then every interval. */
  start(): void;
  stop(): Promise<void>;
  /** One poll now (tests, and the first round after taking the lead). */
  poll(): Promise<void>;
  /**
   * The set of watches changed (a source, mapping or workload was added): poll soon, so a new
   * secret has a baseline before its first change. Bursts (a restart's initial list) make one poll.
   */
  refresh(delayMs?: number): void;
  /** Confirms a hint with DescribeSecret; throws on a transient failure (the message is kept). */
  hint(hint: ChangeHint): Promise<HintOutcome>;
  /** The last observation of the secret a watch names, if any. */
  observed(watch: Pick<Watch, 'region' | 'id'>): SecretObservation | undefined;
  /** True once a poll has completed since start. */
  readonly polled: boolean;
}

/** ListSecrets takes at most 10 values per filter. */
const filterValuesPerCall = 10;
/** ListSecrets returns at most 100 secrets per page. */
const pageSize = 100;

export const changesDetected = counter(
  'smk_rotation_changes_total',
  'Secret version changes confirmed, by source (poll or event).',
  ['source'],
);
export const detectionLag = histogram(
  'smk_rotation_detection_lag_seconds',
  'Time from a change in AWS (event time, or the previous poll) to its detection.',
  ['source'],
  [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
);
const polls = counter('smk_rotation_polls_total', 'Change-detection polls, by outcome.', ['outcome']);
const watchedGauge = gauge('smk_rotation_watched_secrets', 'Secrets the change detector follows.', []);

interface Known {
  readonly observation: SecretObservation;
  /** When the read that produced it started: older reads never overwrite newer ones. */
  readonly readStartedAt: number;
}

const stateKey = (region: string, arn: string): string => `${region}\0${arn}`;

function sameObservation(a: SecretObservation, b: SecretObservation): boolean {
  if (a.deleted !== b.deleted || a.stages.size !== b.stages.size) return false;
  for (const [stage, version] of a.stages) if (b.stages.get(stage) !== version) return false;
  return true;
}

/** The name prefix a ListSecrets `name` filter needs for an id (names in ARNs lose their random suffix). */
function filterPrefix(id: string): string {
  const arn = parseArn(id);
  const name = arn?.service === 'secretsmanager' ? /^secret:(.+)$/.exec(arn.resource)?.[1] : undefined;
  if (!name) return id;
  return /-[A-Za-z0-9]{6}$/.test(name) ? name.slice(0, -7) : name;
}

export function createDetector(options: DetectorOptions): Detector {
  const { reader, logger } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const intervalMs = options.intervalMs ?? 60_000;
  const jitter = options.jitter ?? 0.1;
  const maxFilteredCalls = options.maxFilteredCalls ?? 5;
  const known = new Map<string, Known>();
  /** Watch (region, id) → state key of the secret it matched. */
  const matched = new Map<string, string>();
  /** Pages a full listing took last time, per region. */
  const fullPages = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let soon: NodeJS.Timeout | undefined;
  let running = false;
  let polling: Promise<void> | undefined;
  let lastPollAt: number | undefined;
  let polled = false;

  const watchKey = (watch: Pick<Watch, 'region' | 'id'>): string => `${watch.region}\0${watch.id}`;

  function observe(
    versions: SecretVersions,
    region: string,
    followed: ReadonlySet<string>,
  ): SecretObservation {
    const stages = new Map<string, string>();
    for (const [versionId, labels] of versions.versionsToStages) {
      for (const label of labels) if (followed.has(label)) stages.set(label, versionId);
    }
    return {
      region,
      arn: versions.arn,
      name: versions.name,
      stages,
      deleted: versions.deletedDate !== undefined,
    };
  }

  function followedStages(region: string, arn: string, name: string, watches: readonly Watch[]): Set<string> {
    const stages = new Set<string>();
    for (const watch of watches) {
      if (watch.region !== region || watch.stage === undefined) continue;
      if (secretIdMatches(watch.id, arn, name)) stages.add(watch.stage);
    }
    return stages;
  }

  /** On a first observation: what was synced, when it differs from what AWS holds now. */
  function syncedBefore(observation: SecretObservation): SecretObservation | undefined {
    if (!options.synced || observation.deleted) return undefined;
    const synced = options.synced(observation);
    for (const [stage, version] of synced) {
      if (observation.stages.get(stage) !== version) return { ...observation, stages: new Map(synced) };
    }
    return undefined;
  }

  async function apply(
    observation: SecretObservation,
    readStartedAt: number,
    source: ChangeSource,
    reason: string,
    changedAfter: number | undefined,
  ): Promise<boolean> {
    const key = stateKey(observation.region, observation.arn);
    const before = known.get(key);
    if (before && before.readStartedAt > readStartedAt) return false;
    known.set(key, { observation, readStartedAt });
    if (before && sameObservation(before.observation, observation)) return false;
    const previous = before ? before.observation : syncedBefore(observation);
    const detectedAt = now();
    const change: SecretChange = {
      secret: observation,
      previous,
      source,
      reason,
      detectedAt,
      changedAfter,
    };
    if (previous) {
      changesDetected.inc({ source });
      if (changedAfter !== undefined) {
        detectionLag.observe({ source }, Math.max(0, detectedAt - changedAfter) / 1000);
      }
      logger.info(
        {
          secret: observation.name,
          region: observation.region,
          source,
          reason,
          stages: Object.fromEntries(observation.stages),
          deleted: observation.deleted,
          ...(before ? {} : { firstSeen: true }),
        },
        before ? 'secret changed' : 'secret changed since it was last synced',
      );
    }
    for (const sink of options.sinks) {
      try {
        await sink.secretChanged(change);
      } catch (error) {
        logger.error({ secret: observation.name, err: describeError(error) }, 'change sink failed');
      }
    }
    return previous !== undefined;
  }

  async function pollRegion(region: string, watches: readonly Watch[]): Promise<void> {
    const ids = [...new Set(watches.map((watch) => watch.id))];
    const filteredCalls = Math.ceil(new Set(ids.map(filterPrefix)).size / filterValuesPerCall);
    const useFilter = filteredCalls <= Math.min(maxFilteredCalls, fullPages.get(region) ?? maxFilteredCalls);
    const startedAt = now();
    const listed = useFilter
      ? await reader.listSecretVersions(region, { ids })
      : await reader.listSecretVersions(region);
    if (!useFilter) fullPages.set(region, Math.max(1, Math.ceil(listed.length / pageSize)));
    const seen = new Set<string>();
    for (const versions of listed) {
      const followed = followedStages(region, versions.arn, versions.name, watches);
      const matching = watches.filter((watch) => secretIdMatches(watch.id, versions.arn, versions.name));
      if (matching.length === 0) continue;
      const key = stateKey(region, versions.arn);
      seen.add(key);
      for (const watch of matching) matched.set(watchKey(watch), key);
      await apply(observe(versions, region, followed), startedAt, 'poll', 'poll', lastPollAt);
    }
    // A secret seen before that no longer lists at all was deleted for good.
    for (const watch of watches) {
      const key = matched.get(watchKey(watch));
      if (!key || seen.has(key)) continue;
      const before = known.get(key);
      if (!before || before.observation.deleted) continue;
      await apply(
        { ...before.observation, stages: new Map(), deleted: true },
        startedAt,
        'poll',
        'poll',
        lastPollAt,
      );
    }
  }

  async function pollOnce(): Promise<void> {
    const watches = options.watches();
    const byRegion = new Map<string, Watch[]>();
    for (const watch of watches) byRegion.set(watch.region, [...(byRegion.get(watch.region) ?? []), watch]);
    watchedGauge.set(new Set(watches.map(watchKey)).size);
    const startedAt = now();
    let failed = false;
    for (const [region, regionWatches] of byRegion) {
      try {
        await pollRegion(region, regionWatches);
      } catch (error) {
        failed = true;
        logger.warn({ region, err: describeError(error) }, 'change poll failed; next round retries');
      }
    }
    polls.inc({ outcome: failed ? 'failed' : 'ok' });
    if (!failed) lastPollAt = startedAt;
    polled = true;
  }

  function schedule(): void {
    if (!running) return;
    const delay = Math.max(1000, Math.round(intervalMs * (1 + jitter * (2 * random() - 1))));
    timer = setTimeout(() => {
      timer = undefined;
      void detector.poll().finally(schedule);
    }, delay);
    timer.unref();
  }

  const detector: Detector = {
    start() {
      if (running) return;
      running = true;
      void detector.poll().finally(schedule);
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      if (soon) clearTimeout(soon);
      timer = undefined;
      soon = undefined;
      await polling;
    },
    poll() {
      polling ??= pollOnce().finally(() => {
        polling = undefined;
      });
      return polling;
    },
    refresh(delayMs = 500) {
      if (!running || soon) return;
      soon = setTimeout(() => {
        soon = undefined;
        void detector.poll();
      }, delayMs);
      soon.unref();
    },
    async hint(hint) {
      const watches = options.watches();
      const hinted = [hint.arn, hint.secretId].filter((id): id is string => id !== undefined);
      const relevant = watches.filter((watch) => {
        if (hint.region !== undefined && watch.region !== hint.region) return false;
        const key = matched.get(watchKey(watch));
        const seen = key ? known.get(key)?.observation : undefined;
        return hinted.some(
          (id) =>
            id === watch.id ||
            secretIdMatches(watch.id, id, '') ||
            secretIdMatches(id, watch.id, '') ||
            (seen !== undefined && secretIdMatches(id, seen.arn, seen.name)),
        );
      });
      const first = relevant[0];
      if (!first) return 'unwatched';
      const region = first.region;
      const startedAt = now();
      let versions: SecretVersions;
      try {
        versions = await reader.describe({ objectType: 'secretsmanager', id: hint.arn ?? first.id, region });
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        const key = matched.get(watchKey(first));
        const before = key ? known.get(key) : undefined;
        if (!before || before.observation.deleted) return 'unchanged';
        const gone = { ...before.observation, stages: new Map<string, string>(), deleted: true };
        return (await apply(gone, startedAt, 'event', hint.reason, hint.eventTime?.getTime()))
          ? 'changed'
          : 'unchanged';
      }
      const followed = followedStages(region, versions.arn, versions.name, watches);
      for (const watch of watches) {
        if (watch.region === region && secretIdMatches(watch.id, versions.arn, versions.name)) {
          matched.set(watchKey(watch), stateKey(region, versions.arn));
        }
      }
      const changed = await apply(
        observe(versions, region, followed),
        startedAt,
        'event',
        hint.reason,
        hint.eventTime?.getTime(),
      );
      return changed ? 'changed' : 'unchanged';
    },
    observed(watch) {
      const key = matched.get(watchKey(watch));
      return key ? known.get(key)?.observation : undefined;
    },
    get polled() {
      return polled;
    },
  };
  return detector;
}
