/**
 * The decision at the heart of a sync, as a pure function: given what we want a Secret to hold and
 * the Secret as it is now, do we create it, update it, leave it, or refuse? Refusal protects data
 * we do not own: a Secret without smk's owner marker for this source is never written unless the
 * source says `creationPolicy: Merge`, the Secret is Opaque and names the source in its
 * `smk.dev/merge-from` annotation (an opt-in only someone who may write that Secret can give), and
 * then only the source's own keys.
 */
import type { V1ManagedFieldsEntry, V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { fieldManager } from '../../kube/apply.ts';
import {
  annotations,
  type CreationPolicy,
  managedByLabel,
  managedByValue,
  mergeableSecretType,
  ownerMarker,
  type SyncSource,
  type SyncTarget,
  secretSyncKind,
  spcKind,
} from '../jobs.ts';

export type RefusalReason =
  | 'SecretNotOwned'
  | 'SecretMissing'
  | 'SecretTypeMismatch'
  | 'MergeNotAllowed'
  | 'SecretTypeNotMergeable'
  | 'SecretImmutable';

export type WritePlan =
  | {
      readonly action: 'create';
      readonly body: V1Secret;
      readonly force: boolean;
      readonly manager: string;
    }
  | {
      readonly action: 'update';
      readonly body: V1Secret;
      readonly force: boolean;
      readonly manager: string;
      /** The Secret still carries smk's create entry: adopt it into the apply entry first. */
      readonly adoptCreated: boolean;
    }
  | { readonly action: 'unchanged' }
  | { readonly action: 'refuse'; readonly reason: RefusalReason; readonly message: string };

export interface DesiredSecret {
  readonly source: SyncSource;
  readonly target: SyncTarget;
  readonly creationPolicy: CreationPolicy;
  readonly data: Readonly<Record<string, string>>;
  /** Object name → the versionId the data holds (recorded on a SecretProviderClass's own Secret). */
  readonly versions?: Readonly<Record<string, string>>;
}

/**
 * The field manager of smk's create. A first sync creates the Secret outright rather than reading
 * it first (one API request instead of two per object at a cold start: a 409 says it exists).
 * A create records an Update entry, and apply never takes a field back from another entry, so a
 * key dropped later would stay; the first update therefore turns this entry into smk's Apply entry
 * (adoptCreatedFields), as kubectl does when it moves client-side apply to server-side apply.
 */
export const createManager = `${fieldManager}-create`;

/**
 * The field manager a source applies with. Owner and Orphan Secrets have exactly one source (the
 * owner marker says which), so they share `smk`. Several sources may merge into one Secret, and
 * apply replaces everything a manager applied before, so each merging source needs its own name.
 */
export function managerFor(source: SyncSource, creationPolicy: CreationPolicy): string {
  if (creationPolicy !== 'Merge') return fieldManager;
  return `${fieldManager}-merge-${source.uid || `${source.kind}/${source.name}`}`.slice(0, 128);
}

export function ownerReference(source: SyncSource): V1OwnerReference {
  return {
    apiVersion: source.apiVersion,
    kind: source.kind,
    name: source.name,
    uid: source.uid,
    controller: true,
  };
}

/** The apply configuration: exactly the fields this source owns on the Secret. */
export function desiredBody(desired: DesiredSecret): V1Secret {
  const { source, target } = desired;
  if (desired.creationPolicy === 'Merge') {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: target.name,
        namespace: source.namespace,
        ...(Object.keys(target.labels).length > 0 ? { labels: { ...target.labels } } : {}),
        ...(Object.keys(target.annotations).length > 0 ? { annotations: { ...target.annotations } } : {}),
      },
      data: { ...desired.data },
    };
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: target.name,
      namespace: source.namespace,
      labels: { ...target.labels, [managedByLabel]: managedByValue },
      annotations: {
        ...target.annotations,
        [annotations.owner]: ownerMarker(source),
        // Merged Secrets are left out: several sources would contend for one annotation.
        ...(source.kind === spcKind && desired.versions
          ? { [annotations.versions]: JSON.stringify(desired.versions) }
          : {}),
      },
      ...(desired.creationPolicy === 'Owner' ? { ownerReferences: [ownerReference(source)] } : {}),
    },
    type: target.type,
    data: { ...desired.data },
    ...(target.immutable ? { immutable: true } : {}),
  };
}

/** True when `secret` carries this source's owner marker. */
export function ownedBy(secret: V1Secret, source: SyncSource): boolean {
  return secret.metadata?.annotations?.[annotations.owner] === ownerMarker(source);
}

/**
 * True when `secret`'s `smk.dev/merge-from` annotation names `source`: `Kind/name` as the owner
 * marker, or a bare name for a SecretSync; entries separated by commas or spaces.
 */
