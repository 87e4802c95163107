/**
 * The sync controller: watches SecretSyncs, opted-in SecretProviderClasses and the Secrets smk
 * manages; a work queue runs one sync per object at a time, refreshes each on its interval with
 * jitter, backs off per object on failure, and repairs a managed Secret someone changed or
 * deleted. Only the leader (Lease) writes; every replica keeps warm caches.
 */
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { parseDuration } from '../core/duration.ts';
import { describeError, InvalidInputError, NotFoundError } from '../core/errors.ts';
import type { ExpressionEvaluator } from '../core/expressions.ts';
import type { Logger } from '../core/log.ts';
import { gauge, histogram } from '../core/metrics.ts';
import { createObjects, type Objects } from '../kube/apply.ts';
import { type KubeConfig, retryAfterMsOf, withConnectionReuse } from '../kube/client.ts';
import { createEventRecorder, type EventRecorder, type InvolvedObject } from '../kube/events.ts';
import {
  apiSource,
  createInformer,
  customObjectLister,
  type Informer,
  type Lister,
  resourcePath,
  secretLister,
} from '../kube/informer.ts';
import { apiLeaseStore, createLeaderElection, type LeaderElection } from '../kube/lease.ts';
import { createWorkQueue, type RateLimit, type WorkQueue } from '../kube/queue.ts';
import { customResourceServed } from '../kube/served.ts';
import type { IdentityResolver } from './identity.ts';
import {
  annotations,
  type DeletionPolicy,
  finalizer,
  group,
  managedByLabel,
  managedByValue,
  needsFinalizer,
  ownerMarker,
  type SourceKind,
  type SyncJob,
  type SyncSource,
  secretSyncJob,
  secretSyncKind,
  secretSyncPlural,
  spcGroup,
  spcJob,
  spcKind,
  spcOptedIn,
  spcPlural,
  spcVersion,
  version,
} from './jobs.ts';
import { adoptCreatedFields, createManager, managerFor } from './plan.ts';
import { forgetStatus, recordSync } from './status-metrics.ts';
import { type SyncDeps, type SyncOutcome, syncJob } from './sync.ts';

export interface LeaderElectionSettings {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
}

