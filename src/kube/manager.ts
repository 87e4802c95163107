/**
 * One per process, as controller-runtime's Manager: the controllers of a process share
 *   - informers: one watch per kind (and label selector) per namespace scope, trimmed once;
 *   - one leader election (Lease): every replica keeps warm caches, only the leader works;
 *   - worker pools over rate-limited queues (./workers.ts), started when this replica leads;
 *   - CRD probes (./served.ts), asked once per resource and given up on stop;
 *   - readiness (caches synced and watching) and a graceful stop.
 * A controller is a Runnable: it asks for its informers and probes in `prepare`, queues what the
 * caches hold in `cachesSynced`, and starts acting (timers, consumers) in `startLeading`.
 */
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { apiSource } from './api-source.ts';
import { type KubeConfig, withConnectionReuse } from './client.ts';
import {
  createInformer,
  type Informer,
  type InformerHandlers,
  type ListWatchSource,
  resourcePath,
} from './informer.ts';
import { kindKey, type ResourceKind } from './kinds.ts';
import { apiLeaseStore, createLeaderElection, type LeaderElection, type LeaseStore } from './lease.ts';
import type { Clock } from './queue.ts';
import { type CustomResource, customResourceServed } from './served.ts';
import { createWorkerPool, type WorkerPool, type WorkerPoolOptions } from './workers.ts';

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

export interface Runnable {
  /** Names it in logs. */
  readonly name: string;
  /** Before any informer starts: ask for informers and probes. Runs on every replica. */
  prepare?(): Promise<void>;
  /** Every informer listed (every replica): queue what the caches hold. */
  cachesSynced?(): void;
  /** This replica leads (or runs without election): start timers and consumers. */
  startLeading?(): void;
  /** Leadership ends (lost, or stopping): stop timers and consumers. */
  stopLeading?(): Promise<void> | void;
  /** The process stops (every replica), after the workers drained: end its own loops. */
  stop?(): Promise<void> | void;
  /** False while something of its own is missing (e.g. a key not loaded yet). */
  readonly ready?: boolean;
}

export interface LeaderElectionSettings {
  readonly namespace: string;
  readonly name: string;
  /** This replica's identity (pod name + a random suffix). */
  readonly identity: string;
}

export interface ManagerOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Only these namespaces (default: all): one informer per namespace per kind. */
  readonly namespaces?: readonly string[] | undefined;
  /** Without it, this process acts as soon as its caches are synced. */
  readonly leaderElection?: LeaderElectionSettings | undefined;
  /** This replica lost the Lease (the CLI exits so a fresh process competes again). */
  readonly onLostLeadership?: (() => void) | undefined;
  readonly relistIntervalMs?: number | undefined;
  readonly silenceMs?: number | undefined;
  /** Where informers read (default: the API server through kubeConfig); unit tests script it. */
  readonly sourceFor?: <T>(kind: ResourceKind<T>, namespace: string | undefined) => ListWatchSource<T>;
  /** Whether a CRD is served (default: ./served.ts against the API server). */
  readonly served?: (resource: CustomResource, signal: AbortSignal) => Promise<boolean | undefined>;
  readonly leaseStore?: LeaseStore;
  /** Leader election and informer timers (unit tests). */
  readonly clock?: Clock;
}

export interface Manager {
  /** The shared informer of `kind`; the same one for every caller. */
  informer<T>(kind: ResourceKind<T>): SharedInformer<T>;
  /** Whether a custom resource is served; undefined when stopped before the API server could tell. */
  served(resource: Omit<CustomResource, 'namespace'>): Promise<boolean | undefined>;
  /** A pool of workers, started while this replica leads and drained on stop. */
  workers(options: Omit<WorkerPoolOptions, 'logger'>): WorkerPool;
  add(runnable: Runnable): void;
  /** The namespaces served; undefined: all. */
  readonly namespaces: readonly string[] | undefined;
  /** Whether `namespace` is one this manager serves. */
  inScope(namespace: string | undefined): boolean;
  /** Prepares the runnables, syncs the caches, then leads or campaigns; resolves once campaigning. */
  start(): Promise<void>;
  /** Stops taking work, waits for keys in flight (at most `graceMs`), releases the Lease, stops watching. */
  stop(graceMs?: number): Promise<void>;
  /** Caches synced and watching, and every runnable ready. */
  readonly ready: boolean;
  readonly leading: boolean;
  readonly logger: Logger;
  /** The process's one pooled connection configuration: controllers make their clients from it. */
  readonly kubeConfig: KubeConfig;
}

interface Entry {
  readonly kind: ResourceKind<never>;
  readonly scoped: Map<string, Informer<never>>;
  readonly view: SharedInformer<never>;
}

