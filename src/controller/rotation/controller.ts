/**
 * The rotation controller: knows what uses which secret (SecretSyncs, opted-in
 * SecretProviderClasses, SecretsRotationMappings, annotated workloads), runs the change detector
 * and the SQS consumer in the leader, and acts on each change:
 *   1. re-syncs every SecretSync / SecretProviderClass that reads the secret (`resync`);
 *   2. rolls the workloads that follow it, each at most once per debounce window, and only once
 *      the synced Secrets it consumes carry the new version.
 * Events on workloads and mappings, status on mappings, metrics for changes and rollouts.
 * Secrets are watched with the controller's role, but a namespace is shown (or rolled for) a
 * secret only once one of its own identities may describe it (permissions.ts).
 */
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { QueueReader } from '../../aws/index.ts';
import { secretIdMatches } from '../../aws/index.ts';
import { describeError, InvalidInputError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { counter, histogram } from '../../core/metrics.ts';
import { currentStage } from '../../core/source.ts';
import { createObjects, type Objects } from '../../kube/apply.ts';
import { apiErrorOf, type KubeConfig, retryAfterMsOf } from '../../kube/client.ts';
import { createEventRecorder, type EventRecorder, type InvolvedObject } from '../../kube/events.ts';
import { apiSource, createInformer, type Informer, resourcePath } from '../../kube/informer.ts';
import { apiLeaseStore, createLeaderElection, type LeaderElection } from '../../kube/lease.ts';
import { createWorkQueue, type WorkQueue } from '../../kube/queue.ts';
import { customResourceServed } from '../../kube/served.ts';
import type { IdentityResolver } from '../identity.ts';
import {
  managedByLabel,
  managedByValue,
  secretSyncKind,
  secretSyncPlural,
  spcGroup,
  spcKind,
  spcOptedIn,
  spcPlural,
  spcVersion,
  annotations as syncAnnotations,
  group as syncGroup,
  version as syncVersion,
} from '../jobs.ts';
import { conditionGauge } from '../status-metrics.ts';
import { type Consumer, createConsumer } from './consumer.ts';
import {
  type ChangeSink,
  createDetector,
  type Detector,
  type SecretChange,
  type SecretObservation,
  type VersionReader,
  type Watch,
} from './detector.ts';
import {
  mappingGroup,
  mappingKind,
  mappingMatches,
  mappingPlural,
  mappingVersion,
  parseMapping,
  type RotationMapping,
} from './mapping.ts';
import { createPermissions, type PermissionSubject } from './permissions.ts';
import { regionOf } from './stages.ts';
import { type SourceRef, type SourceUsage, sourceUsage } from './usage.ts';
import {
  type Dependency,
  parseWorkload,
  planRollout,
  recordKey,
  type Workload,
  type WorkloadKind,
  workloadKinds,
  workloadPlurals,
} from './workloads.ts';

export interface RotationLeaderElection {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
}

export interface RotationControllerOptions {
  readonly kubeConfig: KubeConfig;
  /** DescribeSecret / ListSecrets as the controller's own identity. */
  readonly reader: VersionReader;
  /**
   * A namespace's identities (as the sync controller resolves them): what a namespace is shown
   * of a secret, and whether its workloads roll for it, waits for their own DescribeSecret.
   */
  readonly identities: IdentityResolver;
  /** How long such an answer is trusted (default 5 minutes). */
  readonly permissionTtlMs?: number;
  /** The rotation queue; without one, polling alone detects changes. */
  readonly queue?: Pick<QueueReader, 'receive' | 'delete' | 'queueUrl'>;
  readonly logger: Logger;
  readonly defaultRegion: string | undefined;
  /** Sinks run before re-sync and rollouts (e.g. the AWS cache's `stagesMoved`). */
  readonly sinks?: readonly ChangeSink[];
  /**
   * Makes a sync source sync now. Default: bump its `smk.dev/force-sync` annotation, which the
   * sync controller treats as "sync now" (works in the same process and across processes).
   */
  readonly resync?: (source: SourceRef, request: ResyncRequest) => Promise<void>;
  /** Only these namespaces (default: all). */
  readonly namespaces?: readonly string[];
  readonly pollIntervalMs?: number;
  readonly pollJitter?: number;
  /** Changes within this window after the first make one rollout per workload (default 500 ms). */
  readonly debounceMs?: number;
  /** How long a rollout waits for its synced Secrets before warning (default 2 min); it never rolls onto the old value. */
  readonly syncWaitMs?: number;
  /**
   * A rollout still waiting this long after asking a source to re-sync asks again (default 30 s).
   * The sync may run in another replica, whose cache this one's change cannot invalidate: its
   * stage cache (15 s) may answer the old version once, and that sync then succeeds with it.
   */
  readonly resyncRetryMs?: number;
  readonly queueWaitSeconds?: number;
  /** Watch SecretProviderClasses / mappings: true, false, or 'auto' (when the CRD is served; default). */
  readonly secretProviderClasses?: boolean | 'auto';
  /** Specs with full JMESPath expressions are read, as the sync controller does (same flag). */
  readonly allowJmesPathExpressions?: boolean;
  readonly mappings?: boolean | 'auto';
  readonly leaderElection?: RotationLeaderElection;
  readonly onLostLeadership?: () => void;
  readonly relistIntervalMs?: number;
  readonly events?: EventRecorder;
  readonly objects?: Objects;
  readonly now?: () => number;
}

/** Why a source is asked to sync now: the version it must pick up. */
export interface ResyncRequest {
  readonly versionId: string;
  readonly at: number;
}

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

export const rollouts = counter(
  'smk_rotation_rollouts_total',
  'Workload rollouts for a secret change, by workload kind and outcome (restarted, adopted, waiting, failed).',
  ['kind', 'outcome'],
);
const rolloutLag = histogram(
  'smk_rotation_rollout_lag_seconds',
  'Time from detecting a change to starting the rollout it causes.',
  [],
  [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
);

interface Mapped {
  readonly object: KubernetesObject;
  readonly mapping: RotationMapping | InvalidInputError;
}

interface MappingStatus {
  observedGeneration: number;
  secretArn?: string;
  currentVersion?: string;
  lastChange?: {
    versionId?: string;
    previousVersionId?: string;
    detectedAt: string;
    source: string;
    reason: string;
  };
  workloadsRolled?: { kind: string; name: string; versionId: string; at: string }[];
  conditions: {
    type: string;
    status: 'True' | 'False';
    reason: string;
    message: string;
    lastTransitionTime: string;
  }[];
}

const maxRolledKept = 20;
/** The mapping's Ready reason while no workload it matches may describe its secret. */
const notPermitted = 'NotPermitted';

/** One secret a workload would follow, why, and the identity that must be able to describe it. */
interface Candidate {
  readonly watch: Watch;
  readonly via: string;
  readonly subject: PermissionSubject;
  readonly mapping?: RotationMapping;
}

/** A mapping's or `smk.dev/rollout-on`'s secret is asked about as the workload's own ServiceAccount. */
function workloadSubject(workload: Workload, watch: Watch): PermissionSubject {
  return {
    namespace: workload.namespace,
    serviceAccountName: workload.serviceAccountName,
    region: watch.region,
    id: watch.id,
  };
}

/** A synced Secret's secrets are asked about as the source that reads them. */
function usageSubject(usage: SourceUsage, watch: Watch): PermissionSubject {
  return {
    namespace: usage.source.namespace,
    serviceAccountName: usage.serviceAccountName,
    region: watch.region,
    id: watch.id,
  };
}

function parseIds(object: KubernetesObject): string[] {
  return (object.metadata?.annotations?.['smk.dev/rollout-on'] ?? '')
    .split(/[\s,]+/)
    .filter((id) => id !== '');
}

function workloadKey(kind: WorkloadKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export function createRotationController(options: RotationControllerOptions): RotationController {
  const { kubeConfig, logger } = options;
  const now = options.now ?? Date.now;
  const debounceMs = options.debounceMs ?? 500;
  const syncWaitMs = options.syncWaitMs ?? 120_000;
  const resyncRetryMs = options.resyncRetryMs ?? 30_000;
  const objects = options.objects ?? createObjects(kubeConfig);
  const events = options.events ?? createEventRecorder(kubeConfig, { component: 'smk-rotation', logger });
  const queue: WorkQueue = createWorkQueue({ backoff: { baseMs: 200, maxMs: 5_000, jitter: 0.2 } });
  const namespaces = options.namespaces && options.namespaces.length > 0 ? options.namespaces : [undefined];
  const mappingReady = conditionGauge(mappingKind);

  function informersFor<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    plural: string,
    labelSelector?: string,
  ): Informer<T>[] {
    return namespaces.map((namespace) =>
      createInformer<T>(
        apiSource<T>(kubeConfig, {
          apiVersion,
          kind,
          path: resourcePath(apiVersion, plural, namespace),
          ...(namespace ? { namespace } : {}),
          ...(labelSelector ? { labelSelector } : {}),
        }),
        {
          name: `rotation/${plural}${namespace ? `/${namespace}` : ''}`,
          logger,
          ...(options.relistIntervalMs ? { relistIntervalMs: options.relistIntervalMs } : {}),
        },
      ),
    );
  }

  const syncInformers = informersFor<KubernetesObject>(
    `${syncGroup}/${syncVersion}`,
    secretSyncKind,
    secretSyncPlural,
  );
  const secretInformers = informersFor<V1Secret>(
    'v1',
    'Secret',
    'secrets',
    `${managedByLabel}=${managedByValue}`,
  );
  const workloadInformers = new Map<WorkloadKind, Informer<KubernetesObject>[]>(
    workloadKinds.map((kind) => [
      kind,
      informersFor<KubernetesObject>('apps/v1', kind, workloadPlurals[kind]),
    ]),
  );
  let spcInformers: Informer<KubernetesObject>[] = [];
  let mappingInformers: Informer<KubernetesObject>[] = [];

  const all = <T>(informers: readonly Informer<T>[]): T[] => informers.flatMap((informer) => informer.list());
  const lookup = <T>(informers: readonly Informer<T>[], namespace: string, name: string): T | undefined => {
    for (const informer of informers) {
      const found = informer.get(namespace, name);
      if (found) return found;
    }
    return undefined;
  };

  // ---- what a namespace may know ------------------------------------------------------------

  const permissions = createPermissions({
    identities: options.identities,
    logger,
    ...(options.permissionTtlMs !== undefined ? { ttlMs: options.permissionTtlMs } : {}),
    now,
    // An answer arrived or changed: plan the namespace's workloads and mappings again.
    onChange: (subject) => {
      if (!leading) return;
      for (const workload of workloads()) {
        if (workload.namespace === subject.namespace) {
          queue.add(workloadKey(workload.kind, workload.namespace, workload.name));
        }
      }
      for (const { mapping } of mappings()) {
        if (mapping instanceof InvalidInputError || mapping.namespace !== subject.namespace) continue;
        if (watchFor(mapping.secretId)?.id === subject.id) void writeMappingStatus(mapping, {});
      }
    },
  });

  // ---- what uses which secret (memoised per object version) ---------------------------------

  const usageMemo = new Map<string, { version: string; usage: SourceUsage | undefined }>();
  function usageOf(
    kind: typeof secretSyncKind | typeof spcKind,
    object: KubernetesObject,
  ): SourceUsage | undefined {
    const key = `${kind}/${object.metadata?.namespace}/${object.metadata?.name}`;
    const version = object.metadata?.resourceVersion ?? '';
    const memo = usageMemo.get(key);
    if (memo && memo.version === version) return memo.usage;
    const usage = sourceUsage(kind, object, options.defaultRegion, {
      allowExpressions: options.allowJmesPathExpressions,
    });
    usageMemo.set(key, { version, usage });
    return usage;
  }
  function usages(): SourceUsage[] {
    const found: SourceUsage[] = [];
    for (const object of all(syncInformers)) {
      const usage = usageOf(secretSyncKind, object);
      if (usage) found.push(usage);
    }
    for (const object of all(spcInformers)) {
      if (!spcOptedIn(object)) continue;
      const usage = usageOf(spcKind, object);
      if (usage) found.push(usage);
    }
    return found;
  }
  /** Parsing is memoised per object version: polls, hints and rollouts ask for these often. */
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
  function mappings(): Mapped[] {
    return all(mappingInformers).map((object) =>
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
    for (const [kind, informers] of workloadInformers) {
      for (const object of all(informers)) {
        const workload = memo(
          `${kind}/${object.metadata?.namespace}/${object.metadata?.name}`,
          object,
          () => {
            try {
              return parseWorkload(kind, object);
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
    const region = regionOf(id, options.defaultRegion);
    return region ? { region, id, stage: currentStage } : undefined;
  }

  function watches(): Watch[] {
    const list: Watch[] = [];
    for (const usage of usages()) for (const use of usage.uses) list.push(use.watch);
    for (const { mapping } of mappings()) {
      if (mapping instanceof InvalidInputError) continue;
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

  /** The sync source that wrote a managed Secret, from its owner marker. */
  function ownerOf(namespace: string, secretName: string): SourceUsage | undefined {
    const secret = lookup(secretInformers, namespace, secretName);
    const marker = secret?.metadata?.annotations?.[syncAnnotations.owner];
    if (!marker) return undefined;
    const [kind, name] = marker.split('/');
    if (!name) return undefined;
    if (kind === secretSyncKind) {
      const object = lookup(syncInformers, namespace, name);
      return object ? usageOf(secretSyncKind, object) : undefined;
    }
    if (kind === spcKind) {
      const object = lookup(spcInformers, namespace, name);
      return object && spcOptedIn(object) ? usageOf(spcKind, object) : undefined;
    }
    return undefined;
  }

  /**
   * Everything a workload would follow, each with the identity that must be able to describe the
   * secret for the workload to follow it: a mapping's or `rollout-on`'s secret as the workload's
   * own ServiceAccount, a synced Secret's secrets as the source that reads them.
   */
  function candidatesOf(workload: Workload): Candidate[] {
    const candidates: Candidate[] = [];
    const asWorkload = (watch: Watch) => workloadSubject(workload, watch);
    for (const { mapping } of mappings()) {
      if (mapping instanceof InvalidInputError || !mappingMatches(mapping, workload)) continue;
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

  /** What a workload follows and may follow (permission known and granted), with where each secret's stage points now. */
  function dependenciesOf(workload: Workload): { dependencies: Dependency[]; mappings: RotationMapping[] } {
    const byKey = new Map<string, { name: string; versionId: string | undefined; via: Set<string> }>();
    const add = (watch: Watch | undefined, via: string): void => {
      if (!watch || watch.stage === undefined) return;
      const seen = detector.observed(watch);
      if (!seen) return;
      const key = recordKey(seen.arn, watch.stage);
      const entry = byKey.get(key) ?? {
        name: seen.name,
        versionId: seen.deleted ? undefined : seen.stages.get(watch.stage),
        via: new Set<string>(),
      };
      entry.via.add(via);
      byKey.set(key, entry);
    };
    const matched: RotationMapping[] = [];
    for (const candidate of candidatesOf(workload)) {
      if (permissions.known(candidate.subject) !== true) continue;
      if (candidate.mapping) matched.push(candidate.mapping);
      add(candidate.watch, candidate.via);
    }
    const dependencies = [...byKey].map(([key, entry]) => ({
      key,
      name: entry.name,
      versionId: entry.versionId,
      via: [...entry.via].sort(),
    }));
    return { dependencies, mappings: matched };
  }

  /** Waits for the answers dependenciesOf needs (a workload planned for the first time asks AWS once). */
  async function settlePermissions(workload: Workload): Promise<void> {
    await Promise.all(candidatesOf(workload).map(({ subject }) => permissions.check(subject)));
  }

  // ---- waiting for the synced Secrets --------------------------------------------------------

  /** (source key, version) → when we asked it to re-sync, so each change asks once per resyncRetryMs. */
  const resyncAsked = new Map<string, number>();
  /** Workload key → when it first had to wait for a sync. */
  const waitingSince = new Map<string, number>();

  /**
   * The synced Secrets the workload consumes that do not carry `dependency`'s new version yet.
   * A SecretSync says which version each file holds in `status.syncedVersions`; a drop-in
   * SecretProviderClass has no status, so its Secret must carry the `smk.dev/versions` annotation.
   */
  function unsyncedSources(workload: Workload, dependency: Dependency): SourceUsage[] {
    const pending: SourceUsage[] = [];
    const versionId = dependency.versionId;
    const arn = dependency.key.split('@')[0] ?? '';
    for (const secretName of workload.consumedSecrets) {
      const owner = ownerOf(workload.namespace, secretName);
      if (!owner) continue;
      const uses = owner.uses.filter((use) => secretIdMatches(use.watch.id, arn, dependency.name));
      if (uses.length === 0) continue;
      const files = new Set(uses.flatMap((use) => use.files));
      const versions = syncedVersions(owner, secretName);
      const carried =
        versions.size > 0
          ? [...files].every((file) => versions.get(file) === versionId)
          : rewrittenSince(workload.namespace, secretName, versionId ?? '');
      if (!carried) pending.push(owner);
    }
    return pending;
  }

  /**
   * Where no version is recorded (a drop-in SecretProviderClass Secret without `smk.dev/versions`):
   * the Secret counts as synced once smk rewrote it after the change was seen. A new version with
   * the very same bytes never rewrites it, so such a rollout waits and then warns; it never rolls early.
   */
  const baselines = new Map<string, string>();
  function rememberBaseline(namespace: string, secretName: string, versionId: string): void {
    const key = `${namespace}/${secretName}@${versionId}`;
    if (baselines.has(key)) return;
    baselines.set(key, lookup(secretInformers, namespace, secretName)?.metadata?.resourceVersion ?? '');
    if (baselines.size > 10_000) baselines.delete(baselines.keys().next().value ?? '');
  }
  function rewrittenSince(namespace: string, secretName: string, versionId: string): boolean {
    const key = `${namespace}/${secretName}@${versionId}`;
    const baseline = baselines.get(key);
    if (baseline === undefined) {
      rememberBaseline(namespace, secretName, versionId);
      return false;
    }
    const current = lookup(secretInformers, namespace, secretName)?.metadata?.resourceVersion ?? '';
    return current !== '' && current !== baseline;
  }

  function syncedVersions(owner: SourceUsage, secretName: string): Map<string, string> {
    const { source } = owner;
    if (source.kind !== secretSyncKind) {
      // A SecretProviderClass has no status of ours: its Secret records the versions (sync.ts).
      const secret = lookup(secretInformers, source.namespace, secretName);
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
    const object = lookup(syncInformers, source.namespace, source.name) as
      | { status?: { syncedVersions?: { objectName?: string; versionId?: string }[] } }
      | undefined;
    const entries = object?.status?.syncedVersions ?? [];
    return new Map(entries.map((entry) => [entry.objectName ?? '', entry.versionId ?? '']));
  }

  async function defaultResync(source: SourceRef, request: ResyncRequest): Promise<void> {
    const apiVersion =
      source.kind === secretSyncKind ? `${syncGroup}/${syncVersion}` : `${spcGroup}/${spcVersion}`;
    const stamp = `${new Date(request.at).toISOString()} ${request.versionId}`;
    await objects.mergePatch(
      { apiVersion, kind: source.kind, namespace: source.namespace, name: source.name },
      { metadata: { annotations: { 'smk.dev/force-sync': stamp } } },
    );
  }
  const resync = options.resync ?? defaultResync;

  async function askResync(source: SourceRef, versionId: string): Promise<void> {
    const key = `${source.kind}/${source.namespace}/${source.name}@${versionId}`;
    const asked = resyncAsked.get(key);
    if (asked !== undefined && now() - asked < resyncRetryMs) return;
    resyncAsked.delete(key);
    resyncAsked.set(key, now());
    if (resyncAsked.size > 10_000) {
      for (const [old, at] of resyncAsked) if (now() - at > 3_600_000) resyncAsked.delete(old);
    }
    try {
      await resync(source, { versionId, at: now() });
    } catch (error) {
      resyncAsked.delete(key);
      logger.warn(
        { source: `${source.kind} ${source.namespace}/${source.name}`, err: describeError(error) },
        're-sync request failed',
      );
    }
  }

  /**
   * A rollout-on-sync workload's dependencies come from caches: the synced Secrets it reads, the
   * sources that wrote them, and the detector's observations. When a Secret or a source moves,
   * the workloads it concerns are looked at again: one waiting for its synced Secrets (the sync
   * may have landed), and one with secrets it has not recorded yet, which is adopted now. Without
   * the latter, a workload reconciled before its Secret existed stayed unadopted, and the next
   * change was then adopted rather than rolled. Rollouts themselves stay driven by the change
   * (rolloutSink, with its debounce).
   */
  function wakeDependents(namespace: string | undefined, secretNames: readonly string[]): void {
    if (!leading || !namespace) return;
    for (const key of waitingSince.keys()) if (key.split('/')[1] === namespace) queue.add(key);
    for (const workload of workloads()) {
      if (workload.namespace !== namespace || !workload.rolloutOnSync) continue;
      if (!workload.consumedSecrets.some((name) => secretNames.includes(name))) continue;
      const { dependencies } = dependenciesOf(workload);
      if (planRollout(workload, dependencies, new Date(now())).action === 'adopt') {
        queue.add(workloadKey(workload.kind, workload.namespace, workload.name));
      }
    }
  }

  // ---- change handling -----------------------------------------------------------------------

  /** The last change per secret ARN (for rollout lag, re-sync requests and mapping status). */
  const lastChange = new Map<string, SecretChange>();

  const resyncSink: ChangeSink = {
    async secretChanged(change) {
      if (!change.previous) return;
      lastChange.set(change.secret.arn, change);
      const version = [...change.secret.stages.values()].join(',') || 'deleted';
      for (const usage of usages()) {
        const uses = usage.uses.filter(
          (use) =>
            use.watch.region === change.secret.region &&
            secretIdMatches(use.watch.id, change.secret.arn, change.secret.name),
        );
        if (uses.length === 0) continue;
        // The force-sync stamp names the version: only for a source whose identity may describe it.
        const allowed = await Promise.all(
          uses.map((use) => permissions.check(usageSubject(usage, use.watch))),
        );
        if (!allowed.some(Boolean)) continue;
        if (usage.source.kind !== secretSyncKind) {
          for (const target of usage.targets) rememberBaseline(usage.source.namespace, target, version);
        }
        await askResync(usage.source, version);
      }
    },
  };

  const rolloutSink: ChangeSink = {
    async secretChanged(change) {
      const { arn, name } = change.secret;
      const follows = (id: string) => secretIdMatches(id, arn, name);
      const delay = change.previous ? debounceMs : 0;
      for (const workload of workloads()) {
        const { dependencies } = dependenciesOf(workload);
        if (dependencies.some((dependency) => dependency.key.split('@')[0] === arn)) {
          queue.addAfter(workloadKey(workload.kind, workload.namespace, workload.name), delay);
        }
      }
      for (const { mapping } of mappings()) {
        if (mapping instanceof InvalidInputError || !follows(mapping.secretId)) continue;
        if (regionOf(mapping.secretId, options.defaultRegion) !== change.secret.region) continue;
        await writeMappingStatus(mapping, change.previous ? { change } : {});
      }
    },
  };

  /**
   * The versions the sources using a secret last synced, per followed stage (SecretSync status or
   * the Secret's `smk.dev/versions`). Where sources disagree, one that differs from AWS wins, so
   * a secret changed while no leader ran is re-synced now, not at the next refresh.
   */
  function syncedStages(observation: SecretObservation): Map<string, string> {
    const stages = new Map<string, string>();
    for (const usage of usages()) {
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
  }

  const detector = createDetector({
    reader: options.reader,
    watches,
    synced: syncedStages,
    sinks: [...(options.sinks ?? []), resyncSink, rolloutSink],
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

  // ---- mapping status ------------------------------------------------------------------------

  const statusWrites = new Map<string, Promise<void>>();
  /** Status writes of one mapping run one after another, each from the latest cached status. */
  function writeMappingStatus(
    mapping: RotationMapping,
    update: { change?: SecretChange; rolled?: { kind: string; name: string; versionId: string } },
  ): Promise<void> {
    const key = `${mapping.namespace}/${mapping.name}`;
    const previous = statusWrites.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => applyMappingStatus(mapping, update))
      .catch((error: unknown) => {
        logger.warn({ mapping: key, err: describeError(error) }, 'mapping status not written');
      });
    statusWrites.set(key, next);
    return next;
  }

  async function applyMappingStatus(
    mapping: RotationMapping,
    update: { change?: SecretChange; rolled?: { kind: string; name: string; versionId: string } },
  ): Promise<void> {
    const current = lookup(mappingInformers, mapping.namespace, mapping.name) as
      | (KubernetesObject & { status?: Partial<MappingStatus> })
      | undefined;
    const before = current?.status ?? {};
    const at = new Date(now()).toISOString();
    const watch = watchFor(mapping.secretId);
    if (watch && !(await mappingPermitted(mapping, watch))) {
      // Not even whether the secret exists: the status is written whole, so what an earlier
      // status showed (ARN, versions, rollouts) goes too.
      const status = {
        observedGeneration: mapping.generation,
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: notPermitted,
            message: `no workload this mapping selects runs as a ServiceAccount whose role may secretsmanager:DescribeSecret ${mapping.secretId}; nothing is shown or rolled for it`,
            lastTransitionTime: at,
          },
        ],
      };
      const beforeReady = before.conditions?.find((condition) => condition.type === 'Ready');
      if (beforeReady?.reason === notPermitted && before.observedGeneration === mapping.generation) return;
      await objects.applyStatus(mappingRef(mapping), status);
      return;
    }
    const seen = watch ? detector.observed(watch) : undefined;
    const status: MappingStatus = {
      observedGeneration: mapping.generation,
      ...(seen ? { secretArn: seen.arn } : before.secretArn ? { secretArn: before.secretArn } : {}),
      ...(seen?.stages.get(currentStage) ? { currentVersion: seen.stages.get(currentStage) as string } : {}),
      ...(before.lastChange ? { lastChange: before.lastChange } : {}),
      workloadsRolled: [...(before.workloadsRolled ?? [])],
      conditions: [
        {
          type: 'Ready',
          status: seen && !seen.deleted ? 'True' : 'False',
          reason: !seen ? 'SecretNotSeen' : seen.deleted ? 'SecretDeleted' : 'Watching',
          message: !seen
            ? `secret ${mapping.secretId} not seen yet (ListSecrets/DescribeSecret)`
            : seen.deleted
              ? `secret ${seen.name} is deleted or scheduled for deletion`
              : `following ${seen.name} at ${currentStage}`,
          lastTransitionTime: at,
        },
      ],
    };
    const beforeReady = before.conditions?.find((condition) => condition.type === 'Ready');
    const ready = status.conditions[0];
    if (ready && beforeReady?.status === ready.status && beforeReady.lastTransitionTime) {
      ready.lastTransitionTime = beforeReady.lastTransitionTime;
    }
    if (update.change) {
      const change = update.change;
      const versionId = change.secret.stages.get(currentStage);
      const previousVersionId = change.previous?.stages.get(currentStage);
      status.lastChange = {
        ...(versionId ? { versionId } : {}),
        ...(previousVersionId ? { previousVersionId } : {}),
        detectedAt: new Date(change.detectedAt).toISOString(),
        source: change.source,
        reason: change.reason,
      };
    }
    if (update.rolled) {
      status.workloadsRolled = [...(status.workloadsRolled ?? []), { ...update.rolled, at }].slice(
        -maxRolledKept,
      );
    }
    await objects.applyStatus(mappingRef(mapping), status as unknown as Record<string, unknown>);
  }

  function mappingRef(mapping: RotationMapping) {
    return {
      group: mappingGroup,
      version: mappingVersion,
      plural: mappingPlural,
      kind: mappingKind,
      namespace: mapping.namespace,
      name: mapping.name,
    };
  }

  /** True when a workload the mapping selects runs as a ServiceAccount that may describe its secret. */
  async function mappingPermitted(mapping: RotationMapping, watch: Watch): Promise<boolean> {
    const selected = workloads().filter((workload) => mappingMatches(mapping, workload));
    const answers = await Promise.all(
      selected.map((workload) => permissions.check(workloadSubject(workload, watch))),
    );
    return answers.some(Boolean);
  }

  async function onMapping(object: KubernetesObject): Promise<void> {
    let mapping: RotationMapping;
    try {
      mapping = parseMapping(object);
    } catch (error) {
      const involved: InvolvedObject = {
        apiVersion: `${mappingGroup}/${mappingVersion}`,
        kind: mappingKind,
        namespace: object.metadata?.namespace ?? '',
        name: object.metadata?.name ?? '',
        ...(object.metadata?.uid ? { uid: object.metadata.uid } : {}),
      };
      if (!leading) return;
      void events.record(involved, 'Warning', 'InvalidSpec', describeError(error));
      await objects
        .applyStatus(
          {
            group: mappingGroup,
            version: mappingVersion,
            plural: mappingPlural,
            kind: mappingKind,
            namespace: involved.namespace,
            name: involved.name,
          },
          {
            observedGeneration: object.metadata?.generation ?? 0,
            conditions: [
              {
                type: 'Ready',
                status: 'False',
                reason: 'InvalidSpec',
                message: describeError(error),
                lastTransitionTime: new Date(now()).toISOString(),
              },
            ],
          },
        )
        .catch((failure: unknown) => {
          logger.warn({ mapping: involved.name, err: describeError(failure) }, 'mapping status not written');
        });
      return;
    }
    for (const workload of workloads()) {
      if (mappingMatches(mapping, workload)) {
        queue.add(workloadKey(workload.kind, workload.namespace, workload.name));
      }
    }
    if (leading) await writeMappingStatus(mapping, {});
  }

  // ---- the rollout ---------------------------------------------------------------------------

  async function reconcileWorkload(key: string): Promise<void> {
    const [kind, namespace, name] = key.split('/') as [WorkloadKind, string, string];
    const fresh = await objects.read<KubernetesObject>({ apiVersion: 'apps/v1', kind, namespace, name });
    if (!fresh) {
      waitingSince.delete(key);
      return;
    }
    let workload: Workload;
    try {
      workload = parseWorkload(kind, fresh);
    } catch (error) {
      const involved = { apiVersion: 'apps/v1', kind, namespace, name };
      void events.record(involved, 'Warning', 'InvalidRolloutAnnotation', describeError(error));
      return;
    }
    await settlePermissions(workload);
    const { dependencies, mappings: matched } = dependenciesOf(workload);
    // A mapping that showed nothing yet (no permitted workload seen) shows its secret now.
    for (const mapping of matched) {
      const status = (lookup(mappingInformers, mapping.namespace, mapping.name) as { status?: MappingStatus })
        ?.status;
      const reason = status?.conditions?.find((condition) => condition.type === 'Ready')?.reason;
      if (leading && (reason === undefined || reason === notPermitted)) void writeMappingStatus(mapping, {});
    }
    const at = new Date(now());
    const plan = planRollout(workload, dependencies, at);
    if (plan.action === 'none') {
      waitingSince.delete(key);
      return;
    }
    const involved: InvolvedObject = {
      apiVersion: 'apps/v1',
      kind,
      namespace,
      name,
      ...(workload.uid ? { uid: workload.uid } : {}),
    };
    const ref = { apiVersion: 'apps/v1', kind, namespace, name };
    if (plan.action === 'adopt') {
      await objects.mergePatch(ref, plan.patch);
      rollouts.inc({ kind, outcome: 'adopted' });
      logger.info({ workload: key }, 'workload adopted: versions recorded without a restart');
      return;
    }
    // Never start pods on the old value: every synced Secret it consumes must hold the new version.
    const pending = plan.changed.flatMap((dependency) =>
      unsyncedSources(workload, dependency).map((owner) => ({ owner, dependency })),
    );
    if (pending.length > 0) {
      const since = waitingSince.get(key) ?? now();
      waitingSince.set(key, since);
      for (const { owner, dependency } of pending) {
        await askResync(owner.source, dependency.versionId ?? '');
      }
      const waited = now() - since;
      const names = [...new Set(pending.map(({ owner }) => `${owner.source.kind} ${owner.source.name}`))];
      if (waited >= syncWaitMs) {
        rollouts.inc({ kind, outcome: 'waiting' });
        void events.record(
          involved,
          'Warning',
          'WaitingForSync',
          `Rollout held: ${names.join(', ')} has not synced the new version yet (waited ${Math.round(waited / 1000)}s)`,
        );
        queue.addAfter(key, 30_000);
      } else {
        queue.addAfter(key, Math.min(2_000, 100 + waited / 4));
      }
      return;
    }
    waitingSince.delete(key);
    await objects.mergePatch(ref, plan.patch);
    rollouts.inc({ kind, outcome: 'restarted' });
    for (const dependency of plan.changed) {
      const change = lastChange.get(dependency.key.split('@')[0] ?? '');
      if (change) rolloutLag.observe(Math.max(0, now() - change.detectedAt) / 1000);
    }
    const what = plan.changed
      .map(
        (dependency) =>
          `${dependency.name} (version ${dependency.versionId}, via ${dependency.via.join(', ')})`,
      )
      .join('; ');
    logger.info({ workload: key, secrets: plan.changed.map((d) => d.name) }, 'rollout restarted');
    void events.record(involved, 'Normal', 'RolloutRestarted', `Restarted for a new secret version: ${what}`);
    for (const mapping of matched) {
      const dependency = plan.changed.find((d) =>
        d.via.includes(`${mappingKind} ${mapping.namespace}/${mapping.name}`),
      );
      if (!dependency?.versionId) continue;
      void events.record(
        {
          apiVersion: `${mappingGroup}/${mappingVersion}`,
          kind: mappingKind,
          namespace: mapping.namespace,
          name: mapping.name,
          ...(mapping.uid ? { uid: mapping.uid } : {}),
        },
        'Normal',
        'WorkloadRestarted',
        `Restarted ${kind} ${name} for ${dependency.name} version ${dependency.versionId}`,
      );
      await writeMappingStatus(mapping, { rolled: { kind, name, versionId: dependency.versionId } });
    }
  }

  /** Only workloads that opted in or that a mapping names are ever read or patched. */
  function followsAnything(kind: WorkloadKind, object: KubernetesObject): boolean {
    let workload: Workload;
    try {
      workload = parseWorkload(kind, object);
    } catch {
      return true; // reconcile reports the bad annotation
    }
    if (workload.rolloutOn.length > 0 || workload.rolloutOnSync || workload.record.size > 0) return true;
    return mappings().some(
      ({ mapping }) => !(mapping instanceof InvalidInputError) && mappingMatches(mapping, workload),
    );
  }

  // ---- workers, leadership -------------------------------------------------------------------

  let leader: LeaderElection | undefined;
  let leading = false;
  let running = false;
  let workers: Promise<void>[] = [];

  async function work(): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        if (leading) await reconcileWorkload(key);
        queue.forget(key);
      } catch (error) {
        const conflict = apiErrorOf(error)?.status === 409;
        // A conflict means the workload changed under us: plan again from a fresh read at once.
        let delay = 0;
        if (conflict) queue.add(key);
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
  /** Whether a CRD is served; undefined when stopped before the API server could tell. */
  function served(group: string, version: string, plural: string): Promise<boolean | undefined> {
    return customResourceServed(
      kubeConfig,
      { group, version, plural, namespace: namespaces[0] },
      { logger, signal: stopping.signal },
    );
  }

  const allInformers = (): Informer<KubernetesObject>[] => [
    ...syncInformers,
    ...(secretInformers as unknown as Informer<KubernetesObject>[]),
    ...[...workloadInformers.values()].flat(),
    ...spcInformers,
    ...mappingInformers,
  ];

  return {
    async start() {
      running = true;
      const spc =
        options.secretProviderClasses === 'auto' || options.secretProviderClasses === undefined
          ? await served(spcGroup, spcVersion, spcPlural)
          : options.secretProviderClasses;
      if (spc) spcInformers = informersFor(`${spcGroup}/${spcVersion}`, spcKind, spcPlural);
      const mapped =
        options.mappings === 'auto' || options.mappings === undefined
          ? await served(mappingGroup, mappingVersion, mappingPlural)
          : options.mappings;
      if (spc === undefined || mapped === undefined) return;
      if (mapped) {
        mappingInformers = informersFor(`${mappingGroup}/${mappingVersion}`, mappingKind, mappingPlural);
        for (const informer of mappingInformers) {
          informer.addHandlers(mappingReady.handlers);
          informer.addHandlers({
            add: (object) => {
              detector.refresh();
              void onMapping(object);
            },
            update: (object, previous) => {
              if (object.metadata?.generation !== previous.metadata?.generation) void onMapping(object);
            },
          });
        }
      }
      for (const [kind, informers] of workloadInformers) {
        for (const informer of informers) {
          const enqueue = (object: KubernetesObject) => {
            if (object.metadata?.namespace && object.metadata.name && followsAnything(kind, object)) {
              queue.add(workloadKey(kind, object.metadata.namespace, object.metadata.name));
            }
          };
          informer.addHandlers({
            add: (object) => {
              if (parseIds(object).length > 0) detector.refresh();
              enqueue(object);
            },
            update: (object, previous) => {
              const before = previous.metadata?.annotations ?? {};
              const after = object.metadata?.annotations ?? {};
              const opted = (a: Record<string, string>) =>
                `${a['smk.dev/rollout-on'] ?? ''}|${a['smk.dev/rollout-on-sync'] ?? ''}`;
              if (opted(before) !== opted(after)) detector.refresh();
              if (
                opted(before) !== opted(after) ||
                object.metadata?.generation !== previous.metadata?.generation
              ) {
                enqueue(object);
              }
            },
          });
        }
      }
      // A workload's plan reads these caches: when a synced Secret or its source moves, the
      // workloads reading that Secret are planned again (wakeDependents).
      for (const informer of secretInformers) {
        const moved = (secret: V1Secret) =>
          wakeDependents(secret.metadata?.namespace, [secret.metadata?.name ?? '']);
        informer.addHandlers({ add: moved, update: moved, delete: moved });
      }
      for (const [kind, informers] of [
        [secretSyncKind, syncInformers],
        [spcKind, spcInformers],
      ] as const) {
        for (const informer of informers) {
          const moved = (object: KubernetesObject) =>
            wakeDependents(object.metadata?.namespace, usageOf(kind, object)?.targets ?? []);
          informer.addHandlers({ add: moved, update: moved, delete: moved });
        }
      }
      // A new user of a secret needs a baseline before the secret's next change.
      const refresh = () => detector.refresh();
      for (const informer of [...syncInformers, ...spcInformers]) {
        informer.addHandlers({
          add: refresh,
          update: (object, previous) => {
            const smk = (o: KubernetesObject) =>
              JSON.stringify(o.metadata?.annotations?.['smk.dev/sync'] ?? '');
            if (
              object.metadata?.generation !== previous.metadata?.generation ||
              smk(object) !== smk(previous)
            ) {
              refresh();
            }
          },
        });
      }
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
        { namespaces: options.namespaces ?? 'all', mappings: mapped, secretProviderClasses: spc },
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
