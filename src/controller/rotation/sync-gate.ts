/**
 * The sync gate: a rollout never starts pods on the old value. Before a workload rolls for a new
 * version, every smk-synced Secret it consumes that carries that secret must hold the new version;
 * until then the gate names the sources still behind and asks them to re-sync (once per version
 * per `resyncRetryMs`). On a change, every source that reads the secret is asked to re-sync.
 *
 * A SecretSync says which version each file holds in `status.syncedVersions`, a ClusterSecretSync
 * in each namespace's entry of `status.namespaces`; a drop-in SecretProviderClass has no status of
 * ours, so its Secret carries the `smk.dev/versions` annotation. A ClusterSecretSync is one object
 * for all its namespaces: it is asked to re-sync once, and re-syncs them all.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { secretIdMatches } from '../../aws/index.ts';
import { describeError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { ObjectRef } from '../../kube/apply.ts';
import { namespaceStatuses } from '../cluster-sync/status.ts';
import {
  clusterSecretSyncKind,
  secretSyncKind,
  spcGroup,
  spcKind,
  spcVersion,
  annotations as syncAnnotations,
  group as syncGroup,
  version as syncVersion,
} from '../jobs.ts';
import type { ChangeSink, SecretObservation } from './detector.ts';
import type { Permissions } from './permissions.ts';
import type { SourceRef, SourceUsage } from './usage.ts';
import { type UsageIndex, usageSubject } from './usage-index.ts';
import type { Dependency, Workload } from './workloads.ts';

/** Why a source is asked to sync now: the version it must pick up. */
export interface ResyncRequest {
  readonly versionId: string;
  readonly at: number;
}

export type Resync = (source: SourceRef, request: ResyncRequest) => Promise<void>;

export interface SyncGateOptions {
  readonly index: Pick<
    UsageIndex,
    'usages' | 'ownerOf' | 'managedSecret' | 'syncObject' | 'clusterSyncObject'
  >;
  readonly permissions: Pick<Permissions, 'check'>;
  readonly resync: Resync;
  readonly logger: Logger;
  /** A source still behind after being asked this long is asked again. */
  readonly resyncRetryMs: number;
  readonly now: () => number;
}

export interface SyncGate {
  /** The sources of synced Secrets the workload consumes that do not carry `dependency`'s version yet. */
  unsyncedSources(workload: Workload, dependency: Dependency): SourceUsage[];
  /** Asks a source to re-sync for `versionId`, at most once per resyncRetryMs (a ClusterSecretSync once for all its namespaces). */
  askResync(source: SourceRef, versionId: string): Promise<void>;
  /**
   * The versions the sources using a secret last synced, per followed stage. Where sources
   * disagree, one that differs from AWS wins, so a secret changed while no leader ran is re-synced
   * now, not at the next refresh (the detector's `synced`).
   */
  syncedStages(observation: SecretObservation): Map<string, string>;
  /**
   * On a change: every source that reads the secret, and whose identity may describe it, re-syncs
   * (a ClusterSecretSync when the identity of one of its namespaces may).
   */
  readonly resyncSink: ChangeSink;
}

/** Default resync: bump `smk.dev/force-sync`, which the sync controllers treat as "sync now" (any process). */
export function forceSyncPatch(
  source: SourceRef,
  request: ResyncRequest,
): { ref: ObjectRef; patch: Record<string, unknown> } {
  const apiVersion = source.kind === spcKind ? `${spcGroup}/${spcVersion}` : `${syncGroup}/${syncVersion}`;
  const stamp = `${new Date(request.at).toISOString()} ${request.versionId}`;
  const { kind, namespace, name } = resyncTarget(source);
  return {
    ref: { apiVersion, kind, namespace, name },
    patch: { metadata: { annotations: { 'smk.dev/force-sync': stamp } } },
  };
}

/** The object a re-sync request goes to: a ClusterSecretSync's run in a namespace is the cluster-scoped object. */
export function resyncTarget(source: SourceRef): SourceRef {
  return source.kind === clusterSecretSyncKind ? { ...source, namespace: '' } : source;
}

