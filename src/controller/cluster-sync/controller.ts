/**
 * The ClusterSecretSync controller on the process's manager: watches ClusterSecretSyncs,
 * Namespaces and the Secrets smk manages; a run expands the object into one SyncJob per selected
 * namespace (./expand.ts), syncs each through the one pipeline (../sync/sync.ts) as the identity
 * the spec names (each namespace's own, or one the administrator names), releases the
 * Secrets of namespaces no longer selected (per deletionPolicy), and writes the status.
 */
import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import { describeError, InvalidInputError } from '../../core/errors.ts';
import { createObjects } from '../../kube/apply.ts';
import { createEventRecorder } from '../../kube/events.ts';
import type { ResourceKind } from '../../kube/kinds.ts';
import type { Manager } from '../../kube/manager.ts';
import {
  annotations,
  clusterSecretSyncKind,
  clusterSecretSyncPlural,
  group,
  type SyncJob,
  type SyncSource,
  version,
} from '../jobs.ts';
import { managedSecrets, withoutBookkeeping } from '../kinds.ts';
import { recordSync } from '../status-metrics.ts';
import type { SyncSettings } from '../sync/controller.ts';
import { jittered } from '../sync/outcome.ts';
import { createOwnedSecrets, secretWrites } from '../sync/owned-secrets.ts';
import { createRelease } from '../sync/release.ts';
import { forceSyncAnnotation, readyCondition } from '../sync/status.ts';
import { type SyncDeps, type SyncOutcome, syncJob } from '../sync/sync.ts';
import {
  type ClusterSecretSyncObject,
  deletionPolicyOf,
  expandClusterSecretSync,
  type NamespaceView,
  selectsNamespace,
} from './expand.ts';
import { type ClusterSyncStatus, clusterSyncStatus, type RunResult } from './status.ts';

export const clusterSecretSyncs: ResourceKind<ClusterSecretSyncObject> = {
  apiVersion: `${group}/${version}`,
  kind: clusterSecretSyncKind,
  plural: clusterSecretSyncPlural,
  clusterScoped: true,
  transform: withoutBookkeeping,
};

/** Only name, labels and phase are read: the rest of a Namespace is dropped from the cache. */
export const namespaceKind: ResourceKind<V1Namespace> = {
  apiVersion: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  clusterScoped: true,
  transform: (namespace) => ({
    metadata: {
      name: namespace.metadata?.name ?? '',
      ...(namespace.metadata?.labels ? { labels: namespace.metadata.labels } : {}),
      ...(namespace.metadata?.deletionTimestamp
        ? { deletionTimestamp: namespace.metadata.deletionTimestamp }
        : {}),
      ...(namespace.metadata?.resourceVersion ? { resourceVersion: namespace.metadata.resourceVersion } : {}),
    },
  }),
};

/** Namespaces synced at once within one ClusterSecretSync run (each reads as its own identity). */
const perRunConcurrency = 8;

function sourceIn(object: ClusterSecretSyncObject, namespace: string): SyncSource {
  return {
    kind: clusterSecretSyncKind,
    apiVersion: `${group}/${version}`,
    namespace,
    name: object.metadata.name,
    uid: object.metadata.uid ?? '',
    generation: object.metadata.generation ?? 0,
  };
}

/** Equal but for times: the per-namespace entries, counts and the Ready condition's words. */
function sameStatus(next: ClusterSyncStatus, previous: Record<string, unknown> | undefined): boolean {
  if (!previous) return false;
  const words = (status: Record<string, unknown>) => {
    const conditions =
      (status.conditions as { status?: string; reason?: string; message?: string }[] | undefined) ?? [];
    return JSON.stringify(
      canonical([
        status.observedGeneration,
        status.namespaces,
        status.namespaceCount,
        status.readyCount,
        status.failedCount,
        conditions.map((condition) => [condition.status, condition.reason, condition.message]),
      ]),
    );
  };
  return words(next as unknown as Record<string, unknown>) === words(previous);
}

/** JSON with object keys sorted: the API server stores a status with its keys in its own order. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, item]) => [key, canonical(item)]),
    );
  }
  return value;
}

async function inBatches<T>(
  items: readonly T[],
  size: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  for (let start = 0; start < items.length; start += size) {
    await Promise.all(items.slice(start, start + size).map(run));
  }
}

/**
 * Adds the controller when it can work: the manager serves every namespace (a ClusterSecretSync
 * selects among all of them, and the chart grants the cluster-wide reads only with a ClusterRole)
 * and the CRD is installed (an upgrade may not have added it yet).
 */
