/**
 * One per process, as controller-runtime's Manager: the controllers of a process share
 *   - informers: one watch per kind (and label selector) per namespace scope, trimmed once;
 *   - one leader election (Lease): every replica keeps warm caches, only the leader works;
 *   - worker pools over rate-limited queues (./workers.ts), each a controller's;
 *   - CRD probes (./served.ts), asked once per resource and given up on stop;
 *   - readiness per controller (./gate.ts) and a graceful stop.
 * Each controller is gated on its own caches, as controller-runtime's WaitForCacheSync per
 * controller: it asks for its informers through its scope (`manager.controller(name)`), and
 * starts once those have listed. A list the API server refuses holds only the controllers that
 * read that kind (a kind two controllers read holds both); the others run, and /readyz names
 * who waits for what.
 * A controller's hooks: `prepare` (ask for informers and probes), `cachesSynced` (its caches
 * listed: queue what they hold), `startLeading` (it runs and this replica leads: timers,
 * consumers; its workers start then too), `stopLeading`, `stop`.
 */
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { apiSource } from './api-source.ts';
import { type KubeConfig, withConnectionReuse } from './client.ts';
import {
  type ControllerPhase,
  controllerCheck,
  mayStart,
  type ReadinessCheck,
  readinessReport,
} from './gate.ts';
import { type ListWatchSource, resourcePath } from './informer.ts';
import { kindKey, type ResourceKind } from './kinds.ts';
import { apiLeaseStore, createLeaderElection, type LeaderElection, type LeaseStore } from './lease.ts';
import type { Clock } from './queue.ts';
import { type CustomResource, customResourceServed } from './served.ts';
import { createSharedInformers, type SharedInformer } from './shared-informers.ts';
import { createWorkerPool, type WorkerPool, type WorkerPoolOptions } from './workers.ts';

export type { SharedInformer } from './shared-informers.ts';

export interface Runnable {
  /** Names it in logs and in /readyz. */
  readonly name: string;
  /** Before its caches are awaited: ask for informers and probes. Runs on every replica. */
  prepare?(): Promise<void>;
  /** Every informer it asked for listed (every replica): queue what the caches hold. */
  cachesSynced?(): void;
  /** It runs (cachesSynced ran) and this replica leads (or runs without election): timers, consumers. */
  startLeading?(): void;
  /** Leadership ends (lost, or stopping): stop timers and consumers. */
  stopLeading?(): Promise<void> | void;
  /** The process stops (every replica), after the workers drained: end its own loops. */
  stop?(): Promise<void> | void;
  /** False while something of its own is missing (e.g. a key not loaded yet). */
  readonly ready?: boolean;
}

/** A controller's hooks (its name is its scope's). */
export type ControllerHooks = Omit<Runnable, 'name'>;

/**
 * One controller's view of the manager: what it asks for through it is the manager's shared
 * informer, probe or pool, and is what this controller (only) waits for.
 */
export interface ControllerScope {
  readonly name: string;
  /** The shared informer of `kind`; asked for before the controller runs, it gates its start. */
  informer<T>(kind: ResourceKind<T>): SharedInformer<T>;
  /** The manager's probe; while it has not answered, /readyz says this controller waits for it. */
  served(resource: Omit<CustomResource, 'namespace'>): Promise<boolean | undefined>;
  /** A pool of workers, started while this controller runs and this replica leads; drained on stop. */
  workers(options: Omit<WorkerPoolOptions, 'logger'>): WorkerPool;
  /** Registers its hooks (once; none is also a controller). Called after start, it launches at once. */
  run(hooks: ControllerHooks): void;
  /** This controller runs and this replica leads: it may act (write, roll). */
  readonly leading: boolean;
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
  /** Without it, this process acts as soon as a controller's caches are synced. */
  readonly leaderElection?: LeaderElectionSettings | undefined;
  /** This replica lost the Lease (the CLI exits so a fresh process competes again). */
  readonly onLostLeadership?: (() => void) | undefined;
  readonly relistIntervalMs?: number | undefined;
  readonly silenceMs?: number | undefined;
  /** Where informers read (default: the API server through kubeConfig); unit tests script it. */
  readonly sourceFor?: <T>(kind: ResourceKind<T>, namespace: string | undefined) => ListWatchSource<T>;
  /**
   * Whether a CRD is served (default: ./served.ts against the API server); `onProblem` is told
   * each failure (a refusal names the verb and the resource) for /readyz.
   */
  readonly served?: (
    resource: CustomResource,
    signal: AbortSignal,
    onProblem: (problem: string) => void,
  ) => Promise<boolean | undefined>;
  readonly leaseStore?: LeaseStore;
  /** Leader election and informer timers (unit tests). */
  readonly clock?: Clock;
}

