/**
 * SecretSync (smk.dev/v1alpha1): when a change queues it, and what one run does — sync its
 * targets, keep the finalizer its deletionPolicy needs, write the status, release Secrets it no
 * longer names, and carry out the policy once it is deleted.
 */
import { describeError, InvalidInputError } from '../../core/errors.ts';
import type { SharedInformer } from '../../kube/manager.ts';
import {
  finalizer,
  group,
  needsFinalizer,
  type SyncJob,
  type SyncSource,
  secretSyncJob,
  secretSyncKind,
  secretSyncPlural,
  version,
} from '../jobs.ts';
import type { SecretSyncObject } from '../kinds.ts';
import { forgetStatus, recordSync } from '../status-metrics.ts';
import { keyOf, type SyncContext } from './context.ts';
import { jittered, recordOutcome, schedule } from './outcome.ts';
import { deletionPolicyOf } from './release.ts';
import { forceSyncAnnotation, initialDelay, nextStatus } from './status.ts';
import { type SyncOutcome, syncJob } from './sync.ts';

function parseSecretSync(object: SecretSyncObject): { job?: SyncJob; error?: InvalidInputError } {
  try {
    return { job: secretSyncJob(object) };
  } catch (error) {
    if (error instanceof InvalidInputError) return { error };
    throw error;
  }
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

export interface SecretSyncs {
  /** Found at start-up (or later): queued at its next due time, so a restart is no herd of reads. */
  added(object: SecretSyncObject): void;
  /** Queued when its spec (generation) or `smk.dev/force-sync` changed, or it is being deleted. */
  updated(object: SecretSyncObject, previous: SecretSyncObject): void;
  deleted(object: SecretSyncObject): void;
  reconcile(key: string, namespace: string, name: string): Promise<void>;
}

export function secretSyncHandling(
  context: SyncContext,
  informer: SharedInformer<SecretSyncObject>,
): SecretSyncs {
  const { queue, release, logger } = context;

  async function writeStatus(
    object: SecretSyncObject,
    job: SyncJob | undefined,
    outcome: SyncOutcome,
  ): Promise<void> {
    const status = nextStatus(object, job, outcome, context.now());
    if (!status) return; // Same failure as already shown: no write per retry.
    await context.objects.applyStatus(
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

  return {
    added(object) {
      const { namespace, name } = object.metadata;
      if (!context.inScope(namespace)) return;
      const key = keyOf(secretSyncKind, namespace, name);
      if (object.metadata.deletionTimestamp) {
        queue.add(key);
        return;
      }
      queue.addAfter(
        key,
        initialDelay(object, {
          now: context.now(),
          random: context.random(),
          jitter: context.jitter,
          targetExists: (ns, secretName) => context.managedSecrets.get(ns, secretName) !== undefined,
        }),
      );
    },
    updated(object, previous) {
      const { namespace, name } = object.metadata;
      if (!context.inScope(namespace)) return;
      const changed =
        Boolean(object.metadata.deletionTimestamp) ||
        previous.metadata.generation !== object.metadata.generation ||
        previous.metadata.annotations?.[forceSyncAnnotation] !==
          object.metadata.annotations?.[forceSyncAnnotation];
      if (changed) queue.add(keyOf(secretSyncKind, namespace, name));
    },
    deleted(object) {
      const { namespace, name } = object.metadata;
      if (!context.inScope(namespace)) return;
      const key = keyOf(secretSyncKind, namespace, name);
      context.tombstones.set(key, parseSecretSync(object).job);
      queue.add(key);
    },
    async reconcile(key, namespace, name) {
      const object = informer.get(namespace, name);
      if (!object) {
        // Deleted without a finalizer of ours: the owner reference (GC) covers Owner + Delete; do it
        // now as well, so the Secret does not outlive its SecretSync where no GC runs.
        const last = context.tombstones.get(key);
        context.tombstones.delete(key);
        queue.remove(key);
        forgetStatus({ kind: secretSyncKind, namespace, name });
        if (last && last.creationPolicy !== 'Merge' && last.deletionPolicy === 'Delete') {
          await release.releaseSecrets(last.source, 'Delete', new Set());
        }
        return;
      }
      const source = sourceOf(object);
      const parsed = parseSecretSync(object);
      if (object.metadata.deletionTimestamp) {
        if (!(object.metadata.finalizers ?? []).includes(finalizer)) return;
        const policy = deletionPolicyOf(object, parsed.job);
        await release.finalize(parsed.job, source, policy);
        await release.setFinalizer(object, false);
        queue.remove(key);
        logger.info({ secretSync: `${namespace}/${name}`, deletionPolicy: policy }, 'SecretSync finalized');
        return;
      }
      const job = parsed.job;
      let outcome: SyncOutcome;
      if (job) {
        await release.setFinalizer(object, needsFinalizer(job));
        outcome = await syncJob(job, context.deps);
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
      recordOutcome(context.events, source, outcome);
      await writeStatus(object, job, outcome);
      if (outcome.ok && job && job.deletionPolicy === 'Delete') {
        await release.releaseSecrets(source, 'Delete', new Set(job.targets.map((t) => t.name)));
      }
      schedule(queue, key, job, outcome, (ms) => jittered(ms, context.jitter, context.random));
    },
  };
}
