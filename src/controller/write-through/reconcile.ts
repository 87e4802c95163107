/**
 * What the controller does for one write-through Secret, and for the secrets no Secret names.
 * It acts only on what the API server stored (its watch), never on an admission request.
 *
 * Which secret: derived from the Secret's namespace and name (or its `smk.dev/aws-secret-name`,
 * only under `<prefix><namespace>/`), never from the ARN or version annotations, which are for
 * people. Before any write, stage move, tag, restore or delete, the secret's tags must say it is
 * this Secret's in this cluster (cluster, namespace, name); a secret of that name that is not is
 * left alone, with a Warning on the Secret. A new secret is created with those tags in one call.
 *
 * Write: a Secret carrying a sealed value (the webhook sealed it at admission) is opened with
 * the controller's key, only for this cluster, namespace and name. Its content token (keyed,
 * ../../core/seal.ts) is the ClientRequestToken: content already committed writes nothing (a
 * rotation made in Secrets Manager since stands); content an older version holds is made
 * AWSCURRENT again; new content becomes a new AWSCURRENT version. Then the sealed value is
 * replaced by the ARN and version, conditional on the Secret's resourceVersion: a newer value
 * stored meanwhile is written next, never lost.
 *
 * Delete: with policy Delete the secret is scheduled for deletion (recovery window), with Retain
 * it is tagged retained; then the finalizer comes off. Any AWS failure keeps the finalizer (the
 * Secret stays Terminating) and is retried.
 *
 * Sweep: a secret this cluster wrote whose Secret no longer exists (its finalizer was taken off
 * by hand) is deleted after a grace period — at once when it was never committed, else with the
 * recovery window.
 */
import type { SecretDescription, SecretTags, SecretWriter } from '../../aws/index.ts';
import { InvalidInputError, TransientError } from '../../core/errors.ts';
import { contentToken, openSealed, type SealingKeyPair } from '../../core/seal.ts';
import { currentStage } from '../../core/source.ts';
import {
  type DeletionPolicy,
  decodeSecretDocument,
  managedByValue,
  secretNameOf,
  writeThroughAnnotations,
  writeThroughFinalizer,
  writeThroughTags,
} from '../../core/write-through.ts';

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
  /** Secrets Manager names start with this; a namespace's with `<prefix><namespace>/`. */
  readonly prefix: string;
  readonly deletionPolicy: DeletionPolicy;
  readonly recoveryWindowDays: number;
  /** KMS key (id, alias or ARN) new secrets are encrypted with; default the account's aws/secretsmanager key. */
  readonly kmsKeyId?: string;
}

export interface ReconcileDeps {
  readonly writer: Pick<
    SecretWriter,
    'create' | 'putValue' | 'describe' | 'moveStage' | 'tag' | 'delete' | 'restore'
  >;
  readonly settings: ReconcileSettings;
  /** The sealing key pair; undefined while it is not loaded yet. */
  readonly keyPair: () => SealingKeyPair | undefined;
  /** Replaces the Secret's finalizers (conditional on its resourceVersion). */
  readonly setFinalizers: (secret: WriteThroughSecret, finalizers: string[]) => Promise<void>;
  /** Sets (or with null removes) annotations, conditional on the Secret's resourceVersion. */
  readonly setAnnotations: (
    secret: WriteThroughSecret,
    annotations: Readonly<Record<string, string | null>>,
  ) => Promise<void>;
}

export type ReconcileResult =
  | { readonly outcome: 'none' }
  /** A sealed value landed: `change` says what Secrets Manager did with it. */
  | {
      readonly outcome: 'written';
      readonly secretName: string;
      readonly versionId: string;
      readonly change: 'created' | 'new-version' | 'made-current' | 'unchanged';
    }
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

interface Owner {
  readonly cluster: string;
  readonly namespace: string;
  readonly name: string;
}

/** The ownership check before every change to an existing secret. */
function ownedBy(description: SecretDescription, owner: Owner): boolean {
  const tags = description.tags;
  return (
    tags[writeThroughTags.cluster] === owner.cluster &&
    tags[writeThroughTags.namespace] === owner.namespace &&
    tags[writeThroughTags.name] === owner.name
  );
}

function notOwned(subject: string, secretName: string, owner: Owner): ReconcileResult {
  return {
    outcome: 'warning',
    reason: 'SecretNotOwned',
    message: `${subject}: Secrets Manager secret ${secretName} exists and is not tagged as this Secret's in cluster ${owner.cluster}; nothing was written to it. Name another with annotation ${writeThroughAnnotations.name}, or remove it`,
  };
}