export interface SyncControllerOptions {
  readonly kubeConfig: KubeConfig;
  readonly identities: IdentityResolver;
  /** Region for objects whose spec names none (AWS_REGION). */
  readonly defaultRegion: string | undefined;
  /** Full JMESPath expressions (--allow-jmespath-expressions); default plain field paths only. */
  readonly expressions?: ExpressionEvaluator | undefined;
  readonly logger: Logger;
  /** Syncs running at once (default 16). */
  readonly concurrency?: number;
  /** Syncs started per second at most (default 200/s, burst 1000). */
  readonly rateLimit?: RateLimit;
  /** Only these namespaces (default: all). */
  readonly namespaces?: readonly string[];
  /** Watch SecretProviderClasses: true, false, or 'auto' (when the CRD is installed; default). */
  readonly secretProviderClasses?: boolean | 'auto';
  readonly leaderElection?: LeaderElectionSettings;
  /** Called when this replica loses the lease (the CLI exits so a fresh process competes again). */
  readonly onLostLeadership?: () => void;
  /** Fraction of the refresh interval added or taken at random (default 0.1). */
  readonly refreshJitter?: number;
  readonly relistIntervalMs?: number;
  readonly silenceMs?: number;
  readonly events?: EventRecorder;
  readonly objects?: Objects;
  readonly now?: () => number;
  readonly random?: () => number;
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

interface SecretSyncObject extends KubernetesObject {
  metadata: NonNullable<KubernetesObject['metadata']> & {
    name: string;
    namespace: string;
  };
  spec?: { refreshInterval?: string; target?: { name?: string }; creationPolicy?: string };
  status?: SyncStatus;
}

interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

interface SyncStatus {
  observedGeneration?: number;
  secretName?: string;
  lastSyncTime?: string;
  syncedVersions?: { objectName: string; versionId: string }[];
  conditions?: Condition[];
}

const reconcileSeconds = histogram(
  'smk_sync_reconcile_seconds',
  'Duration of one sync.',
  ['kind'],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
);
const queueDepthGauge = gauge('smk_sync_queue_depth', 'Sync keys waiting to run now.', []);
const scheduledGauge = gauge('smk_sync_scheduled', 'Sync keys scheduled for a later refresh or retry.', []);

function keyOf(kind: SourceKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

function parseKey(key: string): { kind: SourceKind; namespace: string; name: string } | undefined {
  const [kind, namespace, name] = key.split('/');
  if ((kind !== secretSyncKind && kind !== spcKind) || !namespace || !name) return undefined;
  return { kind, namespace, name };
}

const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';

/** Cached sources keep what a sync reads: managedFields and kubectl's last-applied copy go. */
function withoutBookkeeping<T extends KubernetesObject>(object: T): T {
  const metadata = object.metadata;
  if (!metadata) return object;
  delete metadata.managedFields;
  if (metadata.annotations?.[lastApplied] !== undefined) delete metadata.annotations[lastApplied];
  return object;
}

/** Cached Secrets keep only smk's own managedFields entries (plan.ts reads them) and no last-applied copy. */
function withOwnFieldsOnly(secret: V1Secret): V1Secret {
  const metadata = secret.metadata;
  if (!metadata) return secret;
  if (metadata.managedFields) {
    metadata.managedFields = metadata.managedFields.filter((entry) => entry.manager?.startsWith('smk'));
  }
  if (metadata.annotations?.[lastApplied] !== undefined) delete metadata.annotations[lastApplied];
  return secret;
}

const forceSyncAnnotation = 'smk.dev/force-sync';

/**
 * Whether a `smk.dev/force-sync` annotation asks for a sync that has not happened since: its value
 * is a time (epoch seconds, as the docs' `date +%s`, or milliseconds, or an ISO time as the
 * rotation controller writes it, optionally followed by more words). A running controller reacts
 * to the annotation's change; this is for one set while no controller ran. A value that is not a
 * time cannot be judged and is honoured.
 */
export function forceSyncPending(value: string | undefined, lastSyncMs: number): boolean {
  if (value === undefined || value.trim() === '') return false;
  const first = value.trim().split(/\s+/)[0] ?? '';
  let askedMs: number;
  if (/^\d+$/.test(first)) {
    const number = Number(first);
    askedMs = number < 1e11 ? number * 1000 : number;
  } else {
    askedMs = Date.parse(first);
  }
  return Number.isNaN(askedMs) || askedMs > lastSyncMs;
}

function readyCondition(status: SyncStatus | undefined): Condition | undefined {
  return status?.conditions?.find((condition) => condition.type === 'Ready');
}

export function createSyncController(options: SyncControllerOptions): SyncController {
  const { logger } = options;
  const kubeConfig = withConnectionReuse(options.kubeConfig);
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const jitter = options.refreshJitter ?? 0.1;
  const objects = options.objects ?? createObjects(kubeConfig);
  const events =
    options.events ??
    createEventRecorder(kubeConfig, {
      component: 'smk-controller',
      logger,
      // Created/Updated events wait while syncs are queued (a cold start): Ready comes first.
      yieldWhile: () => queue.depth > 0,
    });
  const queue: WorkQueue = createWorkQueue({
    rateLimit: options.rateLimit ?? { perSecond: 200, burst: 1000 },
  });
  const namespaces = options.namespaces && options.namespaces.length > 0 ? options.namespaces : [undefined];
  const allowed = (namespace: string | undefined): boolean =>
    !options.namespaces ||
    options.namespaces.length === 0 ||
    (namespace !== undefined && options.namespaces.includes(namespace));
  const informerOptions = (name: string) => ({
    name,
    logger,
    ...(options.relistIntervalMs ? { relistIntervalMs: options.relistIntervalMs } : {}),
    ...(options.silenceMs ? { silenceMs: options.silenceMs } : {}),
  });

  function informersFor<T extends KubernetesObject>(
    apiVersion: string,
    plural: string,
    lister: (namespace: string | undefined) => Lister<T>,
    transform: (object: T) => T,
    labelSelector?: string,
  ): Informer<T>[] {
    return namespaces.map((namespace) =>
      createInformer<T>(
        apiSource<T>(kubeConfig, {
          path: resourcePath(apiVersion, plural, namespace),
          list: lister(namespace),
          ...(labelSelector ? { labelSelector } : {}),
        }),
        { ...informerOptions(`${plural}${namespace ? `/${namespace}` : ''}`), transform },
      ),
    );
  }

  const syncInformers = informersFor<SecretSyncObject>(
    `${group}/${version}`,
    secretSyncPlural,
    (namespace) => customObjectLister(kubeConfig, { group, version, plural: secretSyncPlural, namespace }),
    withoutBookkeeping,
  );
  const secretInformers = informersFor<V1Secret>(
    'v1',
    'secrets',
    (namespace) => secretLister(kubeConfig, namespace),
    withOwnFieldsOnly,
    `${managedByLabel}=${managedByValue}`,
  );
  let spcInformers: Informer<KubernetesObject>[] = [];

  const lookup = <T>(informers: readonly Informer<T>[], namespace: string, name: string): T | undefined => {
    for (const informer of informers) {
      const found = informer.get(namespace, name);
      if (found) return found;
    }
    return undefined;
  };
  /** `namespace/owner marker` → the managed Secrets carrying it, kept by the Secret informers. */
  const secretsByOwner = new Map<string, Map<string, V1Secret>>();
  /** `namespace/name` of a managed Secret → the owner key it is filed under. */
  const ownerOfSecret = new Map<string, string>();
  const ownerKey = (namespace: string, marker: string): string => `${namespace}/${marker}`;
  function indexSecret(secret: V1Secret, present: boolean): void {
    const namespace = secret.metadata?.namespace;
    const name = secret.metadata?.name;
    if (!namespace || !name) return;
    const id = `${namespace}/${name}`;
    const marker = secret.metadata?.annotations?.[annotations.owner];
    const previous = ownerOfSecret.get(id);
    if (previous !== undefined) {
      const secrets = secretsByOwner.get(previous);
      secrets?.delete(name);
      if (secrets?.size === 0) secretsByOwner.delete(previous);
      ownerOfSecret.delete(id);
    }
    if (!present || !marker) return;
    const key = ownerKey(namespace, marker);
    const secrets = secretsByOwner.get(key) ?? new Map<string, V1Secret>();
    secrets.set(name, secret);
    secretsByOwner.set(key, secrets);
    ownerOfSecret.set(id, key);
  }
  const secretsOwnedBy = (namespace: string, marker: string): V1Secret[] => [
    ...(secretsByOwner.get(ownerKey(namespace, marker))?.values() ?? []),
  ];

  /** Last resourceVersion smk itself wrote per Secret: its own write is no drift. */
  const ownWrites = new Map<string, string>();
  /** The last job of an SPC that was deleted, so its Secrets can be released. */
  const tombstones = new Map<string, SyncJob | undefined>();
  let leader: LeaderElection | undefined;
  let leading = !options.leaderElection;
  let running = false;
  let workers: Promise<void>[] = [];
  let inFlight = 0;

  function jittered(ms: number): number {
    return Math.max(1000, Math.round(ms * (1 + jitter * (2 * random() - 1))));
  }

  // ---- event handlers -----------------------------------------------------------------------

  function onSecretSync(object: SecretSyncObject, previous?: SecretSyncObject): void {
    const { namespace, name } = object.metadata;
    if (!allowed(namespace)) return;
    const key = keyOf(secretSyncKind, namespace, name);
    if (object.metadata.deletionTimestamp) {
      queue.add(key);
      return;
    }
    if (previous) {
      const changed =
        previous.metadata.generation !== object.metadata.generation ||
        previous.metadata.annotations?.[forceSyncAnnotation] !==
          object.metadata.annotations?.[forceSyncAnnotation];
      if (changed) queue.add(key);
      return;
    }
    queue.addAfter(key, initialDelay(object));
  }

  /**
   * After a restart, a SecretSync that was synced recently at its current generation (and whose
   * Secret still exists) is not fetched again at once but at its next due time, spread by jitter:
   * no thundering herd of AWS reads when the controller restarts.
   */
  function initialDelay(object: SecretSyncObject): number {
    const ready = readyCondition(object.status);
    const lastSync = object.status?.lastSyncTime ? Date.parse(object.status.lastSyncTime) : Number.NaN;
    const interval = object.spec?.refreshInterval ? parseDuration(object.spec.refreshInterval) : 3_600_000;
    if (
      ready?.status !== 'True' ||
      object.status?.observedGeneration !== object.metadata.generation ||
      Number.isNaN(lastSync) ||
      interval === undefined
    ) {
      return 0;
    }
    const secretName = object.spec?.target?.name ?? object.metadata.name;
    if (
      object.spec?.creationPolicy !== 'Merge' &&
      !lookup(secretInformers, object.metadata.namespace, secretName)
    )
      return 0;
    if (forceSyncPending(object.metadata.annotations?.[forceSyncAnnotation], lastSync)) return 0;
    return Math.max(0, lastSync + interval - now()) + Math.round(interval * jitter * random());
  }

  function onSpc(object: KubernetesObject, previous?: KubernetesObject): void {
    const namespace = object.metadata?.namespace;
    const name = object.metadata?.name;
    if (!namespace || !name || !allowed(namespace)) return;
    const key = keyOf(spcKind, namespace, name);
    if (previous) {
      const smkAnnotations = (o: KubernetesObject) =>
        JSON.stringify(
          Object.entries(o.metadata?.annotations ?? {})
            .filter(([k]) => k.startsWith('smk.dev/'))
            .sort(),
        );
      if (
        previous.metadata?.generation !== object.metadata?.generation ||
        smkAnnotations(previous) !== smkAnnotations(object)
      ) {
        queue.add(key);
      }
      return;
    }
    const marker = ownerMarker({ kind: spcKind, name });
    const hasSecrets = secretsOwnedBy(namespace, marker).length > 0;
    if (spcOptedIn(object) || hasSecrets) queue.add(key);
  }

  function onSecretSyncDeleted(object: SecretSyncObject): void {
    const { namespace, name } = object.metadata;
    if (!allowed(namespace)) return;
    const key = keyOf(secretSyncKind, namespace, name);
    const { job } = parseSecretSync(object);
    tombstones.set(key, job);
    queue.add(key);
  }

  function onSpcDeleted(object: KubernetesObject): void {
    const namespace = object.metadata?.namespace;
    const name = object.metadata?.name;
    if (!namespace || !name || !allowed(namespace)) return;
    const key = keyOf(spcKind, namespace, name);
    let job: SyncJob | undefined;
    try {
      job = spcOptedIn(object) ? spcJob(object) : undefined;
    } catch {
      job = undefined;
    }
    tombstones.set(key, job);
    queue.add(key);
  }

  function onManagedSecret(secret: V1Secret, deleted: boolean): void {
    const namespace = secret.metadata?.namespace;
    const marker = secret.metadata?.annotations?.[annotations.owner];
    if (!namespace || !marker || !allowed(namespace)) return;
    const id = `${namespace}/${secret.metadata?.name}`;
    if (!deleted && ownWrites.get(id) === secret.metadata?.resourceVersion) return;
    const [kind, name] = marker.split('/');
    if ((kind === secretSyncKind || kind === spcKind) && name) queue.add(keyOf(kind, namespace, name));
  }

  // ---- reconcile ----------------------------------------------------------------------------

  /** Our own writes are not news: the watch event they cause must not queue the owner again. */
  function wrote(written: V1Secret): V1Secret {
    const id = `${written.metadata?.namespace}/${written.metadata?.name}`;
    if (written.metadata?.resourceVersion) ownWrites.set(id, written.metadata.resourceVersion);
    return written;
  }

  const secretRef = (namespace: string, name: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    namespace,
    name,
  });

  const syncDeps: SyncDeps = {
    identities: options.identities,
    defaultRegion: options.defaultRegion,
    expressions: options.expressions,
    cachedSecret: (namespace, name) => lookup(secretInformers, namespace, name),
    readSecret: (namespace, name) => objects.read<V1Secret>(secretRef(namespace, name)),
    async createSecret(body) {
      const created = await objects.create(body, createManager);
      return created && wrote(created);
    },
    async adoptCreatedFields(namespace, name, resourceVersion, manager) {
      // The patch replaces the whole list: it is built from a fresh read, never from the cache
      // (which keeps only smk's entries).
      const fresh = await objects.read<V1Secret>(secretRef(namespace, name));
      if (!fresh) throw new NotFoundError(`Secret ${namespace}/${name}: not found`);
      // Changed since it was judged: the apply's resourceVersion precondition then fails (409) and
      // the sync is retried on what is there now.
      if (fresh.metadata?.resourceVersion !== resourceVersion) return resourceVersion;
      const entries = adoptCreatedFields(fresh.metadata?.managedFields, manager);
      if (!entries) return resourceVersion;
      const adopted = wrote(
        await objects.replaceSecretManagedFields({ namespace, name }, resourceVersion, entries),
      );
      return adopted.metadata?.resourceVersion ?? resourceVersion;
    },
    applySecret: async (body, apply) => wrote(await objects.apply(body, apply)),
  };

  function involved(
    source: Pick<SyncSource, 'kind' | 'apiVersion' | 'namespace' | 'name' | 'uid'>,
  ): InvolvedObject {
    return {
      apiVersion: source.apiVersion,
      kind: source.kind,
      namespace: source.namespace,
      name: source.name,
      ...(source.uid ? { uid: source.uid } : {}),
    };
  }

  /** Deletes (policy Delete) or lets go of (Retain) the Secrets `source` wrote, except `keep`. */
  async function releaseSecrets(
    source: SyncSource,
    deletionPolicy: 'Retain' | 'Delete',
    keep: ReadonlySet<string>,
  ): Promise<void> {
    const marker = ownerMarker(source);
    for (const secret of secretsOwnedBy(source.namespace, marker)) {
      const name = secret.metadata?.name;
      if (!name || keep.has(name)) continue;
      const ref = { apiVersion: 'v1', kind: 'Secret', namespace: source.namespace, name };
      if (deletionPolicy === 'Delete') {
        await objects.delete(ref, secret.metadata?.uid);
        void events.record(
          involved(source),
          'Normal',
          'Deleted',
          `Deleted Secret ${name} (deletionPolicy Delete)`,
        );
        continue;
      }
      const refs = secret.metadata?.ownerReferences ?? [];
      const others = refs.filter((ref) => !(ref.kind === source.kind && ref.name === source.name));
      if (others.length !== refs.length) {
        await objects.mergePatch(ref, {
          metadata: { ownerReferences: others, resourceVersion: secret.metadata?.resourceVersion },
        });
      }
    }
  }

  /** Merge targets: take back exactly the keys this source added (apply with nothing). */
  async function releaseMergedKeys(job: SyncJob): Promise<void> {
    for (const target of job.targets) {
      const existing = await objects.read<V1Secret>({
        apiVersion: 'v1',
        kind: 'Secret',
        namespace: job.source.namespace,
        name: target.name,
      });
      const manager = managerFor(job.source, 'Merge');
      // Never merged into (refused, or never synced): there is nothing of ours to take back, and
      // an empty apply would still write the Secret.
      if (!existing?.metadata?.managedFields?.some((entry) => entry.manager === manager)) continue;
      await objects.apply(
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: target.name, namespace: job.source.namespace },
        },
        { force: true, manager },
      );
    }
  }

  async function finalize(
    job: SyncJob | undefined,
    source: SyncSource,
    deletionPolicy: 'Retain' | 'Delete',
  ): Promise<void> {
    if (job?.creationPolicy === 'Merge') {
      if (deletionPolicy === 'Delete') await releaseMergedKeys(job);
      return;
    }
    await releaseSecrets(source, deletionPolicy, new Set());
  }

  function sourceOf(object: SecretSyncObject): SyncSource {
    return {
      kind: secretSyncKind,
      apiVersion: `${group}/${version}`,
      namespace: object.metadata.namespace,
      name: object.metadata.name,
      uid: object.metadata.uid ?? '',
      generation: object.metadata.generation ?? 0,
    };
  }

  async function writeStatus(
    object: SecretSyncObject,
    job: SyncJob | undefined,
    outcome: SyncOutcome,
  ): Promise<void> {
    const previous = object.status;
    const before = readyCondition(previous);
    const generation = object.metadata.generation ?? 0;
    const condition: Condition = outcome.ok
      ? {
          type: 'Ready',
          status: 'True',
          reason: 'Synced',
          message: `Secret ${job?.targets.map((t) => t.name).join(', ')} holds ${outcome.keys} key${outcome.keys === 1 ? '' : 's'} from AWS (role ${outcome.roleArn})`,
          observedGeneration: generation,
          lastTransitionTime: '',
        }
      : {
          type: 'Ready',
          status: 'False',
          reason: outcome.reason,
          message: outcome.message,
          observedGeneration: generation,
          lastTransitionTime: '',
        };
    condition.lastTransitionTime =
      before && before.status === condition.status && before.lastTransitionTime
        ? before.lastTransitionTime
        : new Date(now()).toISOString();
    if (
      !outcome.ok &&
      before?.reason === condition.reason &&
      before.message === condition.message &&
      previous?.observedGeneration === generation
    ) {
      return; // Same failure as already shown: no write per retry.
    }
    const status: SyncStatus = {
      observedGeneration: generation,
      ...(job?.targets[0] ? { secretName: job.targets[0].name } : {}),
      ...(outcome.ok
        ? { lastSyncTime: new Date(now()).toISOString(), syncedVersions: [...outcome.versions] }
        : {
            ...(previous?.lastSyncTime ? { lastSyncTime: previous.lastSyncTime } : {}),
            ...(previous?.syncedVersions ? { syncedVersions: previous.syncedVersions } : {}),
          }),
      conditions: [condition],
    };
    await objects.applyStatus(
      {
        group,
        version,
        plural: secretSyncPlural,
        kind: secretSyncKind,
        namespace: object.metadata.namespace,
        name: object.metadata.name,
      },
      status as Record<string, unknown>,
    );
  }

  function recordOutcome(source: SyncSource, outcome: SyncOutcome): void {
    const who = involved(source);
    if (outcome.ok) {
      for (const target of outcome.targets) {
        if (target.action === 'unchanged') continue;
        const verb = target.action === 'created' ? 'Created' : 'Updated';
        void events.record(
          who,
          'Normal',
          verb,
          `${verb} Secret ${target.name} from AWS (role ${outcome.roleArn})`,
        );
      }
      return;
    }
    void events.record(who, 'Warning', outcome.reason, outcome.message);
  }

  function schedule(key: string, job: SyncJob | undefined, outcome: SyncOutcome): void {
    if (outcome.ok) {
      queue.forget(key);
      // OnChange and CreatedOnce sources wait for a change of the object (or a rotation's ask).
      if (job?.refreshPolicy === 'Periodic') queue.addAfter(key, jittered(job.refreshIntervalMs));
      return;
    }
    if (!outcome.retry) return;
    const delay = queue.addRateLimited(key, outcome.retryAfterMs);
    // A short refresh interval pulls the retry in, but never before the API server's Retry-After.
    if (job && job.refreshIntervalMs < delay && outcome.retryAfterMs === undefined)
      queue.addAfter(key, job.refreshIntervalMs);
  }

  function parseSecretSync(object: SecretSyncObject): { job?: SyncJob; error?: InvalidInputError } {
    try {
      return { job: secretSyncJob(object) };
    } catch (error) {
      if (error instanceof InvalidInputError) return { error };
      throw error;
    }
  }

  /** The deletion policy of an object, even one whose spec no longer parses. */
  function deletionPolicyOf(object: SecretSyncObject, job: SyncJob | undefined): DeletionPolicy {
    if (job) return job.deletionPolicy;
    const spec = (object as { spec?: { deletionPolicy?: string; creationPolicy?: string } }).spec;
    if (spec?.deletionPolicy === 'Delete' || spec?.deletionPolicy === 'Retain') return spec.deletionPolicy;
    return spec?.creationPolicy === 'Orphan' || spec?.creationPolicy === 'Merge' ? 'Retain' : 'Delete';
  }

  async function setFinalizer(object: SecretSyncObject, present: boolean): Promise<void> {
    const finalizers = object.metadata.finalizers ?? [];
    if (finalizers.includes(finalizer) === present) return;
    const { namespace, name } = object.metadata;
    await objects.mergePatch(
      { apiVersion: `${group}/${version}`, kind: secretSyncKind, namespace, name },
      {
        metadata: {
          finalizers: present ? [...finalizers, finalizer] : finalizers.filter((f) => f !== finalizer),
          resourceVersion: object.metadata.resourceVersion,
        },
      },
    );
  }

  async function reconcileSecretSync(key: string, namespace: string, name: string): Promise<void> {
    const object = lookup(syncInformers, namespace, name);
    if (!object) {
      // Deleted without a finalizer of ours: the owner reference (GC) covers Owner + Delete; do it
      // now as well, so the Secret does not outlive its SecretSync where no GC runs.
      const last = tombstones.get(key);
      tombstones.delete(key);
      queue.remove(key);
      forgetStatus({ kind: secretSyncKind, namespace, name });
      if (last && last.creationPolicy !== 'Merge' && last.deletionPolicy === 'Delete') {
        await releaseSecrets(last.source, 'Delete', new Set());
      }
      return;
    }
    const source = sourceOf(object);
    const parsed = parseSecretSync(object);
    if (object.metadata.deletionTimestamp) {
      if (!(object.metadata.finalizers ?? []).includes(finalizer)) return;
      const policy = deletionPolicyOf(object, parsed.job);
      await finalize(parsed.job, source, policy);
      await setFinalizer(object, false);
      queue.remove(key);
      logger.info({ secretSync: `${namespace}/${name}`, deletionPolicy: policy }, 'SecretSync finalized');
      return;
    }
    const job = parsed.job;
    let outcome: SyncOutcome;
    if (job) {
      await setFinalizer(object, needsFinalizer(job));
      outcome = await syncJob(job, syncDeps);
    } else {
      outcome = {
        ok: false,
        reason: 'InvalidSpec',
        message: describeError(parsed.error),
        ...(parsed.error?.field ? { field: parsed.error.field } : {}),
        retry: false,
        targets: [],
      };
    }
    recordSync(source, outcome, logger);
    recordOutcome(source, outcome);
    await writeStatus(object, job, outcome);
    if (outcome.ok && job && job.deletionPolicy === 'Delete') {
      await releaseSecrets(source, 'Delete', new Set(job.targets.map((t) => t.name)));
    }
    schedule(key, job, outcome);
  }

  async function reconcileSpc(key: string, namespace: string, name: string): Promise<void> {
    const object = lookup(spcInformers, namespace, name);
    const source: SyncSource = {
      kind: spcKind,
      apiVersion: `${spcGroup}/${spcVersion}`,
      namespace,
      name,
      uid: object?.metadata?.uid ?? '',
      generation: object?.metadata?.generation ?? 0,
    };
    if (!object || !spcOptedIn(object)) {
      // Gone or opted out: release what it synced, as its (last) deletionPolicy says.
      const last = object ? undefined : tombstones.get(key);
      tombstones.delete(key);
      const policyText = object?.metadata?.annotations?.[annotations.deletionPolicy] ?? last?.deletionPolicy;
      await finalize(last, source, policyText === 'Retain' ? 'Retain' : 'Delete');
      queue.remove(key);
      forgetStatus(source);
      return;
    }
    let job: SyncJob | undefined;
    let outcome: SyncOutcome;
    try {
      job = spcJob(object);
      outcome = await syncJob(job, syncDeps);
    } catch (error) {
      if (!(error instanceof InvalidInputError)) throw error;
      outcome = {
        ok: false,
        reason: 'InvalidSpec',
        message: describeError(error),
        ...(error.field ? { field: error.field } : {}),
        retry: false,
        targets: [],
      };
    }
    recordSync(source, outcome, logger);
    recordOutcome(source, outcome);
    if (outcome.ok && job && job.deletionPolicy === 'Delete') {
      await releaseSecrets(source, 'Delete', new Set(job.targets.map((t) => t.name)));
    }
    schedule(key, job, outcome);
  }

  async function reconcile(key: string): Promise<void> {
    const parsed = parseKey(key);
    if (!parsed) return;
    const started = performance.now();
    try {
      if (parsed.kind === secretSyncKind) await reconcileSecretSync(key, parsed.namespace, parsed.name);
      else await reconcileSpc(key, parsed.namespace, parsed.name);
    } finally {
      reconcileSeconds.observe({ kind: parsed.kind }, (performance.now() - started) / 1000);
    }
  }

  async function work(): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      inFlight += 1;
      try {
        await reconcile(key);
      } catch (error) {
        // API errors while writing status, finalizers or releasing: retry with backoff.
        const delay = queue.addRateLimited(key, retryAfterMsOf(error));
        logger.warn({ key, err: describeError(error), retryInMs: delay }, 'sync failed');
      } finally {
        inFlight -= 1;
        queue.done(key);
        queueDepthGauge.set(queue.depth);
        scheduledGauge.set(queue.scheduled);
      }
    }
  }

  function startWorkers(): void {
    if (workers.length > 0 || !running) return;
    const concurrency = options.concurrency ?? 16;
    workers = Array.from({ length: concurrency }, () => work());
    logger.info({ concurrency }, 'sync workers started');
  }

  /** Stops the CRD probe while it is still being retried (a refusal is retried like an informer's). */
  const stopping = new AbortController();
  /** Undefined when stopped before the API server could tell. */
  async function spcInstalled(): Promise<boolean | undefined> {
    if (options.secretProviderClasses === true) return true;
    if (options.secretProviderClasses === false) return false;
    return customResourceServed(
      kubeConfig,
      { group: spcGroup, version: spcVersion, plural: spcPlural, namespace: namespaces[0] },
      { logger, signal: stopping.signal },
    );
  }

  return {
    async start() {
      running = true;
      for (const informer of secretInformers) {
        informer.addHandlers({
          add: (secret) => indexSecret(secret, true),
          update: (secret) => {
            indexSecret(secret, true);
            onManagedSecret(secret, false);
          },
          delete: (secret) => {
            indexSecret(secret, false);
            onManagedSecret(secret, true);
          },
        });
      }
      await Promise.all(secretInformers.map((informer) => informer.start()));
      for (const informer of syncInformers) {
        informer.addHandlers({
          add: (object) => onSecretSync(object),
          update: (object, previous) => onSecretSync(object, previous),
          delete: (object) => onSecretSyncDeleted(object),
        });
      }
      const spc = await spcInstalled();
      if (spc === undefined) return;
      if (spc) {
        spcInformers = informersFor<KubernetesObject>(
          `${spcGroup}/${spcVersion}`,
          spcPlural,
          (namespace) =>
            customObjectLister(kubeConfig, {
              group: spcGroup,
              version: spcVersion,
              plural: spcPlural,
              namespace,
            }),
          withoutBookkeeping,
        );
        for (const informer of spcInformers) {
          informer.addHandlers({
            add: (object) => onSpc(object),
            update: (object, previous) => onSpc(object, previous),
            delete: (object) => onSpcDeleted(object),
          });
        }
      } else {
        logger.info('SecretProviderClass CRD not installed: the drop-in is off');
      }
      await Promise.all([...syncInformers, ...spcInformers].map((informer) => informer.start()));
      if (options.leaderElection) {
        const settings = options.leaderElection;
        leader = createLeaderElection(apiLeaseStore(kubeConfig, settings.namespace, settings.name), {
          identity: settings.identity,
          logger,
          onStartedLeading: () => {
            leading = true;
            startWorkers();
          },
          onStoppedLeading: () => {
            leading = false;
            if (running) options.onLostLeadership?.();
          },
        });
        leader.start();
      } else {
        startWorkers();
      }
      logger.info(
        { namespaces: options.namespaces ?? 'all', secretProviderClasses: spcInformers.length > 0 },
        'sync controller started',
      );
    },
    async stop(graceMs = 10_000) {
      running = false;
      stopping.abort();
      queue.shutDown();
      const drained = Promise.all(workers);
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([drained, timeout]);
      if (inFlight > 0) logger.warn({ inFlight }, 'stopped with syncs still running');
      await leader?.stop();
      for (const informer of [...syncInformers, ...spcInformers, ...secretInformers]) informer.stop();
      workers = [];
    },
    get ready() {
      return [...syncInformers, ...spcInformers, ...secretInformers].every((informer) => informer.healthy);
    },
    get leading() {
      return leading;
    },
    get queueDepth() {
      return queue.depth;
    },
  };
}
