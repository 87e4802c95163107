/**
 * The Secret admission of write-through, as a pure function: an AdmissionReview request for a
 * Secret → allow, deny (with a value-free message), or store this object.
 *
 * Admission has no side effect: a new value is not written anywhere, it is sealed to the
 * controller's key (src/core/seal.ts, bound to this cluster, namespace and name) and stored in
 * the annotation `smk.dev/sealed` instead of `data`. The controller writes it to Secrets Manager
 * from what the API server really stored. So a request that did not come from the API server
 * (anyone can POST here) gets only an answer, and the answer depends on nothing secret: the
 * request and the public key.
 *
 * Everything that can refuse a request is checked here: label, name, type, keys, size,
 * annotations, tenancy, immutability, and who may set the sealed annotation (only this webhook).
 */
import * as z from 'zod';
import { isSmkError } from '../../core/errors.ts';
import type { SealBinding } from '../../core/seal.ts';
import {
  encodeSecretData,
  maxRecoveryWindowDays,
  minRecoveryWindowDays,
  secretNameOf,
  writeThroughAnnotations,
  writeThroughFinalizer,
  writeThroughLabel,
} from '../../core/write-through.ts';

const stringMap = z.record(z.string(), z.string());

export const secretObjectSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: z.looseObject({
    name: z.string().optional(),
    generateName: z.string().optional(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    labels: stringMap.nullish(),
    annotations: stringMap.nullish(),
    finalizers: z.array(z.string()).nullish(),
    deletionTimestamp: z.string().nullish(),
  }),
  type: z.string().nullish(),
  data: z.record(z.string(), z.string().nullable()).nullish(),
  stringData: stringMap.nullish(),
  immutable: z.boolean().nullish(),
});
export type SecretObject = z.infer<typeof secretObjectSchema>;

export const secretReviewSchema = z.object({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string().min(1),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }).optional(),
    operation: z.string(),
    namespace: z.string().optional(),
    name: z.string().optional(),
    object: z.unknown(),
    oldObject: z.unknown().optional(),
    dryRun: z.boolean().optional(),
  }),
});
export type SecretReviewRequest = z.infer<typeof secretReviewSchema>['request'];

export interface WriteThroughSettings {
  /** Secrets Manager names start with this; each namespace writes only under `<prefix><namespace>/`. */
  readonly prefix: string;
  /** Names this cluster in tags and in the seal, so two clusters sharing an account never take each other's secrets. */
  readonly cluster: string;
}

/** A new value: seal `document` for `owner` (src/core/seal.ts, the published key), then store `stored(sealed)`. */
export interface SealPlan {
  readonly owner: SealBinding;
  readonly document: string;
  stored(sealed: string): SecretObject;
}

export type SecretDecision =
  | { readonly kind: 'allow' }
  | { readonly kind: 'deny'; readonly message: string }
  /** Store this object: a metadata-only change, nothing to seal. */
  | { readonly kind: 'store'; readonly object: SecretObject }
  | { readonly kind: 'seal'; readonly plan: SealPlan };

const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';

class Refusal extends Error {}
function refuse(message: string): never {
  throw new Refusal(message);
}

function isWriteThrough(secret: SecretObject | undefined): boolean {
  return secret?.metadata.labels?.[writeThroughLabel] === 'true';
}

function decodeData(secret: SecretObject, subject: string): Map<string, Uint8Array> {
  const data = new Map<string, Uint8Array>();
  for (const [key, value] of Object.entries(secret.data ?? {})) {
    const text = value ?? '';
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      refuse(`${subject}: data key ${JSON.stringify(key)} is not base64`);
    }
    data.set(key, new Uint8Array(Buffer.from(text, 'base64')));
  }
  // The API server folds stringData into data before admission; should one arrive, it wins as it would.
  for (const [key, value] of Object.entries(secret.stringData ?? {})) {
    data.set(key, new TextEncoder().encode(value));
  }
  return data;
}

function hasContent(secret: SecretObject): boolean {
  return Object.keys(secret.data ?? {}).length > 0 || Object.keys(secret.stringData ?? {}).length > 0;
}

function sealedOf(secret: SecretObject | undefined): string | undefined {
  return secret?.metadata.annotations?.[writeThroughAnnotations.sealed];
}

function checkType(secret: SecretObject, subject: string): void {
  const type = secret.type ?? 'Opaque';
  if (type.includes('kubernetes.io/')) {
    refuse(
      `${subject}: type ${type} cannot be write-through: the API server requires its keys in data and ` +
        'the components that read it cannot read Secrets Manager; use type Opaque (and mount it), or keep a ' +
        'plain Secret filled by a SecretSync',
    );
  }
}

