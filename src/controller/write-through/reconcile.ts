/**
 * What the controller does for one write-through Secret, and for the secrets no Secret names.
 *
 * Commit: the stored Secret names the version the webhook wrote. The first time a stored Secret
 * names a version, that version becomes AWSCURRENT (the webhook staged it `smk-pending`), and the
 * secret is tagged with it (`committed-version`), the Secret's uid and its deletion policy. A
 * version that is already committed is never moved again, so a rotation made in Secrets Manager
 * afterwards stands.
 *
 * Delete: with policy Delete the secret is scheduled for deletion (recovery window), with Retain
 * it is tagged retained; then the finalizer comes off. Any AWS failure keeps the finalizer (the
 * Secret stays Terminating) and is retried.
 *
 * Sweep: a secret this cluster wrote whose Secret does not exist, and never will (a create that
 * Kubernetes refused after the webhook wrote), is deleted after a grace period — at once when it
 * was never committed (nothing consumed it), else with the recovery window.
 */
import type { SecretDescription, SecretWriter } from '../../aws/index.ts';
import {
  type DeletionPolicy,
  pendingStage,
  writeThroughAnnotations,
  writeThroughFinalizer,
  writeThroughTags,
} from '../../core/write-through.ts';

const currentStage = 'AWSCURRENT';

export interface WriteThroughSecret {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly finalizers?: readonly string[];
    readonly deletionTimestamp?: Date | string;
  };
}

export interface ReconcileSettings {
  readonly cluster: string;
  readonly deletionPolicy: DeletionPolicy;
  readonly recoveryWindowDays: number;
}

export interface ReconcileDeps {
  readonly writer: Pick<SecretWriter, 'describe' | 'moveStage' | 'removeStage' | 'tag' | 'delete'>;
  readonly settings: ReconcileSettings;
  /** Replaces the Secret's finalizers (conditional on its resourceVersion). */
  readonly setFinalizers: (secret: WriteThroughSecret, finalizers: string[]) => Promise<void>;
}

export type ReconcileResult =
  | { readonly outcome: 'none' }
  | { readonly outcome: 'committed'; readonly versionId: string; readonly moved: boolean }
  | { readonly outcome: 'tagged' }
  | { readonly outcome: 'deleted'; readonly policy: DeletionPolicy; readonly recoveryWindowDays?: number }
  /** Something a person must look at; not retried until the Secret changes. */
  | { readonly outcome: 'warning'; readonly reason: string; readonly message: string };

export function deletionPolicyOf(secret: WriteThroughSecret, fallback: DeletionPolicy): DeletionPolicy {
  const value = secret.metadata?.annotations?.[writeThroughAnnotations.deletionPolicy];
  return value === 'Retain' || value === 'Delete' ? value : fallback;
}

export function recoveryWindowOf(secret: WriteThroughSecret, fallback: number): number {
  const value = Number(secret.metadata?.annotations?.[writeThroughAnnotations.recoveryWindowDays]);
  return Number.isInteger(value) && value >= 7 && value <= 30 ? value : fallback;
}

function ownedBy(description: SecretDescription, secret: WriteThroughSecret, cluster: string): boolean {
  const tags = description.tags;
  return (
    tags[writeThroughTags.cluster] === cluster &&
    tags[writeThroughTags.namespace] === secret.metadata?.namespace &&
    tags[writeThroughTags.name] === secret.metadata?.name
  );
}