/** `smk.dev/versions` (JSON, file → version) on a SecretProviderClass's Secret; empty when absent or broken. */
export function annotatedVersions(secret: KubernetesObject | undefined): Map<string, string> {
  const annotated = secret?.metadata?.annotations?.[syncAnnotations.versions];
  if (!annotated) return new Map();
  try {
    const parsed: unknown = JSON.parse(annotated);
    if (typeof parsed !== 'object' || parsed === null) return new Map();
    return new Map(
      Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
  } catch {
    return new Map();
  }
}

export function createSyncGate(options: SyncGateOptions): SyncGate {
  const { index, logger, now } = options;
  /** (source key, version) → when we asked it to re-sync. */
  const resyncAsked = new Map<string, number>();
  /**
   * Where no version is recorded (a drop-in SecretProviderClass Secret without `smk.dev/versions`):
   * the Secret counts as synced once smk rewrote it after the change was seen. A new version with
   * the very same bytes never rewrites it, so such a rollout waits and then warns; it never rolls early.
   */
  const baselines = new Map<string, string>();

  function rememberBaseline(namespace: string, secretName: string, versionId: string): void {
    const key = `${namespace}/${secretName}@${versionId}`;
    if (baselines.has(key)) return;
    baselines.set(key, index.managedSecret(namespace, secretName)?.metadata?.resourceVersion ?? '');
    if (baselines.size > 10_000) baselines.delete(baselines.keys().next().value ?? '');
  }

  function rewrittenSince(namespace: string, secretName: string, versionId: string): boolean {
    const baseline = baselines.get(`${namespace}/${secretName}@${versionId}`);
    if (baseline === undefined) {
      rememberBaseline(namespace, secretName, versionId);
      return false;
    }
    const current = index.managedSecret(namespace, secretName)?.metadata?.resourceVersion ?? '';
    return current !== '' && current !== baseline;
  }

  function syncedVersions(owner: SourceUsage, secretName: string): Map<string, string> {
    const { source } = owner;
    if (source.kind === clusterSecretSyncKind) {
      const entry = namespaceStatuses(index.clusterSyncObject(source.name)).get(source.namespace);
      return new Map(entry?.versions ?? []);
    }
    if (source.kind !== secretSyncKind) {
      return annotatedVersions(index.managedSecret(source.namespace, secretName));
    }
    const object = index.syncObject(source.namespace, source.name) as
      | { status?: { syncedVersions?: { objectName?: string; versionId?: string }[] } }
      | undefined;
    const entries = object?.status?.syncedVersions ?? [];
    return new Map(entries.map((entry) => [entry.objectName ?? '', entry.versionId ?? '']));
  }

  async function askResync(requested: SourceRef, versionId: string): Promise<void> {
    const source = resyncTarget(requested);
    const key = `${source.kind}/${source.namespace}/${source.name}@${versionId}`;
    const asked = resyncAsked.get(key);
    if (asked !== undefined && now() - asked < options.resyncRetryMs) return;
    resyncAsked.delete(key);
    resyncAsked.set(key, now());
    if (resyncAsked.size > 10_000) {
      for (const [old, at] of resyncAsked) if (now() - at > 3_600_000) resyncAsked.delete(old);
    }
    try {
      await options.resync(source, { versionId, at: now() });
    } catch (error) {
      resyncAsked.delete(key);
      logger.warn(
        { source: `${source.kind} ${source.namespace}/${source.name}`, err: describeError(error) },
        're-sync request failed',
      );
    }
  }

  return {
    unsyncedSources(workload, dependency) {
      const pending: SourceUsage[] = [];
      const versionId = dependency.versionId;
      const arn = dependency.key.split('@')[0] ?? '';
      for (const secretName of workload.consumedSecrets) {
        const owner = index.ownerOf(workload.namespace, secretName);
        if (!owner) continue;
        const uses = owner.uses.filter((use) => secretIdMatches(use.watch.id, arn, dependency.name));
        if (uses.length === 0) continue;
        const files = new Set(uses.flatMap((use) => use.files));
        const versions = syncedVersions(owner, secretName);
        // Only a drop-in SecretProviderClass may record nothing; a ClusterSecretSync namespace
        // without versions has not synced (its entry says why), so it is behind.
        const carried =
          versions.size > 0 || owner.source.kind === clusterSecretSyncKind
            ? [...files].every((file) => versions.get(file) === versionId)
            : rewrittenSince(workload.namespace, secretName, versionId ?? '');
        if (!carried) pending.push(owner);
      }
      return pending;
    },
    askResync,
    syncedStages(observation) {
      const stages = new Map<string, string>();
      for (const usage of index.usages()) {
        for (const use of usage.uses) {
          const { stage } = use.watch;
          if (stage === undefined || use.watch.region !== observation.region) continue;
          if (!secretIdMatches(use.watch.id, observation.arn, observation.name)) continue;
          for (const target of usage.targets) {
            const versions = syncedVersions(usage, target);
            for (const file of use.files) {
              const version = versions.get(file);
              if (!version) continue;
              if (!stages.has(stage) || version !== observation.stages.get(stage)) stages.set(stage, version);
            }
          }
        }
      }
      return stages;
    },
    resyncSink: {
      async secretChanged(change) {
        if (!change.previous) return;
        const version = [...change.secret.stages.values()].join(',') || 'deleted';
        const clusterSyncsAsked = new Set<string>();
        for (const usage of index.usages()) {
          const cluster = usage.source.kind === clusterSecretSyncKind;
          if (cluster && clusterSyncsAsked.has(usage.source.name)) continue;
          const uses = usage.uses.filter(
            (use) =>
              use.watch.region === change.secret.region &&
              secretIdMatches(use.watch.id, change.secret.arn, change.secret.name),
          );
          if (uses.length === 0) continue;
          // The force-sync stamp names the version: only for a source whose identity may describe it.
          const allowed = await Promise.all(
            uses.map((use) => options.permissions.check(usageSubject(usage, use.watch))),
          );
          if (!allowed.some(Boolean)) continue;
          if (cluster) clusterSyncsAsked.add(usage.source.name);
          if (usage.source.kind === spcKind) {
            for (const target of usage.targets) rememberBaseline(usage.source.namespace, target, version);
          }
          await askResync(usage.source, version);
        }
      },
    },
  };
}
