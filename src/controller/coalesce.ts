/**
 * Reads from many reconciles that run at the same moment go to AWS as one read: reads that
 * arrive less than `windowMs` apart are joined into one call of the underlying reader, which
 * merges duplicates and batches (BatchGetSecretValue, 20 a call). After a restart this turns
 * thousands of per-object reads into a few batch calls.
 *
 * The window slides (each read gives the round another `windowMs`, up to `maxWaitMs` after its
 * first read): on a busy machine the reconciles of one queue turn reach their read several
 * milliseconds apart, and a window fixed from the first read cut their batch into pieces
 * (10,000 SecretSyncs took 1,545 calls at load 7 where a quiet run took 994).
 */
import type { ReadResult, SecretReader, SecretRequest } from '../core/source.ts';

interface Waiting {
  readonly requests: readonly SecretRequest[];
  resolve(results: ReadResult[]): void;
  reject(error: unknown): void;
}

export interface CoalesceOptions {
  /** How long a round waits for another read after the last one came (default 5 ms). */
  readonly windowMs?: number;
  /** The longest a round's first read waits (default 25 ms). */
  readonly maxWaitMs?: number;
  /** A round is sent at once when it holds this many requests (default 400). */
  readonly maxRequests?: number;
}

export function coalescingReader(reader: SecretReader, options: CoalesceOptions = {}): SecretReader {
  const windowMs = options.windowMs ?? 5;
  const maxWaitMs = Math.max(windowMs, options.maxWaitMs ?? 25);
  const maxRequests = options.maxRequests ?? 400;
  let waiting: Waiting[] = [];
  let pendingRequests = 0;
  let timer: NodeJS.Timeout | undefined;
  let roundStartedAt = 0;

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const round = waiting;
    waiting = [];
    pendingRequests = 0;
    if (round.length === 0) return;
    const all = round.flatMap((entry) => entry.requests);
    reader.read(all).then(
      (results) => {
        let offset = 0;
        for (const entry of round) {
          entry.resolve(results.slice(offset, offset + entry.requests.length));
          offset += entry.requests.length;
        }
      },
      (error: unknown) => {
        for (const entry of round) entry.reject(error);
      },
    );
  }

  return {
    read(requests) {
      if (requests.length === 0) return Promise.resolve([]);
      return new Promise<ReadResult[]>((resolve, reject) => {
        waiting.push({ requests, resolve, reject });
        pendingRequests += requests.length;
        if (pendingRequests >= maxRequests) {
          flush();
          return;
        }
        const now = performance.now();
        if (timer === undefined) roundStartedAt = now;
        else clearTimeout(timer);
        timer = setTimeout(flush, Math.max(0, Math.min(windowMs, roundStartedAt + maxWaitMs - now)));
      });
    },
    describe(request) {
      return reader.describe(request);
    },
    // Listings are per discover entry and per identity: nothing to join.
    ...(reader.discover ? { discover: reader.discover.bind(reader) } : {}),
    ...(reader.held ? { held: reader.held.bind(reader) } : {}),
  };
}