function subjectOf(secret: WriteThroughSecret): string {
  return `Secret ${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
}

async function removeFinalizer(secret: WriteThroughSecret, deps: ReconcileDeps): Promise<void> {
  const finalizers = secret.metadata?.finalizers ?? [];
  if (!finalizers.includes(writeThroughFinalizer)) return;
  await deps.setFinalizers(
    secret,
    finalizers.filter((finalizer) => finalizer !== writeThroughFinalizer),
  );
}

/** A Secret being deleted: apply its deletion policy, then let it go. */
async function finish(secret: WriteThroughSecret, deps: ReconcileDeps): Promise<ReconcileResult> {
  if (!(secret.metadata?.finalizers ?? []).includes(writeThroughFinalizer)) return { outcome: 'none' };
  const arn = secret.metadata?.annotations?.[writeThroughAnnotations.arn];
  const policy = deletionPolicyOf(secret, deps.settings.deletionPolicy);
  const described = arn === undefined ? undefined : await deps.writer.describe(arn);
  let result: ReconcileResult = { outcome: 'deleted', policy };
  if (arn !== undefined && described !== undefined && ownedBy(described, secret, deps.settings.cluster)) {
    if (policy === 'Delete') {
      const recoveryWindowDays = recoveryWindowOf(secret, deps.settings.recoveryWindowDays);
      if (described.deletedDate === undefined) await deps.writer.delete(arn, { recoveryWindowDays });
      result = { outcome: 'deleted', policy, recoveryWindowDays };
    } else {
      await deps.writer.tag(arn, { [writeThroughTags.retained]: 'true' });
    }
  }
  await removeFinalizer(secret, deps);
  return result;
}

/** A live Secret: commit the version it names, keep tags current, keep the finalizer on. */
async function commit(secret: WriteThroughSecret, deps: ReconcileDeps): Promise<ReconcileResult> {
  const annotations = secret.metadata?.annotations ?? {};
  const arn = annotations[writeThroughAnnotations.arn];
  const versionId = annotations[writeThroughAnnotations.versionId];
  if (arn === undefined || versionId === undefined) return { outcome: 'none' };
  const subject = subjectOf(secret);
  const finalizers = secret.metadata?.finalizers ?? [];
  if (!finalizers.includes(writeThroughFinalizer)) {
    await deps.setFinalizers(secret, [...finalizers, writeThroughFinalizer]);
  }
  const described = await deps.writer.describe(arn);
  if (described === undefined) {
    return {
      outcome: 'warning',
      reason: 'SecretMissing',
      message: `${subject}: Secrets Manager secret ${arn} does not exist; the Secret has no value`,
    };
  }
  if (!ownedBy(described, secret, deps.settings.cluster)) {
    return {
      outcome: 'warning',
      reason: 'SecretNotOwned',
      message: `${subject}: Secrets Manager secret ${arn} is not tagged as this Secret's in this cluster; left alone`,
    };
  }
  const tags: Record<string, string> = {};
  let committed = false;
  let moved = false;
  const stages = described.versionsToStages.get(versionId);
  if (described.tags[writeThroughTags.committedVersion] !== versionId) {
    if (stages === undefined) {
      return {
        outcome: 'warning',
        reason: 'VersionMissing',
        message: `${subject}: version ${versionId} of ${arn} does not exist; write the Secret's data again`,
      };
    }
    if (!stages.includes(currentStage)) {
      const current = [...described.versionsToStages].find(([, labels]) =>
        labels.includes(currentStage),
      )?.[0];
      await deps.writer.moveStage(arn, currentStage, versionId, current);
      moved = true;
    }
    tags[writeThroughTags.committedVersion] = versionId;
    committed = true;
  }
  if (stages?.includes(pendingStage)) await deps.writer.removeStage(arn, pendingStage, versionId);
  const uid = secret.metadata?.uid;
  if (uid && described.tags[writeThroughTags.uid] !== uid) tags[writeThroughTags.uid] = uid;
  const policy = deletionPolicyOf(secret, deps.settings.deletionPolicy);
  if (described.tags[writeThroughTags.deletionPolicy] !== policy) {
    tags[writeThroughTags.deletionPolicy] = policy;
  }
  if (described.tags[writeThroughTags.retained] === 'true') tags[writeThroughTags.retained] = 'false';
  if (Object.keys(tags).length > 0) await deps.writer.tag(arn, tags);
  if (committed) return { outcome: 'committed', versionId, moved };
  return Object.keys(tags).length > 0 ? { outcome: 'tagged' } : { outcome: 'none' };
}

export async function reconcileWriteThrough(
  secret: WriteThroughSecret,
  deps: ReconcileDeps,
): Promise<ReconcileResult> {
  if (secret.metadata?.deletionTimestamp) return finish(secret, deps);
  return commit(secret, deps);
}

export interface SweepCandidate {
  readonly secret: SecretDescription;
  readonly namespace: string;
  readonly name: string;
  /** Never committed: delete without recovery. */
  readonly force: boolean;
}

/**
 * The secrets of this cluster that may have lost their Secret: old enough, not deleted, not
 * retained. The caller still checks that the Secret really is gone before deleting.
 */
export function sweepCandidates(
  secrets: readonly SecretDescription[],
  options: {
    readonly cluster: string;
    readonly now: number;
    readonly graceMs: number;
    readonly namespaces?: readonly string[];
  },
): SweepCandidate[] {
  const candidates: SweepCandidate[] = [];
  for (const secret of secrets) {
    const tags = secret.tags;
    const namespace = tags[writeThroughTags.namespace];
    const name = tags[writeThroughTags.name];
    if (tags[writeThroughTags.cluster] !== options.cluster || !namespace || !name) continue;
    if (options.namespaces && options.namespaces.length > 0 && !options.namespaces.includes(namespace))
      continue;
    if (secret.deletedDate !== undefined || tags[writeThroughTags.retained] === 'true') continue;
    const committed = tags[writeThroughTags.committedVersion] !== undefined;
    if (committed && tags[writeThroughTags.deletionPolicy] === 'Retain') continue;
    const changed = (secret.lastChangedDate ?? secret.createdDate)?.getTime() ?? options.now;
    if (options.now - changed < options.graceMs) continue;
    candidates.push({ secret, namespace, name, force: !committed });
  }
  return candidates;
}
