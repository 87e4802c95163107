/**
 * A supervised informer: list, then watch from the list's resourceVersion, keeping a cache and
 * calling handlers on add / update / delete. client-node's ListWatch stops for good after some
 * errors and cannot be told to relist or report liveness (client-node issues 596, 958), so this
 * one watches through ./api-source.ts with a supervisor around it:
 *   - restart with backoff after any list or watch error (410 Gone relists at once);
 *   - a periodic full relist that repairs any missed event (diffed against the cache);
 *   - a watchdog that restarts when the stream shows no sign of life (event, bookmark, reconnect)
 *     for longer than `silenceMs`.
 */
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import { apiStatus } from './api-errors.ts';
import { type BackoffOptions, backoffDelay, type Clock, systemClock } from './queue.ts';

export interface KubeObject {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
}

export interface ListResult<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One watch stream; `abort` ends it (done is then called with no error). */
export interface WatchHandle {
  abort(): void;
}

/** Where an informer gets its data: the API server in production, a script in unit tests. */
export interface ListWatchSource<T> {
  /** What it lists, for a person reading a refusal: `secrets in all namespaces (label selector …)`. */
  readonly resource?: string;
  list(): Promise<ListResult<T>>;
  watch(
    resourceVersion: string,
    onEvent: (type: WatchEventType, object: T | { readonly code?: number }) => void,
    onDone: (error: unknown) => void,
  ): Promise<WatchHandle>;
}

export interface InformerHandlers<T> {
  add?(object: T): void;
  update?(object: T, previous: T): void;
  delete?(object: T): void;
}

export interface InformerOptions<T = never> {
  /** Names the informer in logs and metrics (e.g. `secretsyncs`). */
  readonly name: string;
  readonly logger?: Logger;
  readonly relistIntervalMs?: number;
  readonly silenceMs?: number;
  readonly restartBackoff?: BackoffOptions;
  readonly clock?: Clock;
  /**
   * Applied to every object before it is cached or handed to a handler, e.g. to drop
   * managedFields a controller never reads: at 10,000 objects that is tens of MB of heap.
   */
  readonly transform?: (object: T) => T;
}

export interface Informer<T> {
  addHandlers(handlers: InformerHandlers<T>): void;
  /** Starts; resolves after the first successful list (the cache is then synced). */
  start(): Promise<void>;
  stop(): void;
  get(namespace: string | undefined, name: string): T | undefined;
  list(): T[];
  /** True once listed, and while no restart is pending. */
  readonly healthy: boolean;
  readonly synced: boolean;
}

const restarts = counter('smk_informer_restarts_total', 'Informer restarts, by informer and reason.', [
  'informer',
  'reason',
]);

export function objectKey(object: KubeObject): string {
  const namespace = object.metadata?.namespace ?? '';
  return `${namespace}/${object.metadata?.name ?? ''}`;
}