export interface Manager {
  /** The shared informer of `kind`, the same for every caller; gates no controller (the webhook's cache). */
  informer<T>(kind: ResourceKind<T>): SharedInformer<T>;
  /** Whether a custom resource is served; undefined when stopped before the API server could tell. */
  served(resource: Omit<CustomResource, 'namespace'>): Promise<boolean | undefined>;
  /** A controller's scope (one per name): the informers it asks for through it gate its start. */
  controller(name: string): ControllerScope;
  /** A controller that reads no cache through a scope: `controller(runnable.name).run(runnable)`. */
  add(runnable: Runnable): void;
  /** The namespaces served; undefined: all. */
  readonly namespaces: readonly string[] | undefined;
  /** Whether `namespace` is one this manager serves. */
  inScope(namespace: string | undefined): boolean;
  /**
   * Launches every controller (each prepares, waits for its own caches, runs) and campaigns;
   * resolves once every controller runs and every cache listed, or the manager stops.
   */
  start(): Promise<void>;
  /** Stops taking work, waits for keys in flight (at most `graceMs`), releases the Lease, stops watching. */
  stop(graceMs?: number): Promise<void>;
  /** Every controller runs, every cache is synced and watching, and every controller says it is ready. */
  readonly ready: boolean;
  /** One check per controller (and one for caches no controller asked for), as /readyz shows them. */
  readiness(): readonly ReadinessCheck[];
  readonly leading: boolean;
  readonly logger: Logger;
  /** The process's one pooled connection configuration: controllers make their clients from it. */
  readonly kubeConfig: KubeConfig;
}

interface ControllerEntry {
  readonly name: string;
  hooks: ControllerHooks | undefined;
  /** Before launch: undefined. */
  phase: ControllerPhase | undefined;
  /** Kind keys it asked for: before it runs, its gate; once it runs, its health. */
  readonly kinds: Set<string>;
  /** Probes it awaits that have not answered: probe key → `plural.group`. */
  readonly probes: Map<string, string>;
  readonly pools: WorkerPool[];
  /** startLeading ran (and stopLeading not yet). */
  leading: boolean;
}

