/**
 * The write-through controller: watches Secrets labelled `smk.dev/write-through=true`, writes
 * the value the webhook sealed into each stored Secret to Secrets Manager, carries out the
 * deletion policy behind the finalizer, and sweeps secrets whose Secret is gone
 * (./reconcile.ts). Only the leader of the process's Lease acts (the manager's, shared with the sync
 * controller); every replica keeps its cache warm and loads the sealing key (./sealing-key.ts). It
 * acts as the controller's own AWS identity.
 */
import type { V1Secret } from '@kubernetes/client-node';
import type { SecretWriter } from '../../aws/index.ts';
import { describeError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { counter } from '../../core/metrics.ts';
import type { SealingKeyPair } from '../../core/seal.ts';
import { writeThroughAnnotations, writeThroughTags } from '../../core/write-through.ts';
import { createObjects, type Objects } from '../../kube/apply.ts';
import type { KubeConfig } from '../../kube/client.ts';
import { apiStatus, retryAfterMsOf } from '../../kube/client.ts';
import { createEventRecorder, type EventRecorder } from '../../kube/events.ts';
import { writeThroughSecrets } from '../../kube/kinds.ts';
import { createManager, type LeaderElectionSettings, type Manager } from '../../kube/manager.ts';
import {
  type ReconcileSettings,
  reconcileWriteThrough,
  sweepCandidates,
  type WriteThroughSecret,
} from './reconcile.ts';
import { loadSealingKey, type SealingKeyStore } from './sealing-key.ts';

const reconciles = counter(
  'smk_write_through_reconciles_total',
  'Write-through reconciles, by outcome (none, written, tagged, deleted, warning, failed).',
  ['outcome'],
);
const swept = counter(
  'smk_write_through_swept_total',
  'Secrets Manager secrets deleted because Kubernetes never stored their Secret, by mode (force, recovery).',
  ['mode'],
);

export interface WriteThroughSettings {
  readonly writer: Pick<
    SecretWriter,
    'create' | 'putValue' | 'describe' | 'moveStage' | 'tag' | 'delete' | 'restore' | 'listByTag'
  >;
  readonly settings: ReconcileSettings;
  /** Where the sealing key is kept (smk's own namespace). */
  readonly sealingKey: SealingKeyStore;
  /** Between sweeps (default 10 min); 0 turns the sweep off. */
  readonly sweepIntervalMs?: number;
  /** A secret must be unchanged this long before the sweep takes it (default 10 min). */
  readonly sweepGraceMs?: number;
  readonly events?: EventRecorder;
  readonly objects?: Objects;
  readonly now?: () => number;
}

export interface WriteThroughControllerOptions extends WriteThroughSettings {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly namespaces?: readonly string[];
  readonly leaderElection?: LeaderElectionSettings;
  readonly onLostLeadership?: () => void;
}

export interface WriteThroughController {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly ready: boolean;
  readonly leading: boolean;
  /** One sweep now (tests; the leader also runs it on its interval). */
  sweep(): Promise<number>;
}

/** Adds the write-through controller to the process's manager; `sweep` runs one sweep now (tests). */
export function addWriteThroughController(
  manager: Manager,
  options: WriteThroughSettings,
): { sweep(): Promise<number> } {
  const { writer, settings } = options;
  const { logger, kubeConfig } = manager;
  const objects = options.objects ?? createObjects(kubeConfig);
  const events =
    options.events ?? createEventRecorder(kubeConfig, { component: 'smk-write-through', logger });
  const now = options.now ?? Date.now;
  const controller = manager.controller('write-through');
  const informer = controller.informer(writeThroughSecrets);
  const cached = (namespace: string, name: string): V1Secret | undefined => informer.get(namespace, name);
  const pool = controller.workers({
    name: 'write-through',
    concurrency: 4,
    // Keys are namespace/name; one lane per namespace (kube/queue.ts).
    queue: {
      backoff: { baseMs: 1_000, maxMs: 5 * 60_000, jitter: 0.2 },
      laneOf: (key) => key.split('/')[0] ?? '',
    },
    async reconcile(key) {
      await reconcile(key);
      pool.queue.forget(key);
    },
    onError(key, _error, queue) {
      reconciles.inc({ outcome: 'failed' });
      return queue.addRateLimited(key, retryAfterMsOf(_error));
    },
  });
  const queue = pool.queue;
  /** What this process committed last per Secret (uid + resourceVersion): a relist costs no AWS call. */
  const settled = new Map<string, string>();

  let keyPair: SealingKeyPair | undefined;
  const refOf = (secret: WriteThroughSecret) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    namespace: secret.metadata?.namespace ?? '',
    name: secret.metadata?.name ?? '',
  });
  const deps = {
    writer,
    settings,
    keyPair: () => keyPair,
    async setFinalizers(secret: WriteThroughSecret, finalizers: string[]) {
      // The resourceVersion makes it conditional: a list that changed meanwhile is not overwritten.
      await objects.mergePatch(refOf(secret), {
        metadata: { finalizers, resourceVersion: secret.metadata?.resourceVersion },
      });
    },
    async setAnnotations(secret: WriteThroughSecret, annotations: Readonly<Record<string, string | null>>) {
      // Conditional too: a sealed value stored after the one just written is not dropped.
      await objects.mergePatch(refOf(secret), {
        metadata: { annotations, resourceVersion: secret.metadata?.resourceVersion },
      });
    },
  };

  async function reconcile(key: string): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const secret = cached(namespace, name);
    if (secret === undefined) {
      settled.delete(key);
      return;
    }
    const stamp = `${secret.metadata?.uid}/${secret.metadata?.resourceVersion}`;
    if (!secret.metadata?.deletionTimestamp && settled.get(key) === stamp) return;
    const involved = {
      apiVersion: 'v1',
      kind: 'Secret',
      namespace,
      name,
      ...(secret.metadata?.uid ? { uid: secret.metadata.uid } : {}),
    };
    let result: Awaited<ReturnType<typeof reconcileWriteThrough>>;
    try {
      result = await reconcileWriteThrough(secret, deps);
    } catch (error) {
      // The value stays sealed in the Secret and is retried; the owner sees why on the Secret. A
      // 409 only means the Secret changed meanwhile: the newer value is written next.
      const conflict = apiStatus(error instanceof Error ? error.cause : undefined) === 409;
      if (!conflict && secret.metadata?.annotations?.[writeThroughAnnotations.sealed] !== undefined) {
        void events.record(involved, 'Warning', 'WriteFailed', `not written yet: ${describeError(error)}`);
      }
      throw error;
    }
    reconciles.inc({ outcome: result.outcome });
    switch (result.outcome) {
      case 'written':
        logger.info(
          { secret: key, secretName: result.secretName, versionId: result.versionId, change: result.change },
          'value written through',
        );
        await events.record(
          involved,
          'Normal',
          'Written',
          result.change === 'unchanged'
            ? `same content as version ${result.versionId} of ${result.secretName}: nothing written`
            : `version ${result.versionId} of Secrets Manager secret ${result.secretName} is AWSCURRENT`,
        );
        break;
      case 'deleted': {
        const what =
          result.policy === 'Delete'
            ? `the Secrets Manager secret is scheduled for deletion in ${result.recoveryWindowDays ?? settings.recoveryWindowDays} days (restore-secret undoes it)`
            : 'the Secrets Manager secret is retained';
        logger.info({ secret: key, policy: result.policy }, 'finalizer removed');
        await events.record(involved, 'Normal', result.policy === 'Delete' ? 'Deleted' : 'Retained', what);
        break;
      }
      case 'warning':
        logger.warn({ secret: key, reason: result.reason }, result.message);
        await events.record(involved, 'Warning', result.reason, result.message);
        break;
      default:
        break;
    }
    if (!secret.metadata?.deletionTimestamp) settled.set(key, stamp);
  }

  async function sweep(): Promise<number> {
    const secrets = await writer.listByTag({
      tagKey: writeThroughTags.cluster,
      tagValue: settings.cluster,
      namePrefix: settings.prefix,
    });
    const candidates = sweepCandidates(secrets, {
      cluster: settings.cluster,
      now: now(),
      graceMs: options.sweepGraceMs ?? 10 * 60_000,
      ...(manager.namespaces ? { namespaces: manager.namespaces } : {}),
    });
    let deleted = 0;
    for (const candidate of candidates) {
      if (cached(candidate.namespace, candidate.name)) continue;
      // The cache only holds labelled Secrets: ask the API server before deleting anything.
      const present = await objects.read({
        apiVersion: 'v1',
        kind: 'Secret',
        namespace: candidate.namespace,
        name: candidate.name,
      });
      if (present !== undefined) continue;
      await writer.delete(
        candidate.secret.arn,
        candidate.force ? { force: true } : { recoveryWindowDays: settings.recoveryWindowDays },
      );
      deleted += 1;
      swept.inc({ mode: candidate.force ? 'force' : 'recovery' });
      logger.info(
        { secretName: candidate.secret.name, arn: candidate.secret.arn, force: candidate.force },
        `no Secret ${candidate.namespace}/${candidate.name} stores this secret: deleted`,
      );
    }
    return deleted;
  }

  /** Until the key is loaded, a sealed value waits (its reconcile fails and is retried). */
  async function loadKey(): Promise<void> {
    for (let attempt = 0; running && keyPair === undefined; attempt += 1) {
      try {
        keyPair = await loadSealingKey(objects, options.sealingKey, logger);
        logger.info({ keyId: keyPair.publicKey.keyId }, 'write-through sealing key loaded and published');
      } catch (error) {
        const delayMs = Math.min(60_000, 1_000 * 2 ** attempt);
        logger.warn(
          { err: describeError(error), retryInMs: delayMs },
          'write-through sealing key not loaded',
        );
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      }
    }
  }

  let running = true;
  let sweepTimer: NodeJS.Timeout | undefined;
  const enqueue = (secret: V1Secret): void => {
    if (secret.metadata?.namespace && secret.metadata.name) {
      queue.add(`${secret.metadata.namespace}/${secret.metadata.name}`);
    }
  };
  informer.addHandlers({ add: enqueue, update: enqueue, delete: enqueue });

  controller.run({
    async prepare() {
      void loadKey();
    },
    cachesSynced() {
      logger.info({ namespaces: manager.namespaces ?? 'all' }, 'write-through controller started');
    },
    startLeading() {
      // A new leader commits what is there: what another replica settled is checked once again.
      settled.clear();
      for (const secret of informer.list()) enqueue(secret);
      const interval = options.sweepIntervalMs ?? 10 * 60_000;
      if (interval > 0) {
        sweepTimer = setInterval(() => {
          sweep().catch((error: unknown) =>
            logger.warn({ err: describeError(error) }, 'write-through sweep failed'),
          );
        }, interval);
        sweepTimer.unref();
      }
      logger.info('write-through leader: committing and finalizing');
    },
    stopLeading() {
      if (sweepTimer) clearInterval(sweepTimer);
      sweepTimer = undefined;
    },
    stop() {
      running = false;
    },
    get ready() {
      return keyPair !== undefined;
    },
  });
  return { sweep };
}

/** A write-through controller with a manager of its own (tests; `smk controller` shares one). */
export function createWriteThroughController(options: WriteThroughControllerOptions): WriteThroughController {
  const manager = createManager({
    kubeConfig: options.kubeConfig,
    logger: options.logger,
    namespaces: options.namespaces,
    leaderElection: options.leaderElection,
    onLostLeadership: options.onLostLeadership,
  });
  const controller = addWriteThroughController(manager, options);
  return {
    start: () => manager.start(),
    stop: () => manager.stop(5_000),
    get ready() {
      return manager.ready;
    },
    get leading() {
      return manager.leading;
    },
    sweep: controller.sweep,
  };
}
