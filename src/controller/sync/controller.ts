/**
 * The sync controller: watch SecretSyncs, opted-in SecretProviderClasses and the Secrets smk
 * manages; on a change queue the source; a worker syncs it (./secret-sync.ts, ./spc.ts), refreshes
 * it on its interval with jitter, backs off on failure, and repairs a managed Secret someone
 * changed or deleted. The informers, Lease, workers and stop are the process's manager's.
 */
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { batchLimit } from '../../aws/index.ts';
import { createWorkerPool, type ExpressionEvaluator } from '../../core/expressions.ts';
import type { Logger } from '../../core/log.ts';
import { gauge, histogram } from '../../core/metrics.ts';
import type { TemplateRenderer } from '../../core/template-render.ts';
import { createObjects, type Objects } from '../../kube/apply.ts';
import type { KubeConfig } from '../../kube/client.ts';
import { createEventRecorder, type EventRecorder } from '../../kube/events.ts';
import {
  createManager,
  type LeaderElectionSettings,
  type Manager,
  type SharedInformer,
} from '../../kube/manager.ts';
import type { RateLimit } from '../../kube/queue.ts';
import type { IdentityResolver } from '../identity.ts';
import { annotations, type SyncJob, secretSyncJob, secretSyncKind, spcKind } from '../jobs.ts';
import {
  managedSecrets,
  type SecretSyncObject,
  secretProviderClasses,
  secretProviderClassResource,
  secretSyncs,
} from '../kinds.ts';
import { spcJob, spcOptedIn } from '../spc-job.ts';
import { keyOf, parseKey, type SyncContext } from './context.ts';
import { createOwnedSecrets, secretWrites } from './owned-secrets.ts';
import { createReadAhead } from './read-ahead.ts';
import { createRelease } from './release.ts';
import { secretSyncHandling } from './secret-sync.ts';
import { spcHandling } from './spc.ts';

export type { LeaderElectionSettings } from '../../kube/manager.ts';

export interface SyncSettings {
  readonly identities: IdentityResolver;
  /** Region for objects whose spec names none (AWS_REGION). */
  readonly defaultRegion: string | undefined;
  /** Full JMESPath expressions (--allow-jmespath-expressions); default plain field paths only. */
  readonly expressions?: ExpressionEvaluator | undefined;
  /**
   * Renders spec.target.templates in worker threads (`smk controller` passes its one pool; a
   * controller made by createSyncController gets its own). Without one they render on the event
   * loop, which only a single-tenant test may accept.
   */
  readonly templateRenderer?: TemplateRenderer | undefined;
  /** Syncs running at once (default 16). */
  readonly concurrency?: number;
  /** Syncs started per second at most (default 200/s, burst 1000). */
  readonly rateLimit?: RateLimit;
  /** Watch SecretProviderClasses: true, false, or 'auto' (when the CRD is installed; default). */
  readonly secretProviderClasses?: boolean | 'auto';
  /** Fraction of the refresh interval added or taken at random (default 0.1). */
  readonly refreshJitter?: number;
  readonly events?: EventRecorder;
  readonly objects?: Objects;
  readonly now?: () => number;
  readonly random?: () => number;
}

export interface SyncControllerOptions extends SyncSettings {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Only these namespaces (default: all). */
  readonly namespaces?: readonly string[];
  readonly leaderElection?: LeaderElectionSettings;
  /** Called when this replica loses the lease (the CLI exits so a fresh process competes again). */
  readonly onLostLeadership?: () => void;
  readonly relistIntervalMs?: number;
  readonly silenceMs?: number;
}

export interface SyncController {
  start(): Promise<void>;
  /** Stops taking work, waits for running syncs (at most `graceMs`), releases the lease. */
  stop(graceMs?: number): Promise<void>;
  /** Informers synced and watching; this replica can serve. */
  readonly ready: boolean;
  readonly leading: boolean;
  /** Keys waiting now (for tests and metrics). */
  readonly queueDepth: number;
}

const reconcileSeconds = histogram(
  'smk_sync_reconcile_seconds',
  'Duration of one sync.',
  ['kind'],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
);
const queueDepthGauge = gauge('smk_sync_queue_depth', 'Sync keys waiting to run now.', []);
const scheduledGauge = gauge('smk_sync_scheduled', 'Sync keys scheduled for a later refresh or retry.', []);