export function createInformer<T extends KubeObject>(
  source: ListWatchSource<T>,
  options: InformerOptions<T>,
): Informer<T> {
  const logger = options.logger ?? silentLogger();
  const clock = options.clock ?? systemClock;
  const relistIntervalMs = options.relistIntervalMs ?? 10 * 60 * 1000;
  const silenceMs = options.silenceMs ?? 3 * 60 * 1000;
  const backoff = options.restartBackoff ?? { baseMs: 500, maxMs: 30_000, jitter: 0.3 };

  const cache = new Map<string, T>();
  const transform = options.transform ?? ((object: T): T => object);
  const handlers: InformerHandlers<T>[] = [];
  let resourceVersion = '';
  let stopped = true;
  let synced = false;
  let failures = 0;
  let restartPending = false;
  let generation = 0;
  let watch: WatchHandle | undefined;
  let lastActivity = clock.now();
  let cancelRelist: (() => void) | undefined;
  let cancelRetry: (() => void) | undefined;
  let cancelWatchdog: (() => void) | undefined;
  let firstSync: { resolve(): void } | undefined;

  function emit(kind: 'add' | 'update' | 'delete', object: T, previous?: T): void {
    for (const handler of handlers) {
      try {
        if (kind === 'add') handler.add?.(object);
        else if (kind === 'delete') handler.delete?.(object);
        else if (previous !== undefined) handler.update?.(object, previous);
      } catch (error) {
        logger.error({ informer: options.name, err: describeError(error) }, 'informer handler failed');
      }
    }
  }

  function upsert(object: T): void {
    const key = objectKey(object);
    const previous = cache.get(key);
    cache.set(key, object);
    if (previous === undefined) emit('add', object);
    else if (previous.metadata?.resourceVersion !== object.metadata?.resourceVersion)
      emit('update', object, previous);
  }

  function remove(object: T): void {
    const key = objectKey(object);
    const previous = cache.get(key);
    if (previous === undefined) return;
    cache.delete(key);
    emit('delete', object);
  }

  function endWatch(): void {
    const current = watch;
    watch = undefined;
    generation += 1;
    current?.abort();
  }

  function scheduleRestart(reason: string, error: unknown, verb?: 'list' | 'watch'): void {
    if (stopped || restartPending) return;
    endWatch();
    failures += 1;
    restartPending = true;
    // The metric's reason is a word from a closed set; the HTTP status is in the log line.
    restarts.inc({
      informer: options.name,
      reason: verb === 'list' ? 'ListFailed' : verb === 'watch' ? 'WatchFailed' : 'WatchNotStarted',
    });
    const delay = backoffDelay(failures, backoff, Math.random);
    const status = apiStatus(error) ?? (error as { statusCode?: number } | null)?.statusCode;
    if (verb && (status === 401 || status === 403)) {
      logger.error(
        { informer: options.name, reason, retryInMs: delay },
        refusalMessage(status, verb, source.resource ?? options.name),
      );
    } else {
      logger.warn(
        { informer: options.name, reason, err: describeError(error), retryInMs: delay },
        'informer restarting',
      );
    }
    cancelRetry = clock.schedule(() => {
      cancelRetry = undefined;
      restartPending = false;
      void relist();
    }, delay);
  }

  async function relist(): Promise<void> {
    if (stopped) return;
    endWatch();
    const myGeneration = generation;
    let listed: ListResult<T>;
    try {
      listed = await source.list();
    } catch (error) {
      if (myGeneration === generation)
        scheduleRestart(`list failed (HTTP ${apiStatus(error) ?? '-'})`, error, 'list');
      return;
    }
    if (stopped || myGeneration !== generation) return;
    lastActivity = clock.now();
    const seen = new Set<string>();
    for (const item of listed.items) {
      const object = transform(item);
      seen.add(objectKey(object));
      upsert(object);
    }
    for (const [key, object] of [...cache]) if (!seen.has(key)) remove(object);
    resourceVersion = listed.resourceVersion;
    if (!synced) {
      synced = true;
      firstSync?.resolve();
      firstSync = undefined;
    }
    await startWatch(myGeneration);
  }

  async function startWatch(myGeneration: number): Promise<void> {
    let gone = false;
    const onEvent = (type: WatchEventType, object: T | { readonly code?: number }): void => {
      if (myGeneration !== generation) return;
      lastActivity = clock.now();
      if (type === 'ERROR') {
        if ((object as { code?: number }).code === 410) gone = true;
        return;
      }
      const typed = type === 'BOOKMARK' ? (object as T) : transform(object as T);
      const version = typed.metadata?.resourceVersion;
      if (version) resourceVersion = version;
      if (type === 'ADDED' || type === 'MODIFIED') upsert(typed);
      else if (type === 'DELETED') remove(typed);
      failures = 0;
    };
    const onDone = (error: unknown): void => {
      if (myGeneration !== generation || stopped) return;
      watch = undefined;
      lastActivity = clock.now();
      const status = apiStatus(error) ?? (error as { statusCode?: number } | null)?.statusCode;
      if (gone || status === 410) {
        void relist();
        return;
      }
      const timedOut = (error as { name?: string } | null)?.name === 'TimeoutError';
      if (error && !timedOut) {
        scheduleRestart(`watch failed (HTTP ${status ?? '-'})`, error, 'watch');
        return;
      }
      // A server-side close or our own idle timeout: carry on from where we were.
      void startWatch(myGeneration);
    };
    try {
      const handle = await source.watch(resourceVersion, onEvent, onDone);
      if (myGeneration !== generation || stopped) handle.abort();
      else watch = handle;
    } catch (error) {
      if (myGeneration === generation) scheduleRestart('watch could not start', error);
    }
  }

  function armRelist(): void {
    cancelRelist = clock.schedule(() => {
      if (stopped) return;
      if (!restartPending) void relist();
      armRelist();
    }, relistIntervalMs);
  }

  function armWatchdog(): void {
    cancelWatchdog = clock.schedule(
      () => {
        if (stopped) return;
        if (!restartPending && clock.now() - lastActivity > silenceMs) {
          restarts.inc({ informer: options.name, reason: 'Silent' });
          logger.warn({ informer: options.name, silentForMs: clock.now() - lastActivity }, 'informer silent');
          lastActivity = clock.now();
          void relist();
        }
        armWatchdog();
      },
      Math.max(1, Math.floor(silenceMs / 2)),
    );
  }

  return {
    addHandlers(handler) {
      handlers.push(handler);
    },
    start() {
      if (!stopped) return Promise.resolve();
      stopped = false;
      lastActivity = clock.now();
      const done = new Promise<void>((resolve) => {
        firstSync = { resolve };
      });
      armRelist();
      armWatchdog();
      void relist();
      return done;
    },
    stop() {
      stopped = true;
      cancelRelist?.();
      cancelRetry?.();
      cancelWatchdog?.();
      restartPending = false;
      endWatch();
      firstSync?.resolve();
      firstSync = undefined;
    },
    get(namespace, name) {
      return cache.get(`${namespace ?? ''}/${name}`);
    },
    list() {
      return [...cache.values()];
    },
    get healthy() {
      return synced && !restartPending && !stopped;
    },
    get synced() {
      return synced;
    },
  };
}

/**
 * The log message for a list or watch the API server refused: a refusal does not heal by itself,
 * so it says what this identity may not do and what it needs (RBAC list and watch, or credentials).
 */
export function refusalMessage(status: 401 | 403, verb: 'list' | 'watch', what: string): string {
  return status === 403
    ? `forbidden: this identity may not ${verb} ${what}; it needs RBAC list and watch there (retrying)`
    : `unauthorized: the API server refused this identity's credentials to ${verb} ${what} (retrying)`;
}

/** `/apis/smk.dev/v1alpha1/namespaces/a/secretsyncs` → `secretsyncs.smk.dev in namespace a`. */
export function describeResource(path: string, labelSelector?: string): string {
  const match = /^\/(?:api\/[^/]+|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)$/.exec(path);
  if (!match) return path;
  const [, group, namespace, plural] = match;
  const resource = group ? `${plural}.${group}` : (plural ?? path);
  const scope = namespace ? `in namespace ${decodeURIComponent(namespace)}` : 'in all namespaces';
  return `${resource} ${scope}${labelSelector ? ` (label selector ${labelSelector})` : ''}`;
}

/** The watch path of a resource, cluster-wide or in one namespace. */
export function resourcePath(apiVersion: string, plural: string, namespace?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${plural}` : `${base}/${plural}`;
}