async function removeFinalizer(secret: WriteThroughSecret, deps: ReconcileDeps): Promise<void> {
  const finalizers = secret.metadata?.finalizers ?? [];
  if (!finalizers.includes(writeThroughFinalizer)) return;
  await deps.setFinalizers(
    secret,
    finalizers.filter((finalizer) => finalizer !== writeThroughFinalizer),
  );
}

/** A Secret being deleted: apply its deletion policy to its own secret, then let it go. */
async function finish(
  secret: WriteThroughSecret,
  owner: Owner,
  secretName: string | undefined,
  deps: ReconcileDeps,
): Promise<ReconcileResult> {
  if (!(secret.metadata?.finalizers ?? []).includes(writeThroughFinalizer)) return { outcome: 'none' };
  const policy = deletionPolicyOf(secret, deps.settings.deletionPolicy);
  const described = secretName === undefined ? undefined : await deps.writer.describe(secretName);
  let result: ReconcileResult = { outcome: 'deleted', policy };
  if (described !== undefined && ownedBy(described, owner)) {
    if (policy === 'Delete') {
      const recoveryWindowDays = recoveryWindowOf(secret, deps.settings.recoveryWindowDays);
      if (described.deletedDate === undefined)
        await deps.writer.delete(described.arn, { recoveryWindowDays });
      result = { outcome: 'deleted', policy, recoveryWindowDays };
    } else {
      await deps.writer.tag(described.arn, { [writeThroughTags.retained]: 'true' });
    }
  }
  await removeFinalizer(secret, deps);
  return result;
}

/** The tags a committed secret carries besides ownership: uid, policy, not retained. */
function bookkeepingTags(
  secret: WriteThroughSecret,
  current: SecretTags,
  deps: ReconcileDeps,
): Record<string, string> {
  const tags: Record<string, string> = {};
  const uid = secret.metadata?.uid;
  if (uid && current[writeThroughTags.uid] !== uid) tags[writeThroughTags.uid] = uid;
  const policy = deletionPolicyOf(secret, deps.settings.deletionPolicy);
  if (current[writeThroughTags.deletionPolicy] !== policy) tags[writeThroughTags.deletionPolicy] = policy;
  if (current[writeThroughTags.retained] === 'true') tags[writeThroughTags.retained] = 'false';
  return tags;
}

/** Opens the sealed value and writes it (see the module comment). */
async function write(
  secret: WriteThroughSecret,
  owner: Owner,
  subject: string,
  secretName: string,
  described: SecretDescription | undefined,
  sealed: string,
  deps: ReconcileDeps,
): Promise<ReconcileResult> {
  const keyPair = deps.keyPair();
  if (keyPair === undefined) throw new TransientError(`${subject}: the sealing key is not loaded yet`);
  let document: string;
  try {
    document = new TextDecoder('utf-8', { fatal: true }).decode(openSealed(keyPair, owner, sealed, subject));
    decodeSecretDocument(document, subject);
  } catch (error) {
    if (!(error instanceof InvalidInputError || error instanceof TypeError)) throw error;
    return {
      outcome: 'warning',
      reason: 'SealNotOpened',
      message:
        error instanceof InvalidInputError
          ? `${error.message}; give the Secret's data again`
          : `${subject}: the sealed value is not text; give the Secret's data again`,
    };
  }
  const token = contentToken(keyPair, secretName, document);
  let arn: string;
  let change: 'created' | 'new-version' | 'made-current' | 'unchanged' = 'unchanged';
  if (described === undefined) {
    const created = await deps.writer.create({
      name: secretName,
      value: document,
      clientRequestToken: token,
      tags: {
        [writeThroughTags.managedBy]: managedByValue,
        [writeThroughTags.cluster]: owner.cluster,
        [writeThroughTags.namespace]: owner.namespace,
        [writeThroughTags.name]: owner.name,
        [writeThroughTags.committedVersion]: token,
        [writeThroughTags.deletionPolicy]: deletionPolicyOf(secret, deps.settings.deletionPolicy),
        ...(secret.metadata?.uid ? { [writeThroughTags.uid]: secret.metadata.uid } : {}),
      },
      description: `Kubernetes Secret ${owner.namespace}/${owner.name} in cluster ${owner.cluster}, written through by smk`,
      ...(deps.settings.kmsKeyId === undefined ? {} : { kmsKeyId: deps.settings.kmsKeyId }),
    });
    // Made by someone else between the describe and the create: its tags decide on the retry.
    if (!created.created) throw new TransientError(`${subject}: secret ${secretName} appeared meanwhile`);
    arn = created.version.arn;
    change = 'created';
  } else {
    arn = described.arn;
    // A Secret deleted with a recovery window and made again: take its secret back.
    if (described.deletedDate !== undefined) await deps.writer.restore(arn);
    const tags = bookkeepingTags(secret, described.tags, deps);
    if (described.tags[writeThroughTags.committedVersion] !== token) {
      const current = [...described.versionsToStages].find(([, labels]) =>
        labels.includes(currentStage),
      )?.[0];
      const stages = described.versionsToStages.get(token);
      let landed = stages ?? [];
      if (stages === undefined) {
        const put = await deps.writer.putValue({ id: arn, value: document, clientRequestToken: token });
        landed = put.stages;
        change = 'new-version';
      }
      // AWS ignores a put whose token an older (deprecated) version holds: move the stage then.
      if (!landed.includes(currentStage)) {
        await deps.writer.moveStage(arn, currentStage, token, current);
        if (change === 'unchanged') change = 'made-current';
      }
      tags[writeThroughTags.committedVersion] = token;
    }
    if (Object.keys(tags).length > 0) await deps.writer.tag(arn, tags);
  }
  await deps.setAnnotations(secret, {
    [writeThroughAnnotations.sealed]: null,
    [writeThroughAnnotations.arn]: arn,
    [writeThroughAnnotations.versionId]: token,
  });
  return { outcome: 'written', secretName, versionId: token, change };
}