export function addClusterSyncController(manager: Manager, settings: SyncSettings): void {
  const { logger } = manager;
  if (manager.namespaces) {
    logger.info('ClusterSecretSyncs are not watched: the controller serves only some namespaces');
    return;
  }
  manager.add({
    name: 'cluster-sync-probe',
    async prepare() {
      const served = await manager.served({ group, version, plural: clusterSecretSyncPlural });
      if (served) wire(manager, settings);
      else logger.info('ClusterSecretSync CRD not installed: ClusterSecretSyncs are off');
    },
  });
}

function wire(manager: Manager, settings: SyncSettings): void {
  const { logger, kubeConfig } = manager;
  const controller = manager.controller('cluster-sync');
  const objects = settings.objects ?? createObjects(kubeConfig);
  const events = settings.events ?? createEventRecorder(kubeConfig, { component: 'smk-controller', logger });
  const now = settings.now ?? Date.now;
  const random = settings.random ?? Math.random;
  const jitter = settings.refreshJitter ?? 0.1;
  const pool = controller.workers({
    name: 'cluster-sync',
    concurrency: 2,
    queue: { rateLimit: settings.rateLimit ?? { perSecond: 50, burst: 100 } },
    reconcile,
  });
  const queue = pool.queue;
  const sources = controller.informer(clusterSecretSyncs);
  const namespaces = controller.informer(namespaceKind);
  const secrets = controller.informer(managedSecrets);
  const owned = createOwnedSecrets();
  const release = createRelease({ objects, events, owned });
  const deps: SyncDeps = {
    identities: settings.identities,
    defaultRegion: settings.defaultRegion,
    expressions: settings.expressions,
    ...secretWrites(objects, owned, (namespace, name) => secrets.get(namespace, name)),
  };
  /**
   * Mode (b): every job reads as the one ServiceAccount in `identityNamespace` (one identity, so
   * the process's cache and coalescing make it one AWS read per object per refresh, not one per
   * namespace). Mode (a): as each job's own namespace's account (the pipeline's default).
   */
  function readingAs(identityNamespace: string | undefined): SyncDeps {
    if (identityNamespace === undefined) return deps;
    return {
      ...deps,
      identities: {
        resolve: (_target, serviceAccountName, roleChain) =>
          deps.identities.resolve(identityNamespace, serviceAccountName, roleChain),
      },
    };
  }
  /** The last object of a ClusterSecretSync deleted, so its Secrets can be released. */
  const tombstones = new Map<string, ClusterSecretSyncObject>();
  let primed = false;

  function views(): NamespaceView[] {
    // A manager limited to some namespaces writes only into those.
    return namespaces
      .list()
      .filter((ns) => manager.inScope(ns.metadata?.name))
      .map((ns) => ({
        name: ns.metadata?.name ?? '',
        labels: ns.metadata?.labels ?? {},
        terminating: Boolean(ns.metadata?.deletionTimestamp),
      }));
  }

  /** Deletes (or lets go of) what `object` wrote in every namespace outside `keep`. */
  async function releaseOutside(object: ClusterSecretSyncObject, keep: ReadonlySet<string>): Promise<void> {
    const marker = `${clusterSecretSyncKind}/${object.metadata.name}`;
    const policy = deletionPolicyOf(object);
    for (const ns of namespaces.list()) {
      const namespace = ns.metadata?.name;
      if (!namespace || keep.has(namespace) || owned.ownedBy(namespace, marker).length === 0) continue;
      await release.releaseSecrets(sourceIn(object, namespace), policy, new Set());
    }
  }

  async function writeStatus(object: ClusterSecretSyncObject, result: RunResult): Promise<void> {
    const previous = readyCondition(object.status as Parameters<typeof readyCondition>[0]);
    const status = clusterSyncStatus(result, previous, now());
    // A retry that failed exactly as shown already writes nothing (no status write per backoff step).
    if (status.conditions[0]?.status !== 'True' && sameStatus(status, object.status)) return;
    await objects.applyStatus(
      {
        group,
        version,
        plural: clusterSecretSyncPlural,
        kind: clusterSecretSyncKind,
        namespace: '',
        name: object.metadata.name,
      },
      status as unknown as Record<string, unknown>,
    );
  }

  async function reconcile(name: string): Promise<void> {
    const object = sources.get('', name);
    if (!object) {
      // Delete: owner references let the garbage collector delete the Secrets; done here too, so
      // they do not outlive the object where no collector runs. Retain: they were written without
      // an owner reference (creationPolicyFor), so no collector takes them; any reference left
      // from an earlier Delete goes now.
      const last = tombstones.get(name);
      tombstones.delete(name);
      queue.remove(name);
      if (last) await releaseOutside(last, new Set());
      return;
    }
    // Being deleted (a foreground deletion, or someone else's finalizer): write nothing more; the
    // garbage collector or the branch above carries out deletionPolicy once it is gone.
    if (object.metadata.deletionTimestamp) return;
    const generation = object.metadata.generation ?? 0;
    let jobs: readonly SyncJob[] = [];
    let result: RunResult;
    try {
      const expansion = expandClusterSecretSync(object, views());
      jobs = expansion.jobs;
      const outcomes = new Map<string, SyncOutcome>();
      const runDeps = readingAs(expansion.identityNamespace);
      await inBatches(jobs, perRunConcurrency, async (job) => {
        const outcome = await syncJob(job, runDeps);
        outcomes.set(job.source.namespace, outcome);
        recordSync(job.source, outcome, logger);
      });
      result = { generation, outcomes, missing: expansion.missing, truncated: expansion.truncated };
      // Retain: a namespace whose sync failed this run was not rewritten, so an owner reference
      // from an earlier Delete would stay there; release drops it (and only it) now.
      const retain = deletionPolicyOf(object) === 'Retain';
      const keep = jobs
        .map((job) => job.source.namespace)
        .filter((namespace) => !retain || outcomes.get(namespace)?.ok);
      await releaseOutside(object, new Set(keep));
    } catch (error) {
      if (!(error instanceof InvalidInputError)) throw error;
      result = {
        generation,
        outcomes: new Map(),
        missing: [],
        truncated: 0,
        invalid: { reason: 'InvalidSpec', message: describeError(error) },
      };
    }
    await writeStatus(object, result);
    const failures = [...result.outcomes.values()].filter((outcome) => !outcome.ok);
    if (failures.some((outcome) => !outcome.ok && outcome.retry)) {
      queue.addRateLimited(name);
      return;
    }
    queue.forget(name);
    const job = jobs[0];
    if (job?.refreshPolicy === 'Periodic')
      queue.addAfter(name, jittered(job.refreshIntervalMs, jitter, random));
  }

  function queueAll(): void {
    if (!primed) return;
    for (const object of sources.list()) queue.add(object.metadata.name);
  }

  /** A Namespace changed: re-run the ClusterSecretSyncs that select it now and did not, or the reverse. */
  function queueChanged(before: V1Namespace | undefined, after: V1Namespace | undefined): void {
    if (!primed) return;
    const view = (ns: V1Namespace | undefined): NamespaceView | undefined =>
      ns?.metadata?.name && manager.inScope(ns.metadata.name)
        ? {
            name: ns.metadata.name,
            labels: ns.metadata.labels ?? {},
            terminating: Boolean(ns.metadata.deletionTimestamp),
          }
        : undefined;
    const was = view(before);
    const is = view(after);
    for (const object of sources.list()) {
      const selectedBefore = was !== undefined && selectsNamespace(object, was);
      const selectedNow = is !== undefined && selectsNamespace(object, is);
      if (selectedBefore !== selectedNow) queue.add(object.metadata.name);
    }
  }

  /** A Secret of ours someone changed or deleted: its ClusterSecretSync runs again (repair). */
  function onManagedSecret(secret: V1Secret, deleted: boolean): void {
    const marker = secret.metadata?.annotations?.[annotations.owner];
    if (!marker?.startsWith(`${clusterSecretSyncKind}/`)) return;
    if (!deleted && owned.isOwnWrite(secret)) return;
    queue.add(marker.slice(clusterSecretSyncKind.length + 1));
  }

  secrets.addHandlers(owned.handlers(onManagedSecret));
  sources.addHandlers({
    add: (object) => primed && queue.add(object.metadata.name),
    update: (object, previous) => {
      if (
        previous.metadata.generation !== object.metadata.generation ||
        previous.metadata.annotations?.[forceSyncAnnotation] !==
          object.metadata.annotations?.[forceSyncAnnotation]
      )
        queue.add(object.metadata.name);
    },
    delete: (object) => {
      tombstones.set(object.metadata.name, object);
      queue.add(object.metadata.name);
    },
  });
  // A namespace labelled in or out, created or deleted: only the selections it changes run again.
  namespaces.addHandlers({
    add: (namespace) => queueChanged(undefined, namespace),
    update: (namespace, previous) => queueChanged(previous, namespace),
    delete: (namespace) => queueChanged(namespace, undefined),
  });

  controller.run({
    cachesSynced() {
      primed = true;
      queueAll();
      logger.info('cluster sync controller started');
    },
  });
}
