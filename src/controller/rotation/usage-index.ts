/**
 * What uses which secret, read from the informers' caches: the sync sources (SecretSyncs,
 * opted-in SecretProviderClasses, and each namespace a ClusterSecretSync writes into) and what they
 * read, mappings, workloads and what they follow.
 * Parsing is memoised per object version: polls, hints and rollouts ask for these often.
 *
 * A workload follows a secret only once the identity that must be able to describe it (permissions.ts)
 * is known to be allowed: a mapping's or `rollout-on`'s secret as the workload's own ServiceAccount,
 * a synced Secret's secrets as the source that reads them (for a ClusterSecretSync, the identity
 * that reads for that namespace: its own ServiceAccount, or the one the administrator named).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { InvalidInputError } from '../../core/errors.ts';
import { currentStage } from '../../core/source.ts';
import type { SharedInformer } from '../../kube/manager.ts';
import { namespaceStatuses } from '../cluster-sync/status.ts';
import { clusterSecretSyncKind, secretSyncKind, spcKind, annotations as syncAnnotations } from '../jobs.ts';
import { spcOptedIn } from '../spc-job.ts';
import type { SecretObservation, Watch } from './detector.ts';
import type { RolloutKind } from './kinds.ts';
import { mappingKind, mappingMatches, parseMapping, type RotationMapping } from './mapping.ts';
import type { PermissionSubject, Permissions } from './permissions.ts';
import type { ReferenceTracker } from './references.ts';
import { regionOf } from './stages.ts';
import { clusterSyncUsages, type SourceUsage, sourceUsage } from './usage.ts';
import {
  type Dependency,
  parseWorkload,
  recordKey,
  type Workload,
  type WorkloadParseOptions,
} from './workloads.ts';

/** What the index reads of an informer: its cache. */
export type Cache = Pick<SharedInformer<KubernetesObject>, 'get' | 'list'>;

/** The caches the index reads. SecretProviderClasses, ClusterSecretSyncs and mappings are there once their CRD is served. */
export interface IndexInformers {
  readonly syncs: Cache;
  readonly managedSecrets: Cache;
  spcs: Cache | undefined;
  clusterSyncs: Cache | undefined;
  mappings: Cache | undefined;
  readonly workloads: Map<RolloutKind, Cache>;
}

export interface Mapped {
  readonly object: KubernetesObject;
  readonly mapping: RotationMapping | InvalidInputError;
}

/** One secret a workload would follow, why, and the identity that must be able to describe it. */
export interface Candidate {
  readonly watch: Watch;
  readonly via: string;
  readonly subject: PermissionSubject;
  readonly mapping?: RotationMapping;
}

export interface UsageIndexOptions {
  readonly informers: IndexInformers;
  readonly defaultRegion: string | undefined;
  readonly allowJmesPathExpressions?: boolean | undefined;
  /** Where the detector last saw a secret (its stages), if it did. */
  readonly observed: (watch: Watch) => SecretObservation | undefined;
  readonly permissions: Pick<Permissions, 'known' | 'check'>;
  /** Data versions of the Secrets and ConfigMaps workloads name (references.ts); none without. */
  readonly references?: Pick<ReferenceTracker, 'dataVersion'>;
  readonly parseOptions?: WorkloadParseOptions;
}

export interface UsageIndex {
  usageOf(kind: typeof secretSyncKind | typeof spcKind, object: KubernetesObject): SourceUsage | undefined;
  /** A ClusterSecretSync's run in each namespace its status lists (none when it does not parse). */
  clusterUsagesOf(object: KubernetesObject): ReadonlyMap<string, SourceUsage>;
  /** Every sync source that parses, with what it reads (a ClusterSecretSync once per namespace). */
  usages(): SourceUsage[];
  mappings(): Mapped[];
  workloads(): Workload[];
  /** The watch of a mapping's or annotation's secret id (AWSCURRENT); undefined without a region. */
  watchFor(id: string): Watch | undefined;
  /** Every secret anything uses: what the detector follows. */
  watches(): Watch[];
  /** The sync source that wrote a managed Secret, from its owner marker. */
  ownerOf(namespace: string, secretName: string): SourceUsage | undefined;
  candidatesOf(workload: Workload): Candidate[];
  /** What a workload follows and may follow (permission known and granted), with where each secret's stage points now. */
  dependenciesOf(workload: Workload): { dependencies: Dependency[]; mappings: RotationMapping[] };
  /** Waits for the answers dependenciesOf needs (a workload planned for the first time asks AWS once). */
  settlePermissions(workload: Workload): Promise<void>;
  managedSecret(namespace: string, name: string): KubernetesObject | undefined;
  syncObject(namespace: string, name: string): KubernetesObject | undefined;
  clusterSyncObject(name: string): KubernetesObject | undefined;
  mappingObject(namespace: string, name: string): KubernetesObject | undefined;
}

/** A mapping's or `smk.dev/rollout-on`'s secret is asked about as the workload's own ServiceAccount. */
export function workloadSubject(workload: Workload, watch: Watch): PermissionSubject {
  return {
    namespace: workload.namespace,
    serviceAccountName: workload.serviceAccountName,
    region: watch.region,
    id: watch.id,
  };
}

