/**
 * The manager's informers (./manager.ts): one per kind (and label selector) per namespace scope,
 * trimmed once, shared by every controller that asks. Each records its last list or watch failure
 * so readiness (./gate.ts) can say what a controller waits for.
 */
import type { Logger } from '../core/log.ts';
import { type CacheState, failureText } from './gate.ts';
import { createInformer, type Informer, type InformerHandlers, type ListWatchSource } from './informer.ts';
import { kindKey, type ResourceKind } from './kinds.ts';
import type { Clock } from './queue.ts';

/** One kind's cache across the manager's namespaces. */
export interface SharedInformer<T> {
  /**
   * Handlers see every add/update/delete from now on (an add before the first list included);
   * objects already cached are handed to `add` at once, as client-go does for a late handler (a
   * controller whose probe answered after another's started the informer misses nothing).
   */
  addHandlers(handlers: InformerHandlers<T>): void;
  get(namespace: string, name: string): T | undefined;
  list(): T[];
  readonly synced: boolean;
  readonly healthy: boolean;
}

export interface SharedInformersOptions {
  readonly logger: Logger;
  /** Namespace scopes: `[undefined]` for all namespaces. */
  readonly scopes: readonly (string | undefined)[];
  readonly sourceFor: <T>(kind: ResourceKind<T>, namespace: string | undefined) => ListWatchSource<T>;
  readonly relistIntervalMs?: number | undefined;
  readonly silenceMs?: number | undefined;
  readonly clock?: Clock | undefined;
}

export interface SharedInformers {
  /** The shared informer of `kind` (built on first ask; started at once once `start` ran). */
  get<T>(kind: ResourceKind<T>): SharedInformer<T>;
  /** Starts every informer, and each asked for later; `onFirstList` runs after each one's first list. */
  start(onFirstList: () => void): void;
  stop(): void;
  /** The caches of the kinds `keys` (kindKey), or of every kind no key names when `except` is set. */
  states(keys: Iterable<string>, except?: boolean): CacheState[];
  /** Every cache listed once. */
  readonly synced: boolean;
}

interface Watched {
  readonly informer: Informer<never>;
  readonly resource: string;
  /** Its last list or watch failure since its last good list (read while it is not healthy). */
  problem: string | undefined;
}

interface Entry {
  readonly kind: ResourceKind<never>;
  readonly scoped: Map<string, Watched>;
  readonly view: SharedInformer<never>;
}

/** Tells `record` each failure of a source, and each good list (the informer logs and retries). */
function observed<T>(
  source: ListWatchSource<T>,
  resource: string,
  record: (problem: string | undefined) => void,
): ListWatchSource<T> {
  return {
    ...(source.resource ? { resource: source.resource } : {}),
    async list() {
      try {
        const listed = await source.list();
        record(undefined);
        return listed;
      } catch (error) {
        record(failureText('list', resource, error));
        throw error;
      }
    },
    async watch(resourceVersion, onEvent, onDone) {
      try {
        return await source.watch(resourceVersion, onEvent, (error) => {
          // A server-side close or the idle timeout is no failure: the informer carries on.
          if (error && (error as { name?: string }).name !== 'TimeoutError') {
            record(failureText('watch', resource, error));
          }
          onDone(error);
        });
      } catch (error) {
        record(failureText('watch', resource, error));
        throw error;
      }
    },
  };
}

export function createSharedInformers(options: SharedInformersOptions): SharedInformers {
  const { logger, scopes } = options;
  const entries = new Map<string, Entry>();
  const listing = new Set<Informer<never>>();
  let onListed: (() => void) | undefined;
  let stopped = false;

  function build<T>(kind: ResourceKind<T>): Entry {
    const scoped = new Map<string, Watched>();
    const selector = kind.labelSelector ? `[${kind.labelSelector}]` : '';
    const kindScopes = kind.clusterScoped ? [undefined] : scopes;
    for (const namespace of kindScopes) {
      const name = `${kind.plural}${selector}${namespace ? `/${namespace}` : ''}`;
      const source = options.sourceFor(kind, namespace) as ListWatchSource<T & object>;
      const watched = { resource: source.resource ?? name, problem: undefined as string | undefined };
      const informer = createInformer<T & object>(
        observed(source, watched.resource, (problem) => {
          watched.problem = problem;
        }),
        {
          name,
          logger,
          ...(options.relistIntervalMs ? { relistIntervalMs: options.relistIntervalMs } : {}),
          ...(options.silenceMs ? { silenceMs: options.silenceMs } : {}),
          ...(options.clock ? { clock: options.clock } : {}),
          ...(kind.transform ? { transform: kind.transform as (object: T & object) => T & object } : {}),
        },
      );
      scoped.set(
        namespace ?? '',
        Object.assign(watched, { informer: informer as unknown as Informer<never> }),
      );
    }
    const all = [...scoped.values()].map((watched) => watched.informer as unknown as Informer<T>);
    const view: SharedInformer<T> = {
      addHandlers(handlers) {
        for (const informer of all) {
          informer.addHandlers(handlers);
          for (const object of informer.list()) handlers.add?.(object);
        }
      },
      get(namespace, name) {
        const scope = kindScopes[0] === undefined ? '' : namespace;
        return (scoped.get(scope)?.informer as unknown as Informer<T> | undefined)?.get(
          kind.clusterScoped ? undefined : namespace,
          name,
        );
      },
      list() {
        return all.flatMap((informer) => informer.list());
      },
      get synced() {
        return all.every((informer) => informer.synced);
      },
      get healthy() {
        return all.every((informer) => informer.healthy);
      },
    };
    return { kind, scoped, view } as unknown as Entry;
  }

  function startEach(watched: Iterable<Watched>): void {
    const listed = onListed;
    if (!listed || stopped) return;
    for (const { informer } of watched) {
      if (listing.has(informer)) continue;
      listing.add(informer);
      void informer.start().then(listed);
    }
  }

  const allWatched = (): Watched[] => [...entries.values()].flatMap((entry) => [...entry.scoped.values()]);

  return {
    get<T>(kind: ResourceKind<T>): SharedInformer<T> {
      const key = kindKey(kind);
      const existing = entries.get(key);
      if (existing) {
        // A second trim would be applied to objects the first reader already holds: one kind, one trim.
        if (existing.kind.transform !== kind.transform) {
          throw new Error(`${key} is already watched with another transform: declare the kind once`);
        }
        return existing.view as unknown as SharedInformer<T>;
      }
      const entry = build(kind);
      entries.set(key, entry);
      // Asked for after start (a CRD found served, a controller added late): it starts listing now.
      startEach(entry.scoped.values());
      return entry.view as unknown as SharedInformer<T>;
    },
    start(onFirstList) {
      onListed = onFirstList;
      startEach(allWatched());
    },
    stop() {
      stopped = true;
      for (const { informer } of allWatched()) informer.stop();
    },
    states(keys, except = false) {
      const named = new Set(keys);
      return [...entries]
        .filter(([key]) => named.has(key) !== except)
        .flatMap(([, entry]) => [...entry.scoped.values()])
        .map((watched) => ({
          resource: watched.resource,
          synced: watched.informer.synced,
          healthy: watched.informer.healthy,
          problem: watched.problem,
        }));
    },
    get synced() {
      return allWatched().every((watched) => watched.informer.synced);
    },
  };
}
