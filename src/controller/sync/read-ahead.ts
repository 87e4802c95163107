/**
 * Read-ahead: a sync's read also carries the secrets that the next syncs queued in its namespace,
 * acting as the same identity, will ask for — so a batch call holds up to 20 secrets where it
 * would hold the few that the syncs running at this moment ask for.
 *
 * Why: after a restart thousands of syncs are queued at once, each namespace's in turn (the queue
 * has one lane per namespace), and the syncs that run together ask for few distinct secrets; each
 * batch call carried about four (10,000 SecretSyncs over 1,000 secrets took 1,263 calls; with
 * the read-ahead, 306). The values read ahead land in the process's cache, where the queued syncs
 * find them.
 *
 * Tenant rule: only requests of jobs in the same namespace, with the same ServiceAccount and the
 * same role chain, ride along — the identity that reads them is the one their own syncs would
 * read them as, and their outcome is never shown to anyone (each sync reads, and reports, its own).
 * In a steady state (syncs spread over their refresh intervals) nothing is queued and nothing is
 * read ahead.
 */

import { batchLimit } from '../../aws/index.ts';
import { roleChainKey } from '../../aws/role-chain.ts';
import { planRequests, requestKey } from '../../core/payloads.ts';
import type { SecretRequest } from '../../core/source.ts';
import { parseMountSpec } from '../../core/spec.ts';
import type { SyncJob } from '../jobs.ts';

/** One request of a queued job, with the keys the read-ahead compares it by. */
interface PlannedRead {
  readonly request: SecretRequest;
  /** The request itself: equal keys, equal reads. */
  readonly key: string;
  /** Object type and region: requests of one batch call. */
  readonly batch: string;
}

/** What a queued job would read, worked out once per object version. */
interface PlannedReads {
  /** Namespace, ServiceAccount and role chain: requests ride along only within one identity. */
  readonly identity: string;
  readonly reads: readonly PlannedRead[];
}

export interface ReadAheadOptions {
  /** The next keys queued in a namespace's lane, in hand-out order (WorkQueue.peek). */
  readonly queued: (namespace: string, limit: number) => readonly string[];
  /**
   * The object behind a queued key and its job, or undefined when there is none (deleted, not
   * opted in, invalid): the object is the memo's key, so an updated object is planned again.
   */
  readonly jobOf: (key: string) => { readonly object: object; readonly job: () => SyncJob } | undefined;
  readonly defaultRegion: string | undefined;
  /** As the sync itself parses: a spec it refuses reads nothing, so nothing is read ahead for it. */
  readonly allowExpressions: boolean;
  /** Queued keys looked at per sync (default 4 batches' worth). */
  readonly lookahead?: number;
  /**
   * A request chosen this recently is not chosen again (default 1 s): a read waits a few
   * milliseconds to be joined with others before the cache sees it in flight, and the syncs
   * running beside this one should carry the secrets after its batch, not the same ones again.
   */
  readonly recentMs?: number;
  readonly now?: () => number;
}

/** Bound on the requests remembered as read ahead (a burst of syncs older than recentMs frees them). */
const maxRecent = 10_000;

/**
 * The requests to read with `own`: none when the cache holds all of `own` (the sync makes no
 * call, so nothing could ride along; only about one sync in 20 looks at the queue), else up to
 * one batch of queued syncs' requests that `held` says would make a call.
 */
export type ReadAhead = (
  job: SyncJob,
  own: readonly SecretRequest[],
  held: (request: SecretRequest) => boolean,
) => SecretRequest[];

/** Where requests are batched together: one call per object type and region. */
const batchOf = (request: SecretRequest): string => `${request.objectType} ${request.region}`;

const plannedRead = (request: SecretRequest): PlannedRead => ({
  request,
  key: requestKey(request),
  batch: batchOf(request),
});

function identityOf(job: SyncJob): string {
  const chain = job.roleChain ? roleChainKey(job.roleChain.chain) : '';
  return JSON.stringify([job.source.namespace, job.serviceAccountName, chain]);
}

export function createReadAhead(options: ReadAheadOptions): ReadAhead {
  const lookahead = options.lookahead ?? 4 * batchLimit;
  const recentMs = options.recentMs ?? 1_000;
  const now = options.now ?? Date.now;
  const planned = new WeakMap<object, PlannedReads | null>();
  /** Identity and request → when it was chosen; insertion order is age order. */
  const recent = new Map<string, number>();

  const chosenRecently = (key: string, at: number): boolean => {
    const readAt = recent.get(key);
    return readAt !== undefined && at - readAt < recentMs;
  };

  function markChosen(key: string, at: number): void {
    recent.delete(key);
    recent.set(key, at);
  }

  function forgetOld(at: number): void {
    for (const [key, readAt] of recent) {
      if (at - readAt < recentMs && recent.size <= maxRecent) return;
      recent.delete(key);
    }
  }

  function plan(key: string): PlannedReads | undefined {
    const found = options.jobOf(key);
    if (!found) return undefined;
    const known = planned.get(found.object);
    if (known !== undefined) return known ?? undefined;
    let reads: PlannedReads | null = null;
    try {
      const job = found.job();
      // A CreatedOnce job reads nothing once its Secret exists: reading for it could be a call more.
      if (job.refreshPolicy !== 'CreatedOnce') {
        const spec = parseMountSpec(job.params, key, { allowExpressions: options.allowExpressions });
        const requests = planRequests(spec, options.defaultRegion, key);
        reads = { identity: identityOf(job), reads: requests.map((object) => plannedRead(object.primary)) };
      }
    } catch {
      // An invalid spec reads nothing; its own sync reports it.
    }
    planned.set(found.object, reads);
    return reads ?? undefined;
  }

  return (job, own, held) => {
    if (own.length === 0 || own.length >= batchLimit || own.every(held)) return [];
    const identity = identityOf(job);
    const at = now();
    forgetOld(at);
    const batches = new Set(own.map(batchOf));
    const mine = new Set(own.map(requestKey));
    const ahead: SecretRequest[] = [];
    for (const key of options.queued(job.source.namespace, lookahead)) {
      const planned = plan(key);
      if (!planned || planned.identity !== identity) continue;
      for (const read of planned.reads) {
        const recentKey = `${identity} ${read.key}`;
        if (!batches.has(read.batch) || mine.has(read.key) || chosenRecently(recentKey, at)) continue;
        if (held(read.request)) continue;
        markChosen(recentKey, at);
        ahead.push(read.request);
        if (own.length + ahead.length >= batchLimit) return ahead;
      }
    }
    return ahead;
  };
}