/** Adds the sync controller to the process's manager; returns what tests read of it. */
export function addSyncController(manager: Manager, settings: SyncSettings): { readonly queueDepth: number } {
  const { logger, kubeConfig } = manager;
  const controller = manager.controller('sync');
  const objects = settings.objects ?? createObjects(kubeConfig);
  const events =
    settings.events ??
    createEventRecorder(kubeConfig, {
      component: 'smk-controller',
      logger,
      // Created/Updated events wait while syncs are queued (a cold start): Ready comes first.
      yieldWhile: () => pool.queue.depth > 0,
    });
  const pool = controller.workers({
    name: 'sync',
    concurrency: settings.concurrency ?? 16,
    // One lane per namespace: a tenant's thousands of syncs wait their turn behind others' next one.
    // A turn is one read batch long, so a namespace's reads still go out as batch calls.
    queue: {
      rateLimit: settings.rateLimit ?? { perSecond: 200, burst: 1000 },
      laneOf: (key) => parseKey(key)?.namespace ?? '',
      laneTurn: batchLimit,
    },
    reconcile,
    afterEach: (queue) => {
      queueDepthGauge.set(queue.depth);
      scheduledGauge.set(queue.scheduled);
    },
  });
  const secrets = controller.informer(managedSecrets);
  const sources = controller.informer(secretSyncs);
  let spcs: SharedInformer<KubernetesObject> | undefined;
  const owned = createOwnedSecrets();
  const context: SyncContext = {
    logger,
    queue: pool.queue,
    objects,
    events,
    owned,
    release: createRelease({ objects, events, owned }),
    deps: {
      identities: settings.identities,
      defaultRegion: settings.defaultRegion,
      expressions: settings.expressions,
      templateRenderer: settings.templateRenderer,
      readAhead: createReadAhead({
        queued: (namespace, limit) => pool.queue.peek(namespace, limit),
        jobOf: queuedJob,
        defaultRegion: settings.defaultRegion,
        allowExpressions: settings.expressions !== undefined,
      }),
      ...secretWrites(objects, owned, (namespace, name) => secrets.get(namespace, name)),
    },
    managedSecrets: secrets,
    tombstones: new Map<string, SyncJob | undefined>(),
    inScope: manager.inScope,
    now: settings.now ?? Date.now,
    random: settings.random ?? Math.random,
    jitter: settings.refreshJitter ?? 0.1,
  };
  const secretSync = secretSyncHandling(context, sources);
  const spc = spcHandling(context, () => spcs);
  // Adds seen before every cache listed are replayed once they all are (cachesSynced): a
  // SecretSync's due time and an SPC's owned Secrets are judged against complete caches.
  let primed = false;

  /** A managed Secret someone else changed or deleted: its owner syncs again (repair). */
  function onManagedSecret(secret: V1Secret, deleted: boolean): void {
    const namespace = secret.metadata?.namespace;
    const marker = secret.metadata?.annotations?.[annotations.owner];
    if (!namespace || !marker || !manager.inScope(namespace)) return;
    if (!deleted && owned.isOwnWrite(secret)) return;
    const [kind, name] = marker.split('/');
    if ((kind === secretSyncKind || kind === spcKind) && name) pool.queue.add(keyOf(kind, namespace, name));
  }

  /** The job a queued key would run, for the read-ahead (nothing while deleting or not opted in). */
  function queuedJob(key: string): { object: object; job: () => SyncJob } | undefined {
    const parsed = parseKey(key);
    if (!parsed) return undefined;
    if (parsed.kind === secretSyncKind) {
      const object: SecretSyncObject | undefined = sources.get(parsed.namespace, parsed.name);
      if (!object || object.metadata.deletionTimestamp) return undefined;
      return { object, job: () => secretSyncJob(object) };
    }
    const object = spcs?.get(parsed.namespace, parsed.name);
    if (!object || object.metadata?.deletionTimestamp || !spcOptedIn(object)) return undefined;
    return { object, job: () => spcJob(object) };
  }

  async function reconcile(key: string): Promise<void> {
    const parsed = parseKey(key);
    if (!parsed) return;
    const started = performance.now();
    try {
      if (parsed.kind === secretSyncKind) await secretSync.reconcile(key, parsed.namespace, parsed.name);
      else await spc.reconcile(key, parsed.namespace, parsed.name);
    } finally {
      reconcileSeconds.observe({ kind: parsed.kind }, (performance.now() - started) / 1000);
    }
  }

  secrets.addHandlers(owned.handlers(onManagedSecret));
  sources.addHandlers({
    add: (object) => primed && secretSync.added(object),
    update: (object, previous) => secretSync.updated(object, previous),
    delete: (object) => secretSync.deleted(object),
  });

  controller.run({
    async prepare() {
      const wanted = settings.secretProviderClasses ?? 'auto';
      const installed = wanted === 'auto' ? await controller.served(secretProviderClassResource) : wanted;
      if (!installed) {
        if (installed === false) logger.info('SecretProviderClass CRD not installed: the drop-in is off');
        return;
      }
      const informer = controller.informer(secretProviderClasses);
      informer.addHandlers({
        add: (object) => primed && spc.added(object),
        update: (object, previous) => spc.updated(object, previous),
        delete: (object) => spc.deleted(object),
      });
      spcs = informer;
    },
    cachesSynced() {
      primed = true;
      for (const object of sources.list()) secretSync.added(object);
      for (const object of spcs?.list() ?? []) spc.added(object);
      logger.info({ secretProviderClasses: spcs !== undefined }, 'sync controller started');
    },
  });
  return {
    get queueDepth() {
      return pool.queue.depth;
    },
  };
}

/** A sync controller with a manager of its own (tests, benchmarks; `smk controller` shares one). */
export function createSyncController(options: SyncControllerOptions): SyncController {
  const manager = createManager({
    kubeConfig: options.kubeConfig,
    logger: options.logger,
    namespaces: options.namespaces,
    leaderElection: options.leaderElection,
    onLostLeadership: options.onLostLeadership,
    relistIntervalMs: options.relistIntervalMs,
    silenceMs: options.silenceMs,
  });
  const ownPool = options.templateRenderer === undefined ? createWorkerPool() : undefined;
  const sync = addSyncController(manager, {
    ...options,
    templateRenderer: options.templateRenderer ?? ownPool,
  });
  return {
    start: () => manager.start(),
    stop: async (graceMs) => {
      await manager.stop(graceMs);
      await ownPool?.close();
    },
    get ready() {
      return manager.ready;
    },
    get leading() {
      return manager.leading;
    },
    get queueDepth() {
      return sync.queueDepth;
    },
  };
}
