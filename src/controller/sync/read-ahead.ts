/**
 * Read-ahead: a sync's read also carries the secrets that the next syncs queued in its namespace,
 * acting as the same identity, will ask for — so a batch call holds up to 20 secrets where it
 * would hold the few that the syncs running at this moment ask for.
 *
 * Why: after a restart thousands of syncs are queued at once, each namespace's in turn (the queue
 * has one lane per namespace), and the syncs that run together ask for few distinct secrets; each
 * batch call carried about four (10,000 SecretSyncs over 1,000 secrets took 1,263 calls). The
 * values read ahead land in the process's cache, where the queued syncs find them.
 *
 * Tenant rule: only requests of jobs in the same namespace, with the same ServiceAccount and the
 * same role chain, ride along — the identity that reads them is the one their own syncs would
 * read them as, and their outcome is never shown to anyone (each sync reads, and reports, its own).
 * In a steady state (syncs spread over their refresh intervals) nothing is queued and nothing is
 * read ahead.
 */

import { batchLimit } from '../../aws/index.ts';
import { roleChainKey } from '../../aws/role-chain.ts';
import { planRequests } from '../../core/payloads.ts';
import type { SecretRequest } from '../../core/source.ts';
import { parseMountSpec } from '../../core/spec.ts';
import type { SyncJob } from '../jobs.ts';

/** What a queued job would read, worked out once per object version. */
interface PlannedReads {
  /** Namespace, ServiceAccount and role chain: requests ride along only within one identity. */
  readonly identity: string;
  readonly requests: readonly SecretRequest[];
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
  /** Queued keys looked at per sync (default 4 batches' worth). */
  readonly lookahead?: number;
  /**
   * A request read ahead this recently is not read ahead again (default 5 s, well inside the
   * cache's 15 s stage TTL): the syncs running beside this one peek at the same queue, and each
   * should carry the secrets after the last one's, not a few stragglers in a call of their own.
   */
  readonly recentMs?: number;
  readonly now?: () => number;
}

/** Bound on the requests remembered as read ahead (a burst of syncs older than recentMs frees them). */
const maxRecent = 10_000;

export type ReadAhead = (job: SyncJob, own: readonly SecretRequest[]) => SecretRequest[];

const requestKey = (request: SecretRequest): string =>
  JSON.stringify([
    request.objectType,
    request.id,
    request.region,
    request.versionId ?? null,
    request.versionStage ?? null,
  ]);

/** Where requests are batched together: one call per object type and region. */
const batchOf = (request: SecretRequest): string => `${request.objectType} ${request.region}`;

export function identityOf(job: SyncJob): string {
  const chain = job.roleChain ? roleChainKey(job.roleChain.chain) : '';
  return JSON.stringify([job.source.namespace, job.serviceAccountName, chain]);
}

export function createReadAhead(options: ReadAheadOptions): ReadAhead {
  const lookahead = options.lookahead ?? 4 * batchLimit;
  const recentMs = options.recentMs ?? 5_000;
  const now = options.now ?? Date.now;
  const planned = new WeakMap<object, PlannedReads | null>();
  /** Identity and request → when it was read ahead; insertion order is age order. */
  const recent = new Map<string, number>();

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
        // Expressions are no business of a plan: the requests are the same with or without them.
        const spec = parseMountSpec(job.params, key, { allowExpressions: true });
        const requests = planRequests(spec, options.defaultRegion, key).map((object) => object.primary);
        reads = { identity: identityOf(job), requests };
      }
    } catch {
      // An invalid spec reads nothing; its own sync reports it.
    }
    planned.set(found.object, reads);
    return reads ?? undefined;
  }

  return (job, own) => {
    if (own.length === 0 || own.length >= batchLimit) return [];
    const identity = identityOf(job);
    const at = now();
    forgetOld(at);
    const batches = new Set(own.map(batchOf));
    const seen = new Set(own.map(requestKey));
    const ahead: SecretRequest[] = [];
    for (const key of options.queued(job.source.namespace, lookahead)) {
      const reads = plan(key);
      if (!reads || reads.identity !== identity) continue;
      for (const request of reads.requests) {
        const requestId = requestKey(request);
        if (!batches.has(batchOf(request)) || seen.has(requestId)) continue;
        seen.add(requestId);
        const recentKey = `${identity} ${requestId}`;
        const readAt = recent.get(recentKey);
        if (readAt !== undefined && at - readAt < recentMs) continue;
        recent.delete(recentKey);
        recent.set(recentKey, at);
        ahead.push(request);
        if (own.length + ahead.length >= batchLimit) return ahead;
      }
    }
    return ahead;
  };
}