export function createManager(options: ManagerOptions): Manager {
  const { logger } = options;
  const kubeConfig = withConnectionReuse(options.kubeConfig);
  const scopes: (string | undefined)[] =
    options.namespaces && options.namespaces.length > 0 ? [...options.namespaces] : [undefined];
  const entries = new Map<string, Entry>();
  const probes = new Map<string, Promise<boolean | undefined>>();
  const pools: WorkerPool[] = [];
  const runnables: Runnable[] = [];
  const stopping = new AbortController();
  let informersStarted = false;
  let synced = false;
  let leading = false;
  let leader: LeaderElection | undefined;
  let stopped: Promise<void> | undefined;

  const sourceFor =
    options.sourceFor ??
    (<T>(kind: ResourceKind<T>, namespace: string | undefined): ListWatchSource<T> =>
      apiSource<T>(kubeConfig, {
        path: resourcePath(kind.apiVersion, kind.plural, namespace),
        ...(kind.labelSelector ? { labelSelector: kind.labelSelector } : {}),
      }));

  function build<T>(kind: ResourceKind<T>): Entry {
    const scoped = new Map<string, Informer<T>>();
    const selector = kind.labelSelector ? `[${kind.labelSelector}]` : '';
    const kindScopes = kind.clusterScoped ? [undefined] : scopes;
    for (const namespace of kindScopes) {
      const informer = createInformer<T & object>(sourceFor(kind, namespace) as ListWatchSource<T & object>, {
        name: `${kind.plural}${selector}${namespace ? `/${namespace}` : ''}`,
        logger,
        ...(options.relistIntervalMs ? { relistIntervalMs: options.relistIntervalMs } : {}),
        ...(options.silenceMs ? { silenceMs: options.silenceMs } : {}),
        ...(options.clock ? { clock: options.clock } : {}),
        ...(kind.transform ? { transform: kind.transform as (object: T & object) => T & object } : {}),
      });
      scoped.set(namespace ?? '', informer);
    }
    const all = [...scoped.values()];
    const view: SharedInformer<T> = {
      addHandlers(handlers) {
        for (const informer of all) {
          informer.addHandlers(handlers);
          for (const object of informer.list()) handlers.add?.(object);
        }
      },
      get(namespace, name) {
        const scope = kindScopes[0] === undefined ? '' : namespace;
        return scoped.get(scope)?.get(kind.clusterScoped ? undefined : namespace, name);
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

  function allInformers(): Informer<never>[] {
    return [...entries.values()].flatMap((entry) => [...entry.scoped.values()]);
  }

  /** Each informer's first list (informer.start resolves at once when called again). */
  const listed = new Map<Informer<never>, Promise<void>>();
  async function startInformers(informers: readonly Informer<never>[]): Promise<void> {
    await Promise.all(
      informers.map((informer) => {
        let first = listed.get(informer);
        if (!first) {
          first = informer.start();
          listed.set(informer, first);
        }
        return first;
      }),
    );
  }

  function startLeading(): void {
    leading = true;
    for (const pool of pools) pool.start();
    for (const runnable of runnables) runnable.startLeading?.();
  }

  async function stopLeading(): Promise<void> {
    if (!leading) return;
    leading = false;
    await Promise.all(
      runnables.map(async (runnable) => {
        try {
          await runnable.stopLeading?.();
        } catch (error) {
          logger.warn({ runnable: runnable.name, err: describeError(error) }, 'stopping failed');
        }
      }),
    );
  }

  const manager: Manager = {
    logger,
    kubeConfig,
    informer<T>(kind: ResourceKind<T>): SharedInformer<T> {
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
      // Asked for after the others started (e.g. a CRD installed later): it starts now.
      if (informersStarted && !stopping.signal.aborted) void startInformers([...entry.scoped.values()]);
      return entry.view as unknown as SharedInformer<T>;
    },
    served(resource) {
      const key = `${resource.group}/${resource.version}/${resource.plural}`;
      let probe = probes.get(key);
      if (!probe) {
        const scoped = { ...resource, namespace: scopes[0] };
        probe = options.served
          ? options.served(scoped, stopping.signal)
          : customResourceServed(kubeConfig, scoped, { logger, signal: stopping.signal });
        probes.set(key, probe);
      }
      return probe;
    },
    workers(poolOptions) {
      const pool = createWorkerPool({ ...poolOptions, logger });
      pools.push(pool);
      if (leading) pool.start();
      return pool;
    },
    add(runnable) {
      runnables.push(runnable);
    },
    namespaces: scopes[0] === undefined ? undefined : (scopes as string[]),
    inScope(namespace) {
      return scopes[0] === undefined || (namespace !== undefined && scopes.includes(namespace));
    },
    async start() {
      // What was asked for up front starts listing while the runnables prepare (a CRD probe may
      // wait on RBAC); what they ask for meanwhile starts at once.
      informersStarted = true;
      const upFront = startInformers(allInformers());
      for (const runnable of runnables) {
        if (stopping.signal.aborted) break;
        await runnable.prepare?.();
      }
      await upFront;
      if (stopping.signal.aborted) return;
      await startInformers(allInformers());
      if (stopping.signal.aborted) return;
      synced = true;
      for (const runnable of runnables) runnable.cachesSynced?.();
      const settings = options.leaderElection;
      if (!settings) {
        startLeading();
        return;
      }
      leader = createLeaderElection(
        options.leaseStore ?? apiLeaseStore(kubeConfig, settings.namespace, settings.name),
        {
          identity: settings.identity,
          logger,
          ...(options.clock ? { clock: options.clock } : {}),
          onStartedLeading: startLeading,
          onStoppedLeading: () => {
            if (stopping.signal.aborted) return;
            // Another replica may lead now: no new work here, and the process makes way.
            for (const pool of pools) pool.queue.shutDown();
            void stopLeading();
            options.onLostLeadership?.();
          },
        },
      );
      leader.start();
    },
    stop(graceMs = 10_000) {
      stopped ??= (async () => {
        stopping.abort();
        // 1. no new work; 2. keys in flight finish; 3. the Lease goes to a standby; 4. watches end.
        for (const pool of pools) pool.queue.shutDown();
        await stopLeading();
        await Promise.all(pools.map((pool) => pool.stop(graceMs)));
        await Promise.all(runnables.map((runnable) => runnable.stop?.()));
        await leader?.stop();
        for (const informer of allInformers()) informer.stop();
      })();
      return stopped;
    },
    get ready() {
      return (
        synced &&
        !stopping.signal.aborted &&
        allInformers().every((informer) => informer.healthy) &&
        runnables.every((runnable) => runnable.ready !== false)
      );
    },
    get leading() {
      return leading;
    },
  };
  return manager;
}
