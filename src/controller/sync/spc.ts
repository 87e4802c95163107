/**
 * The SecretProviderClass drop-in: a SecretProviderClass annotated `smk.dev/sync: "true"` has its
 * `secretObjects` synced with no pod mounting it. Queued when its spec or smk.dev/ annotations
 * change; opted out or deleted, what it synced is released as its (last) deletionPolicy says.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { describeError, InvalidInputError } from '../../core/errors.ts';
import type { SharedInformer } from '../../kube/manager.ts';
import {
  annotations,
  ownerMarker,
  type SyncJob,
  type SyncSource,
  spcGroup,
  spcKind,
  spcVersion,
} from '../jobs.ts';
import { spcJob, spcOptedIn } from '../spc-job.ts';
import { forgetStatus, recordSync } from '../status-metrics.ts';
import { keyOf, type SyncContext } from './context.ts';
import { jittered, recordOutcome, schedule } from './outcome.ts';
import type { SyncOutcome } from './sync.ts';
import { syncJob } from './sync.ts';

export interface SecretProviderClasses {
  /** Queued when opted in, or when it still owns Secrets (opted out while no controller ran). */
  added(object: KubernetesObject): void;
  updated(object: KubernetesObject, previous: KubernetesObject): void;
  deleted(object: KubernetesObject): void;
  reconcile(key: string, namespace: string, name: string): Promise<void>;
}

const smkAnnotations = (object: KubernetesObject): string =>
  JSON.stringify(
    Object.entries(object.metadata?.annotations ?? {})
      .filter(([key]) => key.startsWith('smk.dev/'))
      .sort(),
  );

export function spcHandling(
  context: SyncContext,
  informer: () => SharedInformer<KubernetesObject> | undefined,
): SecretProviderClasses {
  const { queue, release } = context;
  const keyFor = (object: KubernetesObject): string | undefined => {
    const namespace = object.metadata?.namespace;
    const name = object.metadata?.name;
    if (!namespace || !name || !context.inScope(namespace)) return undefined;
    return keyOf(spcKind, namespace, name);
  };

  return {
    added(object) {
      const key = keyFor(object);
      if (!key) return;
      const marker = ownerMarker({ kind: spcKind, name: object.metadata?.name ?? '' });
      const hasSecrets = context.owned.ownedBy(object.metadata?.namespace ?? '', marker).length > 0;
      if (spcOptedIn(object) || hasSecrets) queue.add(key);
    },
    updated(object, previous) {
      const key = keyFor(object);
      if (!key) return;
      if (
        previous.metadata?.generation !== object.metadata?.generation ||
        smkAnnotations(previous) !== smkAnnotations(object)
      ) {
        queue.add(key);
      }
    },
    deleted(object) {
      const key = keyFor(object);
      if (!key) return;
      let job: SyncJob | undefined;
      try {
        job = spcOptedIn(object) ? spcJob(object) : undefined;
      } catch {
        job = undefined;
      }
      context.tombstones.set(key, job);
      queue.add(key);
    },
    async reconcile(key, namespace, name) {
      const object = informer()?.get(namespace, name);
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
        const last = object ? undefined : context.tombstones.get(key);
        context.tombstones.delete(key);
        const policyText =
          object?.metadata?.annotations?.[annotations.deletionPolicy] ?? last?.deletionPolicy;
        await release.finalize(last, source, policyText === 'Retain' ? 'Retain' : 'Delete');
        queue.remove(key);
        forgetStatus(source);
        return;
      }
      let job: SyncJob | undefined;
      let outcome: SyncOutcome;
      try {
        job = spcJob(object);
        outcome = await syncJob(job, context.deps);
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
      recordSync(source, outcome, context.logger);
      recordOutcome(context.events, source, outcome);
      if (outcome.ok && job && job.deletionPolicy === 'Delete') {
        await release.releaseSecrets(source, 'Delete', new Set(job.targets.map((t) => t.name)));
      }
      schedule(queue, key, job, outcome, (ms) => jittered(ms, context.jitter, context.random));
    },
  };
}