export function mergeAllowed(secret: V1Secret, source: SyncSource): boolean {
  const listed = secret.metadata?.annotations?.[annotations.mergeFrom] ?? '';
  const marker = ownerMarker(source);
  return listed
    .split(/[\s,]+/)
    .some((entry) => entry === marker || (source.kind === secretSyncKind && entry === source.name));
}

type FieldSet = Record<string, unknown>;

/** True for the entries whose fields `manager` wrote: its Apply entry, and for `smk` its create. */
function writtenBy(entry: V1ManagedFieldsEntry, manager: string): boolean {
  if (entry.manager === manager && entry.operation === 'Apply') return true;
  return manager === fieldManager && entry.manager === createManager && entry.operation === 'Update';
}

function createdEntry(
  entries: readonly V1ManagedFieldsEntry[] | undefined,
): V1ManagedFieldsEntry | undefined {
  return entries?.find((entry) => entry.manager === createManager && entry.operation === 'Update');
}

function mergeFieldSets(into: FieldSet, from: FieldSet): FieldSet {
  const merged: FieldSet = { ...into };
  for (const [key, value] of Object.entries(from)) {
    const present = merged[key];
    merged[key] =
      present && typeof present === 'object' && value && typeof value === 'object'
        ? mergeFieldSets(present as FieldSet, value as FieldSet)
        : value;
  }
  return merged;
}

/**
 * The Secret's whole managedFields with smk's create entry folded into `manager`'s Apply entry, or
 * undefined when there is no create entry. Other managers' entries are kept as they are.
 */
export function adoptCreatedFields(
  entries: readonly V1ManagedFieldsEntry[] | undefined,
  manager: string,
): V1ManagedFieldsEntry[] | undefined {
  const created = createdEntry(entries);
  if (!entries || !created) return undefined;
  const applied = entries.find((entry) => entry.manager === manager && entry.operation === 'Apply');
  const adopted: V1ManagedFieldsEntry = {
    manager,
    operation: 'Apply',
    apiVersion: created.apiVersion ?? 'v1',
    fieldsType: 'FieldsV1',
    fieldsV1: mergeFieldSets(
      (applied?.fieldsV1 as FieldSet | undefined) ?? {},
      (created.fieldsV1 as FieldSet) ?? {},
    ),
    ...(created.time ? { time: created.time } : {}),
  };
  return [...entries.filter((entry) => entry !== created && entry !== applied), adopted];
}

/** The names under `f:metadata.f:<section>` / `f:<section>` that `manager` applied. */
function appliedNames(
  entries: readonly V1ManagedFieldsEntry[] | undefined,
  manager: string,
  path: string[],
): Set<string> {
  const names = new Set<string>();
  for (const entry of entries ?? []) {
    if (!writtenBy(entry, manager)) continue;
    let node: unknown = entry.fieldsV1;
    for (const step of path) node = (node as FieldSet | undefined)?.[step];
    if (node && typeof node === 'object') {
      for (const field of Object.keys(node)) if (field.startsWith('f:')) names.add(field.slice(2));
    }
  }
  return names;
}

function sameSection(
  want: Readonly<Record<string, string>> | undefined,
  have: Readonly<Record<string, string>> | undefined,
  applied: ReadonlySet<string>,
): boolean {
  const wanted = want ?? {};
  for (const [key, value] of Object.entries(wanted)) if (have?.[key] !== value) return false;
  for (const key of applied)
    if (!Object.hasOwn(wanted, key) && have && Object.hasOwn(have, key)) return false;
  return true;
}

/** True when applying `body` with `manager` would change nothing on `existing`. */
export function appliesCleanly(body: V1Secret, existing: V1Secret, manager: string): boolean {
  const managed = existing.metadata?.managedFields;
  if (body.type !== undefined && body.type !== existing.type) return false;
  if ((body.immutable ?? false) !== (existing.immutable ?? false) && body.immutable !== undefined)
    return false;
  if (!sameSection(body.data, existing.data, appliedNames(managed, manager, ['f:data']))) return false;
  const labels = appliedNames(managed, manager, ['f:metadata', 'f:labels']);
  if (!sameSection(body.metadata?.labels, existing.metadata?.labels, labels)) return false;
  const notes = appliedNames(managed, manager, ['f:metadata', 'f:annotations']);
  if (!sameSection(body.metadata?.annotations, existing.metadata?.annotations, notes)) return false;
  const wantRefs = (body.metadata?.ownerReferences ?? []).map((ref) => ref.uid).sort();
  const appliedRefs = appliedRefUids(managed, manager);
  const haveRefs = new Set((existing.metadata?.ownerReferences ?? []).map((ref) => ref.uid));
  for (const uid of wantRefs) if (!haveRefs.has(uid)) return false;
  for (const uid of appliedRefs) if (!wantRefs.includes(uid) && haveRefs.has(uid)) return false;
  return true;
}

