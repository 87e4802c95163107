/**
 * After a sync, for either source kind: the events (Created/Updated, or the failure; the metric and
 * the failure's log line are ../status-metrics.ts's recordSync),
 * and when the key runs next (its refresh interval with jitter, or a retry with backoff).
 */
import type { EventRecorder } from '../../kube/events.ts';
import type { WorkQueue } from '../../kube/queue.ts';
import type { SyncJob, SyncSource } from '../jobs.ts';
import { involved } from './release.ts';
import type { SyncOutcome } from './sync.ts';

export function recordOutcome(events: EventRecorder, source: SyncSource, outcome: SyncOutcome): void {
  const who = involved(source);
  if (outcome.ok) {
    for (const target of outcome.targets) {
      if (target.action === 'unchanged') continue;
      const verb = target.action === 'created' ? 'Created' : 'Updated';
      void events.record(
        who,
        'Normal',
        verb,
        `${verb} Secret ${target.name} from AWS (role ${outcome.roleArn})`,
      );
    }
    return;
  }
  void events.record(who, 'Warning', outcome.reason, outcome.message);
}

/** The refresh interval ± `jitter` of it, at least a second. */
export function jittered(ms: number, jitter: number, random: () => number): number {
  return Math.max(1000, Math.round(ms * (1 + jitter * (2 * random() - 1))));
}

export function schedule(
  queue: WorkQueue,
  key: string,
  job: SyncJob | undefined,
  outcome: SyncOutcome,
  refreshDelay: (intervalMs: number) => number,
): void {
  if (outcome.ok) {
    queue.forget(key);
    // OnChange and CreatedOnce sources wait for a change of the object (or a rotation's ask).
    if (job?.refreshPolicy === 'Periodic') queue.addAfter(key, refreshDelay(job.refreshIntervalMs));
    return;
  }
  if (!outcome.retry) return;
  const delay = queue.addRateLimited(key, outcome.retryAfterMs);
  // A short refresh interval pulls the retry in, but never before the API server's Retry-After.
  if (job && job.refreshIntervalMs < delay && outcome.retryAfterMs === undefined)
    queue.addAfter(key, job.refreshIntervalMs);
}