export function createManager(options: ManagerOptions): Manager {
  const { logger } = options;
  const kubeConfig = withConnectionReuse(options.kubeConfig);
  const scopes: (string | undefined)[] =
    options.namespaces && options.namespaces.length > 0 ? [...options.namespaces] : [undefined];
  const probes = new Map<string, Promise<boolean | undefined>>();
  /** Each probe's last failure while it has not answered. */
  const probeProblems = new Map<string, string | undefined>();
  const controllers = new Map<string, ControllerEntry>();
  const stopping = new AbortController();
  let started = false;
  let leading = false;
  let leader: LeaderElection | undefined;
  let stopped: Promise<void> | undefined;
  let startFailed: ((error: unknown) => void) | undefined;
  let allStarted: (() => void) | undefined;

  const sourceFor =
    options.sourceFor ??
    (<T>(kind: ResourceKind<T>, namespace: string | undefined): ListWatchSource<T> =>
      apiSource<T>(kubeConfig, {
        path: resourcePath(kind.apiVersion, kind.plural, namespace),
        ...(kind.labelSelector ? { labelSelector: kind.labelSelector } : {}),
      }));

  const informers = createSharedInformers({
    logger,
    scopes,
    sourceFor,
    relistIntervalMs: options.relistIntervalMs,
    silenceMs: options.silenceMs,
    clock: options.clock,
  });

  /** Starts every controller whose own caches have listed (./gate.ts decides). */
  function advance(): void {
    if (stopping.signal.aborted) return;
    for (const controller of controllers.values()) {
      if (
        !controller.phase ||
        !mayStart({ phase: controller.phase, caches: informers.states(controller.kinds) })
      )
        continue;
      controller.phase = 'running';
      controller.hooks?.cachesSynced?.();
      if (leading) lead(controller);
    }
    const everyoneRuns = [...controllers.values()].every(
      (controller) => controller.phase === 'running' || controller.phase === undefined,
    );
    if (everyoneRuns && informers.synced) allStarted?.();
  }

  async function launch(controller: ControllerEntry): Promise<void> {
    controller.phase = 'preparing';
    try {
      await controller.hooks?.prepare?.();
    } catch (error) {
      logger.error(
        { controller: controller.name, err: describeError(error) },
        'controller could not prepare',
      );
      startFailed?.(error);
      return;
    }
    if (stopping.signal.aborted) return;
    controller.phase = 'waiting';
    advance();
  }

  function lead(controller: ControllerEntry): void {
    if (controller.leading) return;
    controller.leading = true;
    for (const pool of controller.pools) pool.start();
    controller.hooks?.startLeading?.();
  }

  function startLeading(): void {
    leading = true;
    for (const controller of controllers.values()) if (controller.phase === 'running') lead(controller);
  }

  async function stopLeading(): Promise<void> {
    if (!leading) return;
    leading = false;
    await Promise.all(
      [...controllers.values()].map(async (controller) => {
        if (!controller.leading) return;
        controller.leading = false;
        try {
          await controller.hooks?.stopLeading?.();
        } catch (error) {
          logger.warn({ controller: controller.name, err: describeError(error) }, 'stopping failed');
        }
      }),
    );
  }

  function served(resource: Omit<CustomResource, 'namespace'>): Promise<boolean | undefined> {
    const key = `${resource.group}/${resource.version}/${resource.plural}`;
    let probe = probes.get(key);
    if (!probe) {
      const scoped = { ...resource, namespace: scopes[0] };
      const onProblem = (problem: string): void => {
        probeProblems.set(key, problem);
      };
      probe = options.served
        ? options.served(scoped, stopping.signal, onProblem)
        : customResourceServed(kubeConfig, scoped, { logger, signal: stopping.signal, onProblem });
      probes.set(key, probe);
    }
    return probe;
  }

  function scope(name: string): ControllerScope {
    if (controllers.has(name)) throw new Error(`a controller named ${name} is already on this manager`);
    const controller: ControllerEntry = {
      name,
      hooks: undefined,
      phase: undefined,
      kinds: new Set(),
      probes: new Map(),
      pools: [],
      leading: false,
    };
    controllers.set(name, controller);
    return {
      name,
      informer<T>(kind: ResourceKind<T>): SharedInformer<T> {
        const informer = informers.get(kind);
        controller.kinds.add(kindKey(kind));
        return informer;
      },
      async served(resource) {
        const key = `${resource.group}/${resource.version}/${resource.plural}`;
        controller.probes.set(key, `${resource.plural}.${resource.group}`);
        try {
          return await served(resource);
        } finally {
          controller.probes.delete(key);
        }
      },
      workers(poolOptions) {
        const pool = createWorkerPool({ ...poolOptions, logger });
        controller.pools.push(pool);
        if (controller.leading) pool.start();
        return pool;
      },
      run(hooks) {
        if (controller.hooks) throw new Error(`controller ${name} already runs its hooks`);
        controller.hooks = hooks;
        if (started && !controller.phase && !stopping.signal.aborted) void launch(controller);
      },
      get leading() {
        return controller.leading;
      },
    };
  }

  function readiness(): ReadinessCheck[] {
    if (!started) return [{ name: 'manager', ok: false, detail: 'not started' }];
    if (stopping.signal.aborted) return [{ name: 'manager', ok: false, detail: 'stopping' }];
    const checks = [...controllers.values()]
      .filter((controller) => controller.phase !== undefined)
      .map((controller) =>
        controllerCheck({
          name: controller.name,
          phase: controller.phase ?? 'preparing',
          caches: informers.states(controller.kinds),
          probes: [...controller.probes].map(([key, resource]) => ({
            resource,
            problem: probeProblems.get(key),
          })),
          selfReady: controller.hooks?.ready !== false,
        }),
      );
    // Caches no controller asked for (the webhook's): the process needs them too.
    const claimed = [...controllers.values()].flatMap((controller) => [...controller.kinds]);
    const unclaimed = informers.states(claimed, true);
    if (unclaimed.length > 0) {
      checks.push(
        controllerCheck({
          name: 'caches',
          phase: 'running',
          caches: unclaimed,
          probes: [],
          selfReady: true,
        }),
      );
    }
    return checks;
  }

  const manager: Manager = {
    logger,
    kubeConfig,
    informer: (kind) => informers.get(kind),
    served,
    controller: scope,
    add(runnable) {
      scope(runnable.name).run(runnable);
    },
    namespaces: scopes[0] === undefined ? undefined : (scopes as string[]),
    inScope(namespace) {
      return scopes[0] === undefined || (namespace !== undefined && scopes.includes(namespace));
    },
    async start() {
      if (started) throw new Error('the manager was started already');
      started = true;
      const settled = new Promise<void>((resolve, reject) => {
        allStarted = resolve;
        startFailed = reject;
        stopping.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      // What was asked for up front starts listing while the controllers prepare (a CRD probe may
      // wait on RBAC); what they ask for meanwhile starts at once.
      informers.start(advance);
      for (const controller of controllers.values()) void launch(controller);
      advance();
      // Campaigning does not wait for every cache: a controller whose list is refused must not keep
      // the others from working. Each acts once it runs and this replica leads.
      const settings = options.leaderElection;
      if (!settings) startLeading();
      else {
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
              for (const pool of pools()) pool.queue.shutDown();
              void stopLeading();
              options.onLostLeadership?.();
            },
          },
        );
        leader.start();
      }
      await settled;
    },
    stop(graceMs = 10_000) {
      stopped ??= (async () => {
        stopping.abort();
        // 1. no new work; 2. keys in flight finish; 3. the Lease goes to a standby; 4. watches end.
        for (const pool of pools()) pool.queue.shutDown();
        await stopLeading();
        await Promise.all(pools().map((pool) => pool.stop(graceMs)));
        await Promise.all([...controllers.values()].map((controller) => controller.hooks?.stop?.()));
        await leader?.stop();
        informers.stop();
      })();
      return stopped;
    },
    get ready() {
      return started && readinessReport(readiness()).ready;
    },
    readiness,
    get leading() {
      return leading;
    },
  };

  function pools(): WorkerPool[] {
    return [...controllers.values()].flatMap((controller) => controller.pools);
  }
  return manager;
}