function appliedRefUids(entries: readonly V1ManagedFieldsEntry[] | undefined, manager: string): string[] {
  const uids: string[] = [];
  for (const entry of entries ?? []) {
    if (!writtenBy(entry, manager)) continue;
    const refs = ((entry.fieldsV1 as FieldSet | undefined)?.['f:metadata'] as FieldSet | undefined)?.[
      'f:ownerReferences'
    ];
    if (!refs || typeof refs !== 'object') continue;
    for (const key of Object.keys(refs)) {
      const match = /^k:(\{.*\})$/.exec(key);
      if (!match?.[1]) continue;
      try {
        const uid = (JSON.parse(match[1]) as { uid?: unknown }).uid;
        if (typeof uid === 'string') uids.push(uid);
      } catch {
        // A key we cannot read is not ours to judge.
      }
    }
  }
  return uids;
}

function withResourceVersion(body: V1Secret, existing: V1Secret): V1Secret {
  const resourceVersion = existing.metadata?.resourceVersion;
  return resourceVersion ? { ...body, metadata: { ...body.metadata, resourceVersion } } : body;
}

/** Decides what to do with one target Secret. `existing` is the Secret as read just now (or undefined). */
export function planSecretWrite(desired: DesiredSecret, existing: V1Secret | undefined): WritePlan {
  const { source, target } = desired;
  const manager = managerFor(source, desired.creationPolicy);
  const body = desiredBody(desired);
  const secret = `Secret ${source.namespace}/${target.name}`;
  if (desired.creationPolicy === 'Merge') {
    if (!existing) {
      return {
        action: 'refuse',
        reason: 'SecretMissing',
        message: `${secret} does not exist; creationPolicy Merge only adds keys to an existing Secret`,
      };
    }
    // The opt-in first: a Secret that did not invite this source tells it nothing more (not its type).
    if (!mergeAllowed(existing, source)) {
      return {
        action: 'refuse',
        reason: 'MergeNotAllowed',
        message: `${secret} does not name ${ownerMarker(source)} in its ${annotations.mergeFrom} annotation; creationPolicy Merge writes only into a Secret that someone who may write it opted in`,
      };
    }
    if ((existing.type ?? mergeableSecretType) !== mergeableSecretType) {
      return {
        action: 'refuse',
        reason: 'SecretTypeNotMergeable',
        message: `${secret} has type ${existing.type}; creationPolicy Merge writes only into ${mergeableSecretType} Secrets`,
      };
    }
    if (appliesCleanly(body, existing, manager)) return { action: 'unchanged' };
    if (existing.immutable) {
      return {
        action: 'refuse',
        reason: 'SecretImmutable',
        message: `${secret} is immutable; creationPolicy Merge cannot add keys to it`,
      };
    }
    // Conditional on the Secret as judged: an opt-in withdrawn meanwhile fails the write (409).
    return {
      action: 'update',
      body: withResourceVersion(body, existing),
      force: true,
      manager,
      adoptCreated: false,
    };
  }
  if (!existing) return { action: 'create', body, force: false, manager };
  if (!ownedBy(existing, source)) {
    const other = existing.metadata?.annotations?.[annotations.owner];
    return {
      action: 'refuse',
      reason: 'SecretNotOwned',
      message: other
        ? `${secret} is synced by ${other}; not overwriting it`
        : `${secret} exists and was not created by smk; not overwriting it (use creationPolicy: Merge to add keys to it)`,
    };
  }
  if ((existing.type ?? 'Opaque') !== target.type) {
    return {
      action: 'refuse',
      reason: 'SecretTypeMismatch',
      message: `${secret} has type ${existing.type ?? 'Opaque'} but the target asks for ${target.type}; a Secret's type cannot change (delete the Secret to recreate it)`,
    };
  }
  if (appliesCleanly(body, existing, manager)) return { action: 'unchanged' };
  if (existing.immutable) {
    return {
      action: 'refuse',
      reason: 'SecretImmutable',
      message: `${secret} is immutable and the source would change it; delete the Secret to let smk create it anew (with immutable, a change needs a new Secret)`,
    };
  }
  // Ours: take back any field someone else changed by hand, and refuse to write over a newer version.
  return {
    action: 'update',
    body: withResourceVersion(body, existing),
    force: true,
    manager,
    adoptCreated: createdEntry(existing.metadata?.managedFields) !== undefined,
  };
}
