/**
 * The rotation controller: watch these, on change do this.
 *   - sync sources, managed Secrets, mappings and workloads (informers.ts) feed the usage index
 *     (usage-index.ts): what uses which secret;
 *   - the change detector and the SQS consumer run in the leader; on a change, sinks in order:
 *     the caller's (e.g. the AWS cache), re-sync of every source reading the secret (sync-gate.ts),
 *     rollouts of the workloads following it (rollout.ts), mapping status (mapping-status.ts);
 *   - a workload rolls at most once per debounce window, and only once the synced Secrets it
 *     consumes carry the new version (the sync gate);
 *   - Secrets and ConfigMaps a workload names (references.ts): a data change rolls their readers.
 * Secrets are watched with the controller's role, but a namespace is shown (or rolled for) a
 * secret only once one of its own identities may describe it (permissions.ts).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { describeError } from '../../core/errors.ts';
import { createObjects } from '../../kube/apply.ts';
import { apiErrorOf, retryAfterMsOf } from '../../kube/client.ts';
import { createEventRecorder } from '../../kube/events.ts';
import type { Informer } from '../../kube/informer.ts';
import { apiLeaseStore, createLeaderElection, type LeaderElection } from '../../kube/lease.ts';
import { createWorkQueue, type WorkQueue } from '../../kube/queue.ts';
import { customResourceServed } from '../../kube/served.ts';
import { secretSyncKind, spcGroup, spcKind, spcPlural, spcVersion } from '../jobs.ts';
import { conditionGauge } from '../status-metrics.ts';
import { type Consumer, createConsumer } from './consumer.ts';
import { createDetector, type Detector } from './detector.ts';
import { apiInformers } from './informers.ts';
import { type RolloutKind, rolloutKindNames, rolloutKinds } from './kinds.ts';
import { mappingGroup, mappingKind, mappingPlural, mappingVersion } from './mapping.ts';
import { createMappingStatuses } from './mapping-status.ts';
import type { RotationControllerOptions } from './options.ts';
import { createPermissions } from './permissions.ts';
import { createReferenceTracker, type ReferenceKind, referenceAnnotations } from './references.ts';
import { createRollouts, rollouts } from './rollout.ts';
import { createSyncGate, forceSyncPatch, type ResyncRequest } from './sync-gate.ts';
import type { SourceRef } from './usage.ts';
import { createUsageIndex, type IndexInformers } from './usage-index.ts';

export type { RotationControllerOptions, RotationLeaderElection } from './options.ts';
export { rollouts } from './rollout.ts';
export type { ResyncRequest } from './sync-gate.ts';

export interface RotationController {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly ready: boolean;
  readonly leading: boolean;
  /** The detector (tests poll it directly). */
  readonly detector: Detector;
  /** The consumer, when a queue is configured. */
  readonly consumer: Consumer | undefined;
}

/** The opt-in annotations whose change alters what a workload follows ('' when it has none). */
function optIn(object: KubernetesObject): string {
  const annotations = object.metadata?.annotations ?? {};
  return ['smk.dev/rollout-on', 'smk.dev/rollout-on-sync', ...referenceAnnotations.map((r) => r.annotation)]
    .map((name) => annotations[name] ?? '')
    .join('|')
    .replace(/^\|+$/, '');
}