function parsePolicyAnnotations(annotations: Readonly<Record<string, string>>, subject: string): void {
  const policy = annotations[writeThroughAnnotations.deletionPolicy];
  if (policy !== undefined && policy !== 'Retain' && policy !== 'Delete') {
    refuse(`${subject}: annotation ${writeThroughAnnotations.deletionPolicy}: expected "Retain" or "Delete"`);
  }
  const window = annotations[writeThroughAnnotations.recoveryWindowDays];
  if (window !== undefined) {
    const days = /^\d+$/.test(window) ? Number(window) : Number.NaN;
    if (!(days >= minRecoveryWindowDays && days <= maxRecoveryWindowDays)) {
      refuse(
        `${subject}: annotation ${writeThroughAnnotations.recoveryWindowDays}: expected a whole number of days from ${minRecoveryWindowDays} to ${maxRecoveryWindowDays}`,
      );
    }
  }
}

/** kubectl apply keeps the whole applied object in an annotation: keep it, minus data and stringData. */
function withoutAppliedData(annotations: Record<string, string>): void {
  const text = annotations[lastApplied];
  if (text === undefined) return;
  let applied: unknown;
  try {
    applied = JSON.parse(text);
  } catch {
    delete annotations[lastApplied];
    return;
  }
  if (typeof applied !== 'object' || applied === null || Array.isArray(applied)) {
    delete annotations[lastApplied];
    return;
  }
  const { data: _data, stringData: _stringData, ...rest } = applied as Record<string, unknown>;
  annotations[lastApplied] = `${JSON.stringify(rest)}\n`;
}

interface References {
  readonly secretName: string;
  readonly keys: readonly string[];
  readonly base64Keys: readonly string[];
  /** The sealed value to store; undefined stores none. */
  readonly sealed: string | undefined;
}

/**
 * The form Kubernetes stores: no data, the references the webhook owns (name, keys) and the
 * sealed value in annotations, the finalizer. The controller's annotations (ARN, version) pass
 * through as they came: they are for people, and nothing smk does reads them back.
 */
export function storedForm(secret: SecretObject, references: References): SecretObject {
  const { data: _data, stringData: _stringData, ...rest } = secret;
  const annotations: Record<string, string> = { ...secret.metadata.annotations };
  annotations[writeThroughAnnotations.name] = references.secretName;
  annotations[writeThroughAnnotations.keys] = references.keys.join(',');
  if (references.base64Keys.length > 0) {
    annotations[writeThroughAnnotations.base64Keys] = references.base64Keys.join(',');
  } else {
    delete annotations[writeThroughAnnotations.base64Keys];
  }
  if (references.sealed === undefined) delete annotations[writeThroughAnnotations.sealed];
  else annotations[writeThroughAnnotations.sealed] = references.sealed;
  withoutAppliedData(annotations);
  const finalizers = secret.metadata.finalizers ?? [];
  return {
    ...rest,
    metadata: {
      ...secret.metadata,
      annotations,
      finalizers: finalizers.includes(writeThroughFinalizer)
        ? finalizers
        : [...finalizers, writeThroughFinalizer],
    },
  };
}

function splitList(text: string | undefined): string[] {
  return text === undefined || text === '' ? [] : text.split(',');
}

