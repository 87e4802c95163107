/**
 * What a SecretSync shows of its last sync (status and the Ready condition), and when a
 * SecretSync found at start-up is due: both pure, so the controller only writes what they say.
 */
import { parseDuration } from '../../core/duration.ts';
import type { SyncJob } from '../jobs.ts';
import type { Condition, SecretSyncObject, SyncStatus } from '../kinds.ts';
import type { SyncOutcome } from './sync.ts';

export const forceSyncAnnotation = 'smk.dev/force-sync';

export function readyCondition(status: SyncStatus | undefined): Condition | undefined {
  return status?.conditions?.find((condition) => condition.type === 'Ready');
}

/**
 * Whether a `smk.dev/force-sync` annotation asks for a sync that has not happened since: its value
 * is a time (epoch seconds, as the docs' `date +%s`, or milliseconds, or an ISO time as the
 * rotation controller writes it, optionally followed by more words). A running controller reacts
 * to the annotation's change; this is for one set while no controller ran. A value that is not a
 * time cannot be judged and is honoured.
 */
export function forceSyncPending(value: string | undefined, lastSyncMs: number): boolean {
  if (value === undefined || value.trim() === '') return false;
  const first = value.trim().split(/\s+/)[0] ?? '';
  let askedMs: number;
  if (/^\d+$/.test(first)) {
    const number = Number(first);
    askedMs = number < 1e11 ? number * 1000 : number;
  } else {
    askedMs = Date.parse(first);
  }
  return Number.isNaN(askedMs) || askedMs > lastSyncMs;
}

export interface DueContext {
  readonly now: number;
  /** In [0, 1): where in the jitter window this one lands. */
  readonly random: number;
  /** Fraction of the refresh interval the start is spread over. */
  readonly jitter: number;
  /** Whether the Secret the SecretSync writes is in the cache. */
  readonly targetExists: (namespace: string, name: string) => boolean;
}

/**
 * After a restart, a SecretSync that was synced recently at its current generation (and whose
 * Secret still exists) is not fetched again at once but at its next due time, spread by jitter:
 * no thundering herd of AWS reads when the controller restarts. Returns the delay in ms.
 */
export function initialDelay(object: SecretSyncObject, context: DueContext): number {
  const ready = readyCondition(object.status);
  const lastSync = object.status?.lastSyncTime ? Date.parse(object.status.lastSyncTime) : Number.NaN;
  const interval = object.spec?.refreshInterval ? parseDuration(object.spec.refreshInterval) : 3_600_000;
  if (
    ready?.status !== 'True' ||
    object.status?.observedGeneration !== object.metadata.generation ||
    Number.isNaN(lastSync) ||
    interval === undefined
  ) {
    return 0;
  }
  const secretName = object.spec?.target?.name ?? object.metadata.name;
  if (object.spec?.creationPolicy !== 'Merge' && !context.targetExists(object.metadata.namespace, secretName))
    return 0;
  if (forceSyncPending(object.metadata.annotations?.[forceSyncAnnotation], lastSync)) return 0;
  return (
    Math.max(0, lastSync + interval - context.now) + Math.round(interval * context.jitter * context.random)
  );
}

/**
 * The status to write after a sync, or undefined when a failure repeats what is already shown
 * (no write per retry). The Ready condition keeps its transition time while its status holds.
 */
export function nextStatus(
  object: SecretSyncObject,
  job: SyncJob | undefined,
  outcome: SyncOutcome,
  now: number,
): SyncStatus | undefined {
  const previous = object.status;
  const before = readyCondition(previous);
  const generation = object.metadata.generation ?? 0;
  const condition: Condition = outcome.ok
    ? {
        type: 'Ready',
        status: 'True',
        reason: 'Synced',
        message: `Secret ${job?.targets.map((t) => t.name).join(', ')} holds ${outcome.keys} key${outcome.keys === 1 ? '' : 's'} from AWS (role ${outcome.roleArn})`,
        observedGeneration: generation,
        lastTransitionTime: '',
      }
    : {
        type: 'Ready',
        status: 'False',
        reason: outcome.reason,
        message: outcome.message,
        observedGeneration: generation,
        lastTransitionTime: '',
      };
  condition.lastTransitionTime =
    before && before.status === condition.status && before.lastTransitionTime
      ? before.lastTransitionTime
      : new Date(now).toISOString();
  if (
    !outcome.ok &&
    before?.reason === condition.reason &&
    before.message === condition.message &&
    previous?.observedGeneration === generation
  ) {
    return undefined;
  }
  return {
    observedGeneration: generation,
    ...(job?.targets[0] ? { secretName: job.targets[0].name } : {}),
    ...(outcome.ok
      ? { lastSyncTime: new Date(now).toISOString(), syncedVersions: [...outcome.versions] }
      : {
          ...(previous?.lastSyncTime ? { lastSyncTime: previous.lastSyncTime } : {}),
          ...(previous?.syncedVersions ? { syncedVersions: previous.syncedVersions } : {}),
        }),
    conditions: [condition],
  };
}
