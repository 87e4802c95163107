/**
 * The rotation controller: watch these, on change do this.
 *   - sync sources (SecretSyncs, synced SecretProviderClasses, ClusterSecretSyncs), managed
 *     Secrets, mappings and workloads (informers.ts) feed the usage index (usage-index.ts): what
 *     uses which secret;
 *   - the change detector and the SQS consumer run in the leader; on a change, sinks in order:
 *     the caller's (e.g. the AWS cache), re-sync of every source reading the secret (sync-gate.ts),
 *     rollouts of the workloads following it (rollout.ts), mapping status (mapping-status.ts);
 *   - a workload rolls at most once per debounce window, and only once the synced Secrets it
 *     consumes carry the new version (the sync gate);
 *   - Secrets and ConfigMaps a workload names (references.ts): a data change rolls their readers.
 * Secrets are watched with the controller's role, but a namespace is shown (or rolled for) a
 * secret only once one of its own identities may describe it (permissions.ts).
 * The informers, the Lease and the workers are the process's manager's (kube/manager.ts): every
 * replica keeps its caches warm, only the Lease holder detects, re-syncs and rolls.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { createObjects } from '../../kube/apply.ts';
import { apiErrorOf, retryAfterMsOf } from '../../kube/client.ts';
import { createEventRecorder } from '../../kube/events.ts';
import { createManager, type Manager, type SharedInformer } from '../../kube/manager.ts';
import type { WorkQueue } from '../../kube/queue.ts';
import { clusterSecretSyncs } from '../cluster-sync/controller.ts';
import { namespaceStatuses } from '../cluster-sync/status.ts';
import {
  clusterSecretSyncPlural,
  secretSyncKind,
  spcKind,
  group as syncGroup,
  version as syncVersion,
} from '../jobs.ts';
import { managedSecrets, secretProviderClasses, secretProviderClassResource, secretSyncs } from '../kinds.ts';
import { conditionGauge } from '../status-metrics.ts';
import { type Consumer, createConsumer } from './consumer.ts';
import { createDetector, type Detector } from './detector.ts';
import {
  mappingResource,
  referencedKinds,
  rotationMappings,
  workloadKinds,
  workloadResource,
} from './informers.ts';
import { type RolloutKind, rolloutKindNames, rolloutKinds } from './kinds.ts';
import { mappingKind } from './mapping.ts';
import { createMappingStatuses } from './mapping-status.ts';
import type { RotationControllerOptions, RotationSettings } from './options.ts';
import { createPermissions } from './permissions.ts';
import { createReferenceTracker, type ReferenceKind, referenceAnnotations } from './references.ts';
import { createRollouts, rollouts } from './rollout.ts';
import { createSyncGate, forceSyncPatch, type ResyncRequest } from './sync-gate.ts';
import type { SourceRef } from './usage.ts';
import { createUsageIndex, type IndexInformers } from './usage-index.ts';

export type { RotationControllerOptions, RotationSettings } from './options.ts';
export { rollouts } from './rollout.ts';
export type { ResyncRequest } from './sync-gate.ts';

/** What a caller (the CLI, tests) reads of the rotation controller on a manager. */
export interface RotationParts {
  /** The detector (tests poll it directly). */
  readonly detector: Detector;
  /** The consumer, when a queue is configured. */
  readonly consumer: Consumer | undefined;
}

export interface RotationController extends RotationParts {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly ready: boolean;
  readonly leading: boolean;
}

type Watched = SharedInformer<KubernetesObject>;

/** The opt-in annotations whose change alters what a workload follows ('' when it has none). */
function optIn(object: KubernetesObject): string {
  const annotations = object.metadata?.annotations ?? {};
  return ['smk.dev/rollout-on', 'smk.dev/rollout-on-sync', ...referenceAnnotations.map((r) => r.annotation)]
    .map((name) => annotations[name] ?? '')
    .join('|')
    .replace(/^\|+$/, '');
}

/**
 * Adds the rotation controller to the process's manager: its informers are the manager's shared
 * ones (a SecretSync is watched once per process, with the sync controller), it acts while the
 * manager's one Lease is held, and its rollouts run on a pool of the manager's workers.
 */
