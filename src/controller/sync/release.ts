/**
 * Letting go of what a source synced, as its deletionPolicy says: Delete removes the Secrets it
 * owns, Retain only drops its owner reference; a Merge target gets back exactly the keys the
 * source added. The SecretSync finalizer holds the object until that is done.
 */
import type { V1Secret } from '@kubernetes/client-node';
import type { Objects } from '../../kube/apply.ts';
import type { EventRecorder, InvolvedObject } from '../../kube/events.ts';
import {
  type DeletionPolicy,
  finalizer,
  group,
  ownerMarker,
  type SyncJob,
  type SyncSource,
  secretSyncKind,
  version,
} from '../jobs.ts';
import type { SecretSyncObject } from '../kinds.ts';
import type { OwnedSecrets } from './owned-secrets.ts';
import { managerFor } from './plan.ts';

export function involved(
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

/** The deletion policy of an object, even one whose spec no longer parses. */
export function deletionPolicyOf(object: SecretSyncObject, job: SyncJob | undefined): DeletionPolicy {
  if (job) return job.deletionPolicy;
  const spec = (object as { spec?: { deletionPolicy?: string; creationPolicy?: string } }).spec;
  if (spec?.deletionPolicy === 'Delete' || spec?.deletionPolicy === 'Retain') return spec.deletionPolicy;
  return spec?.creationPolicy === 'Orphan' || spec?.creationPolicy === 'Merge' ? 'Retain' : 'Delete';
}

export interface Release {
  /** Deletes (policy Delete) or lets go of (Retain) the Secrets `source` wrote, except `keep`. */
  releaseSecrets(
    source: SyncSource,
    deletionPolicy: DeletionPolicy,
    keep: ReadonlySet<string>,
  ): Promise<void>;
  /** Carries out the policy for a source that is gone (job: its last parsed spec, if any). */
  finalize(job: SyncJob | undefined, source: SyncSource, deletionPolicy: DeletionPolicy): Promise<void>;
  /** Adds or removes the SecretSync finalizer (conditional on the object's resourceVersion). */
  setFinalizer(object: SecretSyncObject, present: boolean): Promise<void>;
}

export function createRelease(deps: {
  readonly objects: Objects;
  readonly events: EventRecorder;
  readonly owned: OwnedSecrets;
}): Release {
  const { objects, events, owned } = deps;

  async function releaseSecrets(
    source: SyncSource,
    deletionPolicy: DeletionPolicy,
    keep: ReadonlySet<string>,
  ): Promise<void> {
    const marker = ownerMarker(source);
    for (const secret of owned.ownedBy(source.namespace, marker)) {
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
      const ref = { apiVersion: 'v1', kind: 'Secret', namespace: job.source.namespace, name: target.name };
      const existing = await objects.read<V1Secret>(ref);
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

  return {
    releaseSecrets,
    async finalize(job, source, deletionPolicy) {
      if (job?.creationPolicy === 'Merge') {
        if (deletionPolicy === 'Delete') await releaseMergedKeys(job);
        return;
      }
      await releaseSecrets(source, deletionPolicy, new Set());
    },
    async setFinalizer(object, present) {
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
    },
  };
}