/** A live Secret: write its sealed value, or keep tags and the informational annotations true. */
async function reconcileLive(
  secret: WriteThroughSecret,
  owner: Owner,
  subject: string,
  secretName: string,
  deps: ReconcileDeps,
): Promise<ReconcileResult> {
  const annotations = secret.metadata?.annotations ?? {};
  const finalizers = secret.metadata?.finalizers ?? [];
  if (!finalizers.includes(writeThroughFinalizer)) {
    await deps.setFinalizers(secret, [...finalizers, writeThroughFinalizer]);
  }
  const described = await deps.writer.describe(secretName);
  if (described !== undefined && !ownedBy(described, owner)) return notOwned(subject, secretName, owner);
  const sealed = annotations[writeThroughAnnotations.sealed];
  if (sealed !== undefined) return write(secret, owner, subject, secretName, described, sealed, deps);
  if (described === undefined) {
    return {
      outcome: 'warning',
      reason: 'SecretMissing',
      message: `${subject}: Secrets Manager secret ${secretName} does not exist; the Secret has no value (give its data again)`,
    };
  }
  const tags = bookkeepingTags(secret, described.tags, deps);
  if (Object.keys(tags).length > 0) await deps.writer.tag(described.arn, tags);
  const committed = described.tags[writeThroughTags.committedVersion];
  const truth: Record<string, string> = {
    [writeThroughAnnotations.arn]: described.arn,
    ...(committed === undefined ? {} : { [writeThroughAnnotations.versionId]: committed }),
  };
  if (Object.entries(truth).some(([key, value]) => annotations[key] !== value)) {
    await deps.setAnnotations(secret, truth);
  }
  return Object.keys(tags).length > 0 ? { outcome: 'tagged' } : { outcome: 'none' };
}

export async function reconcileWriteThrough(
  secret: WriteThroughSecret,
  deps: ReconcileDeps,
): Promise<ReconcileResult> {
  const owner: Owner = {
    cluster: deps.settings.cluster,
    namespace: secret.metadata?.namespace ?? '',
    name: secret.metadata?.name ?? '',
  };
  const subject = `Secret ${owner.namespace}/${owner.name}`;
  const target = secretNameOf(
    deps.settings.prefix,
    owner.namespace,
    owner.name,
    secret.metadata?.annotations,
  );
  if (secret.metadata?.deletionTimestamp) {
    return finish(secret, owner, 'name' in target ? target.name : undefined, deps);
  }
  if ('problem' in target) {
    return { outcome: 'warning', reason: 'InvalidName', message: `${subject}: ${target.problem}` };
  }
  return reconcileLive(secret, owner, subject, target.name, deps);
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