/** A synced Secret's secrets are asked about as the identity the source reads as. */
export function usageSubject(usage: SourceUsage, watch: Watch): PermissionSubject {
  return {
    namespace: usage.identityNamespace,
    serviceAccountName: usage.serviceAccountName,
    region: watch.region,
    id: watch.id,
  };
}

export function createUsageIndex(options: UsageIndexOptions): UsageIndex {
  const { informers, defaultRegion, permissions } = options;

  const usageMemo = new Map<string, { version: string; usage: SourceUsage | undefined }>();
  function usageOf(
    kind: typeof secretSyncKind | typeof spcKind,
    object: KubernetesObject,
  ): SourceUsage | undefined {
    const key = `${kind}/${object.metadata?.namespace}/${object.metadata?.name}`;
    const version = object.metadata?.resourceVersion ?? '';
    const memo = usageMemo.get(key);
    if (memo && memo.version === version) return memo.usage;
    const usage = sourceUsage(kind, object, defaultRegion, {
      allowExpressions: options.allowJmesPathExpressions,
    });
    usageMemo.set(key, { version, usage });
    return usage;
  }

  /**
   * Per ClusterSecretSync: its runs in the namespaces its status lists, kept until its spec or that
   * list changes (a status write per refresh changes neither), and the secrets it reads even before
   * its first status (the objects spec is the same in every namespace, so any name builds the job).
   */
  const clusterMemo = new Map<
    string,
    { key: string; byNamespace: ReadonlyMap<string, SourceUsage>; uses: SourceUsage['uses'] }
  >();
  function clusterEntry(object: KubernetesObject): {
    byNamespace: ReadonlyMap<string, SourceUsage>;
    uses: SourceUsage['uses'];
  } {
    const name = object.metadata?.name ?? '';
    const namespaces = [...namespaceStatuses(object).keys()];
    // uid: an object deleted and made again under the same name starts at generation 1 again.
    const key = `${object.metadata?.uid ?? ''} ${object.metadata?.generation ?? 0} ${namespaces.join(' ')}`;
    const known = clusterMemo.get(name);
    if (known?.key === key) return known;
    const specOptions = { allowExpressions: options.allowJmesPathExpressions };
    const byNamespace = clusterSyncUsages(object, namespaces, defaultRegion, specOptions);
    const first = byNamespace.values().next().value;
    const uses =
      first?.uses ??
      clusterSyncUsages(object, ['default'], defaultRegion, specOptions).values().next().value?.uses ??
      [];
    const entry = { key, byNamespace, uses };
    if (clusterMemo.size > 1_000) clusterMemo.clear(); // deleted objects' entries, eventually
    clusterMemo.set(name, entry);
    return entry;
  }

  const parsed = new Map<string, { version: string; value: unknown }>();
  function memo<T>(key: string, object: KubernetesObject, parse: () => T): T {
    const version = object.metadata?.resourceVersion ?? '';
    const known = parsed.get(key);
    if (known && known.version === version) return known.value as T;
    const value = parse();
    if (parsed.size > 50_000) parsed.clear(); // deleted objects' entries, eventually
    parsed.set(key, { version, value });
    return value;
  }

  function usages(): SourceUsage[] {
    const found: SourceUsage[] = [];
    for (const object of informers.syncs.list()) {
      const usage = usageOf(secretSyncKind, object);
      if (usage) found.push(usage);
    }
    for (const object of informers.spcs?.list() ?? []) {
      if (!spcOptedIn(object)) continue;
      const usage = usageOf(spcKind, object);
      if (usage) found.push(usage);
    }
    for (const object of informers.clusterSyncs?.list() ?? []) {
      found.push(...clusterEntry(object).byNamespace.values());
    }
    return found;
  }

  function mappings(): Mapped[] {
    return (informers.mappings?.list() ?? []).map((object) =>
      memo(`${mappingKind}/${object.metadata?.namespace}/${object.metadata?.name}`, object, () => {
        try {
          return { object, mapping: parseMapping(object) };
        } catch (error) {
          return { object, mapping: error as InvalidInputError };
        }
      }),
    );
  }

  function workloads(): Workload[] {
    const found: Workload[] = [];
    for (const [kind, informer] of informers.workloads) {
      for (const object of informer.list()) {
        const workload = memo(
          `${kind}/${object.metadata?.namespace}/${object.metadata?.name}`,
          object,
          () => {
            try {
              return parseWorkload(kind, object, options.parseOptions);
            } catch {
              return undefined; // reported when the workload itself is reconciled
            }
          },
        );
        if (workload) found.push(workload);
      }
    }
    return found;
  }

  function watchFor(id: string): Watch | undefined {
    const region = regionOf(id, defaultRegion);
    return region ? { region, id, stage: currentStage } : undefined;
  }

  function validMappings(): RotationMapping[] {
    return mappings().flatMap(({ mapping }) => (mapping instanceof InvalidInputError ? [] : [mapping]));
  }

  function watches(): Watch[] {
    const list: Watch[] = [];
    for (const usage of usages()) {
      if (usage.source.kind !== clusterSecretSyncKind) for (const use of usage.uses) list.push(use.watch);
    }
    // Once per ClusterSecretSync, not once per namespace: each namespace reads the same secrets.
    for (const object of informers.clusterSyncs?.list() ?? []) {
      for (const use of clusterEntry(object).uses) list.push(use.watch);
    }
    for (const mapping of validMappings()) {
      const watch = watchFor(mapping.secretId);
      if (watch) list.push(watch);
    }
    for (const workload of workloads()) {
      for (const id of workload.rolloutOn) {
        const watch = watchFor(id);
        if (watch) list.push(watch);
      }
    }
    return list;
  }

  function ownerOf(namespace: string, secretName: string): SourceUsage | undefined {
    const secret = informers.managedSecrets.get(namespace, secretName);
    const marker = secret?.metadata?.annotations?.[syncAnnotations.owner];
    if (!marker) return undefined;
    const [kind, name] = marker.split('/');
    if (!name) return undefined;
    if (kind === secretSyncKind) {
      const object = informers.syncs.get(namespace, name);
      return object ? usageOf(secretSyncKind, object) : undefined;
    }
    if (kind === spcKind) {
      const object = informers.spcs?.get(namespace, name);
      return object && spcOptedIn(object) ? usageOf(spcKind, object) : undefined;
    }
    if (kind === clusterSecretSyncKind) {
      // Only a namespace its status lists: a Secret left behind (Retain, labelled out) is no longer synced.
      const object = informers.clusterSyncs?.get('', name);
      return object ? clusterEntry(object).byNamespace.get(namespace) : undefined;
    }
    return undefined;
  }

  function candidatesOf(workload: Workload): Candidate[] {
    const candidates: Candidate[] = [];
    const asWorkload = (watch: Watch) => workloadSubject(workload, watch);
    for (const mapping of validMappings()) {
      if (!mappingMatches(mapping, workload)) continue;
      const watch = watchFor(mapping.secretId);
      if (!watch) continue;
      candidates.push({
        watch,
        via: `${mappingKind} ${mapping.namespace}/${mapping.name}`,
        subject: asWorkload(watch),
        mapping,
      });
    }
    for (const id of workload.rolloutOn) {
      const watch = watchFor(id);
      if (watch) candidates.push({ watch, via: 'annotation smk.dev/rollout-on', subject: asWorkload(watch) });
    }
    if (workload.rolloutOnSync) {
      for (const secretName of workload.consumedSecrets) {
        const owner = ownerOf(workload.namespace, secretName);
        if (!owner) continue;
        for (const use of owner.uses) {
          candidates.push({
            watch: use.watch,
            via: `Secret ${secretName}`,
            subject: usageSubject(owner, use.watch),
          });
        }
      }
    }
    return candidates;
  }

  function dependenciesOf(workload: Workload): { dependencies: Dependency[]; mappings: RotationMapping[] } {
    const byKey = new Map<string, { name: string; versionId: string | undefined; via: Set<string> }>();
    const matched: RotationMapping[] = [];
    for (const candidate of candidatesOf(workload)) {
      if (permissions.known(candidate.subject) !== true) continue;
      if (candidate.mapping) matched.push(candidate.mapping);
      const { watch } = candidate;
      if (watch.stage === undefined) continue;
      const seen = options.observed(watch);
      if (!seen) continue;
      const key = recordKey(seen.arn, watch.stage);
      const entry = byKey.get(key) ?? {
        name: seen.name,
        versionId: seen.deleted ? undefined : seen.stages.get(watch.stage),
        via: new Set<string>(),
      };
      entry.via.add(candidate.via);
      byKey.set(key, entry);
    }
    // A named Secret or ConfigMap: always the workload's own namespace, so no identity to ask.
    for (const reference of workload.references) {
      const version = options.references?.dataVersion(reference.kind, workload.namespace, reference.name);
      if (version === undefined) continue;
      const key = `${reference.kind}/${reference.name}`;
      const entry = byKey.get(key) ?? {
        name: `${reference.kind} ${reference.name}`,
        versionId: version,
        via: new Set(),
      };
      entry.via.add(`annotation ${reference.annotation}`);
      byKey.set(key, entry);
    }
    const dependencies = [...byKey].map(([key, entry]) => ({
      key,
      name: entry.name,
      versionId: entry.versionId,
      via: [...entry.via].sort(),
    }));
    return { dependencies, mappings: matched };
  }

  return {
    usageOf,
    clusterUsagesOf: (object) => clusterEntry(object).byNamespace,
    usages,
    mappings,
    workloads,
    watchFor,
    watches,
    ownerOf,
    candidatesOf,
    dependenciesOf,
    async settlePermissions(workload) {
      await Promise.all(candidatesOf(workload).map(({ subject }) => permissions.check(subject)));
    },
    managedSecret: (namespace, name) => informers.managedSecrets.get(namespace, name),
    syncObject: (namespace, name) => informers.syncs.get(namespace, name),
    clusterSyncObject: (name) => informers.clusterSyncs?.get('', name),
    mappingObject: (namespace, name) => informers.mappings?.get(namespace, name),
  };
}