export function addRotationController(manager: Manager, settings: RotationSettings): RotationParts {
  const { kubeConfig } = manager;
  const logger = manager.logger.child({ component: 'rotation' });
  // Its informers, probes and workers gate only rotation: a refused list of its own leaves sync running.
  const controller = manager.controller('rotation');
  const now = settings.now ?? Date.now;
  const objects = settings.objects ?? createObjects(kubeConfig);
  const events = settings.events ?? createEventRecorder(kubeConfig, { component: 'smk-rotation', logger });
  const mappingReady = conditionGauge(mappingKind);
  const leading = (): boolean => controller.leading;
  const pool = controller.workers({
    name: 'rotation',
    concurrency: 4,
    // Keys are kind/namespace/name (workloadKey); one lane per namespace (kube/queue.ts).
    queue: { backoff: { baseMs: 200, maxMs: 5_000, jitter: 0.2 }, laneOf: (key) => key.split('/')[1] ?? '' },
    async reconcile(key) {
      await rollout.reconcile(key);
      pool.queue.forget(key);
    },
    onError(key, error, queue: WorkQueue) {
      // A conflict means the workload changed under us: plan again from a fresh read at once.
      if (apiErrorOf(error)?.status === 409) {
        queue.add(key);
        return 0;
      }
      rollouts.inc({ kind: key.split('/')[0] ?? '', outcome: 'failed' });
      return queue.addRateLimited(key, retryAfterMsOf(error));
    },
  });

  // ---- what is watched (optional kinds join in prepare, once their CRD is known to be served) --
  const syncs: Watched = controller.informer(secretSyncs);
  const secrets: Watched = controller.informer(managedSecrets);
  const workloads = new Map<RolloutKind, Watched>(
    rolloutKindNames
      .filter((kind) => !rolloutKinds[kind].optional)
      .map((kind) => [kind, controller.informer(workloadKinds[kind])] as const),
  );
  const informers: IndexInformers = {
    syncs,
    managedSecrets: secrets,
    spcs: undefined,
    clusterSyncs: undefined,
    mappings: undefined,
    workloads: new Map(workloads),
  };
  const parseOptions = { reloaderAnnotations: settings.reloaderAnnotations ?? false };

  // ---- the pieces ----------------------------------------------------------------------------
  const references = createReferenceTracker();
  const permissions = createPermissions({
    identities: settings.identities,
    logger,
    ...(settings.permissionTtlMs !== undefined ? { ttlMs: settings.permissionTtlMs } : {}),
    now,
    // An answer arrived or changed: plan the namespace's workloads and mappings again.
    onChange: (subject) => {
      if (!leading()) return;
      rollout.namespaceChanged(subject.namespace);
      statuses.permissionChanged(subject);
    },
  });
  const index = createUsageIndex({
    informers,
    defaultRegion: settings.defaultRegion,
    allowJmesPathExpressions: settings.allowJmesPathExpressions,
    observed: (watch) => detector.observed(watch),
    permissions,
    references,
    parseOptions,
  });
  const gate = createSyncGate({
    index,
    permissions,
    resync:
      settings.resync ??
      (async (source: SourceRef, request: ResyncRequest) => {
        const { ref, patch } = forceSyncPatch(source, request);
        await objects.mergePatch(ref, patch);
      }),
    logger,
    resyncRetryMs: settings.resyncRetryMs ?? 30_000,
    now,
  });
  const statuses = createMappingStatuses({
    index,
    permissions,
    observed: (watch) => detector.observed(watch),
    objects,
    events,
    logger,
    defaultRegion: settings.defaultRegion,
    leading,
    now,
  });
  const rollout = createRollouts({
    index,
    gate,
    statuses,
    objects,
    events,
    queue: pool.queue,
    logger,
    leading,
    now,
    debounceMs: settings.debounceMs ?? 500,
    syncWaitMs: settings.syncWaitMs ?? 120_000,
    parseOptions,
  });
  const detector = createDetector({
    reader: settings.reader,
    watches: () => index.watches(),
    synced: (observation) => gate.syncedStages(observation),
    sinks: [...(settings.sinks ?? []), gate.resyncSink, rollout.rolloutSink, statuses.statusSink],
    logger,
    ...(settings.pollIntervalMs ? { intervalMs: settings.pollIntervalMs } : {}),
    ...(settings.pollJitter !== undefined ? { jitter: settings.pollJitter } : {}),
    now,
  });
  const consumer = settings.queue
    ? createConsumer({
        queue: settings.queue,
        confirm: (hint) => detector.hint(hint),
        logger,
        ...(settings.queueWaitSeconds !== undefined ? { waitSeconds: settings.queueWaitSeconds } : {}),
      })
    : undefined;

  // ---- on change, do this --------------------------------------------------------------------
  function watchWorkloads(kind: RolloutKind, informer: Watched): void {
    informer.addHandlers({
      add: (object) => {
        if (optIn(object) !== '') detector.refresh();
        rollout.seen(kind, object);
      },
      update: (object, previous) => {
        const opted = optIn(object) !== optIn(previous);
        if (opted) detector.refresh();
        if (opted || object.metadata?.generation !== previous.metadata?.generation)
          rollout.seen(kind, object);
      },
    });
  }

  function watchMappings(informer: Watched): void {
    const changed = async (object: KubernetesObject): Promise<void> => {
      const mapping = await statuses.parse(object);
      if (!mapping) return;
      rollout.mappingChanged(mapping);
      if (leading()) await statuses.write(mapping, {});
    };
    informer.addHandlers(mappingReady.handlers);
    informer.addHandlers({
      add: (object) => {
        detector.refresh();
        void changed(object);
      },
      update: (object, previous) => {
        if (object.metadata?.generation !== previous.metadata?.generation) void changed(object);
      },
    });
  }

  function watchSources(kind: typeof secretSyncKind | typeof spcKind, informer: Watched): void {
    // A workload's plan reads these caches: when a source moves, the workloads reading its Secrets are planned again.
    const moved = (object: KubernetesObject) =>
      rollout.wakeDependents(object.metadata?.namespace, index.usageOf(kind, object)?.targets ?? []);
    informer.addHandlers({ add: moved, update: moved, delete: moved });
    // A new user of a secret needs a baseline before the secret's next change.
    const wanted = (o: KubernetesObject) => JSON.stringify(o.metadata?.annotations?.['smk.dev/sync'] ?? '');
    informer.addHandlers({
      add: () => detector.refresh(),
      update: (object, previous) => {
        if (
          object.metadata?.generation !== previous.metadata?.generation ||
          wanted(object) !== wanted(previous)
        ) {
          detector.refresh();
        }
      },
    });
  }

  function watchClusterSyncs(informer: Watched): void {
    // A namespace's entry moved (its Secret now holds a new version, or it was selected or let go):
    // the workloads reading that Secret there are planned again; other namespaces are left alone.
    const entries = (object: KubernetesObject | undefined): Map<string, string> =>
      new Map(
        [...namespaceStatuses(object)].map(([namespace, { entry }]) => [namespace, JSON.stringify(entry)]),
      );
    const moved = (object: KubernetesObject | undefined, previous: KubernetesObject | undefined): void => {
      const before = entries(previous);
      const after = entries(object);
      const current = object ? index.clusterUsagesOf(object) : new Map();
      const earlier = previous ? index.clusterUsagesOf(previous) : new Map();
      for (const namespace of new Set([...before.keys(), ...after.keys()])) {
        if (before.get(namespace) === after.get(namespace)) continue;
        const targets = [
          ...(current.get(namespace)?.targets ?? []),
          ...(earlier.get(namespace)?.targets ?? []),
        ];
        rollout.wakeDependents(namespace, targets);
      }
    };
    informer.addHandlers({
      add: (object) => {
        detector.refresh();
        moved(object, undefined);
      },
      update: (object, previous) => {
        const spread = [...entries(object).keys()].join(' ') !== [...entries(previous).keys()].join(' ');
        if (object.metadata?.generation !== previous.metadata?.generation || spread) detector.refresh();
        moved(object, previous);
      },
      delete: (object) => moved(undefined, object),
    });
  }

  function watchReferenced(kind: ReferenceKind, informer: Watched): void {
    const seen = (object: KubernetesObject) => {
      const how = references.observe(kind, object);
      const { namespace, name } = object.metadata ?? {};
      if (how !== 'same' && namespace && name) rollout.referenceChanged(kind, namespace, name, how);
    };
    informer.addHandlers({ add: seen, update: seen, delete: (object) => references.forget(kind, object) });
  }

  function watchManagedSecrets(informer: Watched): void {
    const moved = (secret: KubernetesObject) =>
      rollout.wakeDependents(secret.metadata?.namespace, [secret.metadata?.name ?? '']);
    informer.addHandlers({ add: moved, update: moved, delete: moved });
  }

  // Handlers go on before the manager starts its informers (or in prepare): they see the first adds.
  for (const [kind, informer] of workloads) watchWorkloads(kind, informer);
  watchManagedSecrets(secrets);
  for (const kind of ['Secret', 'ConfigMap'] as const) {
    watchReferenced(kind, controller.informer(referencedKinds[kind]));
  }
  watchSources(secretSyncKind, syncs);

  /** Whether a CRD is served (`auto`), or as configured; undefined when stopped before the API server could tell. */
  function served(
    setting: boolean | 'auto' | undefined,
    resource: Parameters<Manager['served']>[0],
  ): Promise<boolean | undefined> {
    if (setting !== 'auto' && setting !== undefined) return Promise.resolve(setting);
    return controller.served(resource);
  }

  controller.run({
    async prepare() {
      const spc = await served(settings.secretProviderClasses, secretProviderClassResource);
      if (spc) {
        const informer = controller.informer(secretProviderClasses);
        informers.spcs = informer;
        watchSources(spcKind, informer);
      }
      // Like the ClusterSecretSync controller: only where the manager serves every namespace
      // (the chart grants cluster-scoped reads only then), unless configured.
      const clusterWide =
        settings.clusterSecretSyncs === undefined || settings.clusterSecretSyncs === 'auto'
          ? manager.namespaces === undefined &&
            (await controller.served({
              group: syncGroup,
              version: syncVersion,
              plural: clusterSecretSyncPlural,
            }))
          : settings.clusterSecretSyncs;
      if (clusterWide) {
        const informer = controller.informer(clusterSecretSyncs);
        informers.clusterSyncs = informer;
        watchClusterSyncs(informer);
      }
      const mapped = await served(settings.mappings, mappingResource);
      if (mapped) {
        const informer = controller.informer(rotationMappings);
        informers.mappings = informer;
        watchMappings(informer);
      }
      for (const kind of rolloutKindNames.filter((name) => rolloutKinds[name].optional)) {
        if (!(await served(settings.rolloutKinds?.[kind], workloadResource(kind)))) continue;
        const informer = controller.informer(workloadKinds[kind]);
        informers.workloads.set(kind, informer);
        watchWorkloads(kind, informer);
      }
    },
    cachesSynced() {
      logger.info(
        {
          namespaces: manager.namespaces ?? 'all',
          mappings: informers.mappings !== undefined,
          secretProviderClasses: informers.spcs !== undefined,
          clusterSecretSyncs: informers.clusterSyncs !== undefined,
          rolloutKinds: [...informers.workloads.keys()],
        },
        'rotation controller started',
      );
    },
    startLeading() {
      mappingReady.activate();
      detector.start();
      consumer?.start();
      rollout.leadershipTaken();
      logger.info(
        { queue: settings.queue?.queueUrl ?? 'none (polling only)' },
        'rotation leader: detecting changes',
      );
    },
    async stopLeading() {
      permissions.stop();
      await Promise.all([detector.stop(), consumer?.stop()]);
    },
  });
  return { detector, consumer };
}

/** A rotation controller with a manager of its own (tests, benchmarks; `smk controller` shares one). */
export function createRotationController(options: RotationControllerOptions): RotationController {
  const manager = createManager({
    kubeConfig: options.kubeConfig,
    logger: options.logger,
    namespaces: options.namespaces,
    leaderElection: options.leaderElection,
    onLostLeadership: options.onLostLeadership,
    relistIntervalMs: options.relistIntervalMs,
  });
  const parts = addRotationController(manager, options);
  return {
    start: () => manager.start(),
    stop: () => manager.stop(5_000),
    get ready() {
      return manager.ready;
    },
    get leading() {
      return manager.leading;
    },
    detector: parts.detector,
    consumer: parts.consumer,
  };
}
