/**
 * A pool of workers draining one rate-limited work queue (./queue.ts): each takes a key, runs
 * the controller's reconcile, and on a failure queues the key again after its backoff (never
 * before the API server's Retry-After). The manager (./manager.ts) starts pools when this replica
 * leads and, on stop, shuts the queue (no new work) and waits for the keys in flight.
 */
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { retryAfterMsOf } from './client.ts';
import { createWorkQueue, type WorkQueue, type WorkQueueOptions } from './queue.ts';

export interface WorkerPoolOptions {
  /** Names the pool in logs (e.g. `sync`, `write-through`). */
  readonly name: string;
  /** Keys processed at once. */
  readonly concurrency: number;
  readonly queue?: WorkQueueOptions;
  /** Runs one key; a throw is a failure retried with backoff (see onError). */
  readonly reconcile: (key: string) => Promise<void>;
  /**
   * What a failure does; returns the retry delay it chose (for the log). Default: the key's
   * backoff, at least the error's Retry-After.
   */
  readonly onError?: (key: string, error: unknown, queue: WorkQueue) => number;
  /** After each key (success or failure), e.g. to publish the queue's depth. */
  readonly afterEach?: (queue: WorkQueue) => void;
  readonly logger: Logger;
}

export interface WorkerPool {
  readonly name: string;
  readonly queue: WorkQueue;
  /** Keys being reconciled now. */
  readonly inFlight: number;
  /** Starts the workers (once; later calls do nothing). */
  start(): void;
  /** Stops taking keys; resolves when the keys in flight finished or `graceMs` passed. */
  stop(graceMs: number): Promise<void>;
}

export function createWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const { logger } = options;
  const queue = createWorkQueue(options.queue);
  const onError =
    options.onError ??
    ((key: string, error: unknown, failed: WorkQueue) => failed.addRateLimited(key, retryAfterMsOf(error)));
  let workers: Promise<void>[] = [];
  let inFlight = 0;

  async function work(): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      inFlight += 1;
      try {
        await options.reconcile(key);
      } catch (error) {
        const retryInMs = onError(key, error, queue);
        logger.warn({ key, err: describeError(error), retryInMs }, `${options.name} failed`);
      } finally {
        inFlight -= 1;
        queue.done(key);
        options.afterEach?.(queue);
      }
    }
  }

  return {
    name: options.name,
    queue,
    get inFlight() {
      return inFlight;
    },
    start() {
      if (workers.length > 0) return;
      workers = Array.from({ length: options.concurrency }, () => work());
      logger.info({ concurrency: options.concurrency }, `${options.name} workers started`);
    },
    async stop(graceMs) {
      queue.shutDown();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
        timer.unref();
      });
      await Promise.race([Promise.all(workers), timeout]);
      clearTimeout(timer);
      if (inFlight > 0) logger.warn({ inFlight }, `${options.name} stopped with keys still running`);
      workers = [];
    },
  };
}