export function createRotationController(options: RotationControllerOptions): RotationController {
  const { kubeConfig, logger } = options;
  const now = options.now ?? Date.now;
  const objects = options.objects ?? createObjects(kubeConfig);
  const events = options.events ?? createEventRecorder(kubeConfig, { component: 'smk-rotation', logger });
  const queue: WorkQueue = createWorkQueue({ backoff: { baseMs: 200, maxMs: 5_000, jitter: 0.2 } });
  const mappingReady = conditionGauge(mappingKind);
  const informerFor =
    options.informerFor ??
    apiInformers(kubeConfig, {
      namespaces: options.namespaces,
      logger,
      relistIntervalMs: options.relistIntervalMs,
    });
  let leading = false;
  let running = false;

  // ---- what is watched (optional kinds join at start, once their CRD is known to be served) --
  const informers: IndexInformers = {
    syncs: informerFor(secretSyncKind),
    managedSecrets: informerFor('ManagedSecret'),
    spcs: undefined,
    mappings: undefined,
    workloads: new Map(
      rolloutKindNames
        .filter((kind) => !rolloutKinds[kind].optional)
        .map((kind) => [kind, informerFor(kind)] as const),
    ),
  };

  const referenced = new Map<ReferenceKind, Informer<KubernetesObject>>([
    ['Secret', informerFor('Secret')],
    ['ConfigMap', informerFor('ConfigMap')],
  ]);
  const parseOptions = { reloaderAnnotations: options.reloaderAnnotations ?? false };

  // ---- the pieces ----------------------------------------------------------------------------
  const references = createReferenceTracker();
  const permissions = createPermissions({
    identities: options.identities,
    logger,
    ...(options.permissionTtlMs !== undefined ? { ttlMs: options.permissionTtlMs } : {}),
    now,
    // An answer arrived or changed: plan the namespace's workloads and mappings again.
    onChange: (subject) => {
      if (!leading) return;
      rollout.namespaceChanged(subject.namespace);
      statuses.permissionChanged(subject);
    },
  });
  const index = createUsageIndex({
    informers,
    defaultRegion: options.defaultRegion,
    allowJmesPathExpressions: options.allowJmesPathExpressions,
    observed: (watch) => detector.observed(watch),
    permissions,
    references,
    parseOptions,
  });
  const gate = createSyncGate({
    index,
    permissions,
    resync:
      options.resync ??
      (async (source: SourceRef, request: ResyncRequest) => {
        const { ref, patch } = forceSyncPatch(source, request);
        await objects.mergePatch(ref, patch);
      }),
    logger,
    resyncRetryMs: options.resyncRetryMs ?? 30_000,
    now,
  });
  const statuses = createMappingStatuses({
    index,
    permissions,
    observed: (watch) => detector.observed(watch),
    objects,
    events,
    logger,
    defaultRegion: options.defaultRegion,
    leading: () => leading,
    now,
  });
  const rollout = createRollouts({
    index,
    gate,
    statuses,
    objects,
    events,
    queue,
    logger,
    leading: () => leading,
    now,
    debounceMs: options.debounceMs ?? 500,
    syncWaitMs: options.syncWaitMs ?? 120_000,
    parseOptions,
  });
  const detector = createDetector({
    reader: options.reader,
    watches: () => index.watches(),
    synced: (observation) => gate.syncedStages(observation),
    sinks: [...(options.sinks ?? []), gate.resyncSink, rollout.rolloutSink, statuses.statusSink],
    logger,
    ...(options.pollIntervalMs ? { intervalMs: options.pollIntervalMs } : {}),
    ...(options.pollJitter !== undefined ? { jitter: options.pollJitter } : {}),
    now,
  });
  const consumer = options.queue
    ? createConsumer({
        queue: options.queue,
        confirm: (hint) => detector.hint(hint),
        logger,
        ...(options.queueWaitSeconds !== undefined ? { waitSeconds: options.queueWaitSeconds } : {}),
      })
    : undefined;

  // ---- on change, do this --------------------------------------------------------------------
  function watchWorkloads(kind: RolloutKind, informer: Informer<KubernetesObject>): void {
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

  function watchMappings(informer: Informer<KubernetesObject>): void {
    const changed = async (object: KubernetesObject): Promise<void> => {
      const mapping = await statuses.parse(object);
      if (!mapping) return;
      rollout.mappingChanged(mapping);
      if (leading) await statuses.write(mapping, {});
    };
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

  function watchSources(
    kind: typeof secretSyncKind | typeof spcKind,
    informer: Informer<KubernetesObject>,
  ): void {
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

  function watchReferenced(kind: ReferenceKind, informer: Informer<KubernetesObject>): void {
    const seen = (object: KubernetesObject) => {
      const how = references.observe(kind, object);
      const { namespace, name } = object.metadata ?? {};
      if (how !== 'same' && namespace && name) rollout.referenceChanged(kind, namespace, name, how);
    };
    informer.addHandlers({ add: seen, update: seen, delete: (object) => references.forget(kind, object) });
  }

  function watchManagedSecrets(informer: Informer<KubernetesObject>): void {
    const moved = (secret: KubernetesObject) =>
      rollout.wakeDependents(secret.metadata?.namespace, [secret.metadata?.name ?? '']);
    informer.addHandlers({ add: moved, update: moved, delete: moved });
  }

  // ---- workers, leadership -------------------------------------------------------------------
  let leader: LeaderElection | undefined;
  let workers: Promise<void>[] = [];

  async function work(): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        if (leading) await rollout.reconcile(key);
        queue.forget(key);
      } catch (error) {
        // A conflict means the workload changed under us: plan again from a fresh read at once.
        let delay = 0;
        if (apiErrorOf(error)?.status === 409) queue.add(key);
        else {
          delay = queue.addRateLimited(key, retryAfterMsOf(error));
          rollouts.inc({ kind: key.split('/')[0] ?? '', outcome: 'failed' });
        }
        logger.warn({ workload: key, err: describeError(error), retryInMs: delay }, 'rollout step failed');
      } finally {
        queue.done(key);
      }
    }
  }

  function startLeading(): void {
    leading = true;
    mappingReady.activate();
    detector.start();
    consumer?.start();
    if (workers.length === 0) workers = Array.from({ length: 4 }, () => work());
    rollout.leadershipTaken();
    logger.info(
      { queue: options.queue?.queueUrl ?? 'none (polling only)' },
      'rotation leader: detecting changes',
    );
  }

  async function stopLeading(): Promise<void> {
    leading = false;
    await Promise.all([detector.stop(), consumer?.stop()]);
  }

  /** Stops a start-up question that is still being retried (the CRD probes). */
  const stopping = new AbortController();
  /** Whether a CRD is served (`auto`), or as configured; undefined when stopped before the API server could tell. */
  function served(
    setting: boolean | 'auto' | undefined,
    group: string,
    version: string,
    plural: string,
  ): Promise<boolean | undefined> {
    if (setting !== 'auto' && setting !== undefined) return Promise.resolve(setting);
    return customResourceServed(
      kubeConfig,
      { group, version, plural, namespace: options.namespaces?.[0] },
      { logger, signal: stopping.signal },
    );
  }

  const allInformers = (): Informer<KubernetesObject>[] => [
    informers.syncs,
    informers.managedSecrets,
    ...informers.workloads.values(),
    ...(informers.spcs ? [informers.spcs] : []),
    ...(informers.mappings ? [informers.mappings] : []),
    ...referenced.values(),
  ];

  return {
    async start() {
      running = true;
      const spc = await served(options.secretProviderClasses, spcGroup, spcVersion, spcPlural);
      if (spc) informers.spcs = informerFor(spcKind);
      const mapped = await served(options.mappings, mappingGroup, mappingVersion, mappingPlural);
      if (spc === undefined || mapped === undefined) return;
      if (mapped) {
        informers.mappings = informerFor(mappingKind);
        informers.mappings.addHandlers(mappingReady.handlers);
        watchMappings(informers.mappings);
      }
      for (const kind of rolloutKindNames.filter((name) => rolloutKinds[name].optional)) {
        const row = rolloutKinds[kind];
        const on = await served(options.rolloutKinds?.[kind], row.group, row.version, row.resource);
        if (on === undefined) return;
        if (on) informers.workloads.set(kind, informerFor(kind));
      }
      for (const [kind, informer] of informers.workloads) watchWorkloads(kind, informer);
      watchManagedSecrets(informers.managedSecrets);
      for (const [kind, informer] of referenced) watchReferenced(kind, informer);
      watchSources(secretSyncKind, informers.syncs);
      if (informers.spcs) watchSources(spcKind, informers.spcs);
      await Promise.all(allInformers().map((informer) => informer.start()));
      if (options.leaderElection) {
        const settings = options.leaderElection;
        leader = createLeaderElection(apiLeaseStore(kubeConfig, settings.namespace, settings.name), {
          identity: settings.identity,
          logger,
          onStartedLeading: startLeading,
          onStoppedLeading: () => {
            void stopLeading();
            if (running) options.onLostLeadership?.();
          },
        });
        leader.start();
      } else {
        startLeading();
      }
      logger.info(
        {
          namespaces: options.namespaces ?? 'all',
          mappings: mapped,
          secretProviderClasses: spc,
          rolloutKinds: [...informers.workloads.keys()],
        },
        'rotation controller started',
      );
    },
    async stop() {
      running = false;
      stopping.abort();
      queue.shutDown();
      await stopLeading();
      await Promise.race([
        Promise.all(workers),
        new Promise((resolve) => setTimeout(resolve, 5_000).unref()),
      ]);
      await leader?.stop();
      for (const informer of allInformers()) informer.stop();
      workers = [];
    },
    get ready() {
      return allInformers().every((informer) => informer.healthy);
    },
    get leading() {
      return leading;
    },
    detector,
    get consumer() {
      return consumer;
    },
  };
}