function parseSecret(raw: unknown, what: string): SecretObject {
  const parsed = secretObjectSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.map(String).join('.') ?? '';
    refuse(`${what}: ${path === '' ? 'object' : path}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Decides what to do with one Secret CREATE or UPDATE (see the module comment). */
export function decideSecret(request: SecretReviewRequest, settings: WriteThroughSettings): SecretDecision {
  try {
    return decide(request, settings);
  } catch (error) {
    if (error instanceof Refusal) return { kind: 'deny', message: error.message };
    // The core's checks (keys, size) name the Secret and the field; never a value.
    if (isSmkError(error)) return { kind: 'deny', message: error.message };
    throw error;
  }
}

function decide(request: SecretReviewRequest, settings: WriteThroughSettings): SecretDecision {
  const isSecret =
    request.kind === undefined || (request.kind.group === '' && request.kind.kind === 'Secret');
  if (!isSecret || (request.operation !== 'CREATE' && request.operation !== 'UPDATE'))
    return { kind: 'allow' };
  const secret = parseSecret(request.object, 'Secret');
  const old =
    request.operation === 'UPDATE' && request.oldObject != null
      ? parseSecret(request.oldObject, 'Secret (stored)')
      : undefined;
  const namespace = request.namespace ?? secret.metadata.namespace ?? '';
  const name = secret.metadata.name || request.name || '';
  const subject = `Secret ${namespace}/${name || '(generated name)'}`;
  const wasWriteThrough = isWriteThrough(old);

  if (secret.metadata.deletionTimestamp) {
    if (hasContent(secret) || sealedOf(secret) !== sealedOf(old)) {
      refuse(`${subject}: is being deleted; its data can no longer change`);
    }
    return { kind: 'allow' };
  }
  if (!isWriteThrough(secret)) {
    if (wasWriteThrough) {
      refuse(
        `${subject}: label ${writeThroughLabel} cannot be removed: the value lives in Secrets Manager, not in ` +
          'the Secret. Delete the Secret (its deletion policy applies) and create it again without the label',
      );
    }
    return { kind: 'allow' };
  }
  if (namespace === '') refuse(`${subject}: no namespace in the request`);
  if (name === '') {
    refuse(
      `${subject}: metadata.generateName is not supported for write-through Secrets (the Secrets Manager name comes from the Secret's name); give metadata.name`,
    );
  }
  if (name.length > 253 || !dnsSubdomain.test(name)) {
    refuse(`${subject}: metadata.name: expected a DNS subdomain name (lower case, digits, "-" and ".")`);
  }
  checkType(secret, subject);
  if (old && (old.type ?? 'Opaque') !== (secret.type ?? 'Opaque')) refuse(`${subject}: type cannot change`);
  const annotations = secret.metadata.annotations ?? {};
  parsePolicyAnnotations(annotations, subject);

  const target = secretNameOf(settings.prefix, namespace, name, annotations);
  if ('problem' in target) refuse(`${subject}: ${target.problem}`);
  const secretName = target.name;
  const before = wasWriteThrough
    ? secretNameOf(settings.prefix, namespace, name, old?.metadata.annotations)
    : undefined;
  if (before && 'name' in before && before.name !== secretName) {
    refuse(
      `${subject}: annotation ${writeThroughAnnotations.name} cannot change (it is ${JSON.stringify(before.name)}); create a new Secret to use another Secrets Manager secret`,
    );
  }

  if (!wasWriteThrough) {
    // A Secret becoming write-through (created, or labelled now) starts from its data alone:
    // smk's annotations on it were not made by smk for this Secret (a copy, or a forgery).
    const foreign = [
      writeThroughAnnotations.sealed,
      writeThroughAnnotations.arn,
      writeThroughAnnotations.versionId,
    ].filter((key) => annotations[key] !== undefined);
    if (foreign.length > 0) {
      refuse(
        `${subject}: annotation ${foreign.join(', ')} is set by smk, and a copied write-through Secret carries no value; remove the smk.dev/aws-* and smk.dev/sealed annotations and give the data`,
      );
    }
  } else if (!hasContent(secret)) {
    // A metadata-only change (label, annotation, finalizer edits; the controller replacing the
    // sealed value by the version it wrote): the webhook's references stay as it set them, and
    // the sealed value may stay or go, never be swapped for one this webhook did not make.
    const sealed = sealedOf(secret);
    if (sealed !== undefined && sealed !== sealedOf(old)) {
      refuse(
        `${subject}: annotation ${writeThroughAnnotations.sealed} is set by smk only; give the new value as data`,
      );
    }
    const oldAnnotations = old?.metadata.annotations ?? {};
    return {
      kind: 'store',
      object: storedForm(secret, {
        secretName,
        keys: splitList(oldAnnotations[writeThroughAnnotations.keys]),
        base64Keys: splitList(oldAnnotations[writeThroughAnnotations.base64Keys]),
        sealed,
      }),
    };
  }

  if (old?.immutable) {
    refuse(
      wasWriteThrough
        ? `${subject}: is immutable; its data cannot change (delete and re-create it)`
        : `${subject}: is immutable, so its data cannot be moved to Secrets Manager; create a new Secret with the label`,
    );
  }
  const encoded = encodeSecretData(decodeData(secret, subject), subject);
  return {
    kind: 'seal',
    plan: {
      owner: { cluster: settings.cluster, namespace, name },
      document: encoded.document,
      stored: (sealed) =>
        storedForm(secret, { secretName, keys: encoded.keys, base64Keys: encoded.base64Keys, sealed }),
    },
  };
}
