/**
 * The Secret admission of write-through, as a pure function: an AdmissionReview request for a
 * Secret → allow, deny (with a value-free message), store this object (no AWS write), or write
 * this document to Secrets Manager and then store the object built from where it landed.
 *
 * Everything that can refuse a request is checked here, before anything is written: label,
 * name, type, keys, size, annotations, tenancy, immutability. The I/O (./handler.ts) then writes
 * last, so the only refusals left after a write are the API server's own (see pendingStage).
 */
import { z } from 'zod';
import type { SecretTags } from '../../aws/index.ts';
import { isSmkError } from '../../core/errors.ts';
import {
  defaultSecretName,
  encodeSecretData,
  managedByValue,
  maxRecoveryWindowDays,
  minRecoveryWindowDays,
  namespacePrefix,
  writeThroughAnnotations,
  writeThroughFinalizer,
  writeThroughLabel,
  writeThroughTags,
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
  /** Tag value naming this cluster, so two clusters sharing an account never take each other's secrets. */
  readonly cluster: string;
}

export interface WrittenRef {
  readonly arn: string;
  readonly versionId: string;
}

export interface WritePlan {
  /** `create`: a Secret becoming write-through (CreateSecret, or adopting its own leftover). `update`: a new version. */
  readonly mode: 'create' | 'update';
  /** `Secret <namespace>/<name>`, for messages. */
  readonly subject: string;
  readonly namespace: string;
  readonly name: string;
  readonly secretName: string;
  /** The ARN the stored Secret names (update only). */
  readonly arn?: string;
  readonly document: string;
  readonly token: string;
  readonly tags: SecretTags;
  readonly description: string;
  /** The object Kubernetes stores once the value is written. */
  stored(ref: WrittenRef): SecretObject;
}

export type SecretDecision =
  | { readonly kind: 'allow' }
  | { readonly kind: 'deny'; readonly message: string }
  /** Store this object; nothing to write (metadata-only change, same content, dry run, finalizer removal). */
  | { readonly kind: 'store'; readonly object: SecretObject }
  | { readonly kind: 'write'; readonly plan: WritePlan };

/** HMAC of the content (./token.ts), injected so this stays pure. */
export type TokenOf = (secretName: string, document: string) => string;

const awsNamePattern = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';

class Refusal extends Error {}
function refuse(message: string): never {
  throw new Refusal(message);
}

function isWriteThrough(secret: SecretObject | undefined): boolean {
  return secret?.metadata.labels?.[writeThroughLabel] === 'true';
}

/** A Secret smk already wrote through (its stored form names an ARN). */
function wasWrittenThrough(secret: SecretObject | undefined): boolean {
  return secret?.metadata.annotations?.[writeThroughAnnotations.arn] !== undefined;
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

/** The Secrets Manager name this Secret writes to, checked against the namespace's prefix. */
function secretNameFor(
  secret: SecretObject,
  namespace: string,
  name: string,
  settings: WriteThroughSettings,
  subject: string,
): string {
  const given = secret.metadata.annotations?.[writeThroughAnnotations.name];
  const own = namespacePrefix(settings.prefix, namespace);
  if (given === undefined) return defaultSecretName(settings.prefix, namespace, name);
  const annotation = `annotation ${writeThroughAnnotations.name}`;
  if (given.startsWith('arn:')) refuse(`${subject}: ${annotation}: expected a secret name, not an ARN`);
  if (!awsNamePattern.test(given)) {
    refuse(`${subject}: ${annotation}: expected 1–512 of the characters A-Z a-z 0-9 / _ + = . @ -`);
  }
  if (!given.startsWith(own) || given.length === own.length) {
    refuse(
      `${subject}: ${annotation}: ${JSON.stringify(given)} is outside this namespace's prefix ${JSON.stringify(own)}; a namespace writes only under its own prefix`,
    );
  }
  return given;
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
  readonly ref?: WrittenRef;
}

/** The form Kubernetes stores: no data, references in annotations, the finalizer. */
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
  if (references.ref) {
    annotations[writeThroughAnnotations.arn] = references.ref.arn;
    annotations[writeThroughAnnotations.versionId] = references.ref.versionId;
  } else {
    delete annotations[writeThroughAnnotations.arn];
    delete annotations[writeThroughAnnotations.versionId];
  }
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

/** What the stored Secret says about itself (annotations smk set). */
function referencesOf(secret: SecretObject): References {
  const annotations = secret.metadata.annotations ?? {};
  const arn = annotations[writeThroughAnnotations.arn];
  const versionId = annotations[writeThroughAnnotations.versionId];
  return {
    secretName: annotations[writeThroughAnnotations.name] ?? '',
    keys: splitList(annotations[writeThroughAnnotations.keys]),
    base64Keys: splitList(annotations[writeThroughAnnotations.base64Keys]),
    ...(arn !== undefined && versionId !== undefined ? { ref: { arn, versionId } } : {}),
  };
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
export function decideSecret(
  request: SecretReviewRequest,
  settings: WriteThroughSettings,
  tokenOf: TokenOf,
): SecretDecision {
  try {
    return decide(request, settings, tokenOf);
  } catch (error) {
    if (error instanceof Refusal) return { kind: 'deny', message: error.message };
    // The core's checks (keys, size) name the Secret and the field; never a value.
    if (isSmkError(error)) return { kind: 'deny', message: error.message };
    throw error;
  }
}

function decide(
  request: SecretReviewRequest,
  settings: WriteThroughSettings,
  tokenOf: TokenOf,
): SecretDecision {
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
  const owned = wasWrittenThrough(old) || isWriteThrough(old);

  if (secret.metadata.deletionTimestamp) {
    if (hasContent(secret)) refuse(`${subject}: is being deleted; its data can no longer change`);
    return { kind: 'allow' };
  }
  if (!isWriteThrough(secret)) {
    if (owned) {
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
  parsePolicyAnnotations(secret.metadata.annotations ?? {}, subject);

  const stored = old && wasWrittenThrough(old) ? referencesOf(old) : undefined;
  if (!stored && secret.metadata.annotations?.[writeThroughAnnotations.arn] !== undefined) {
    refuse(
      `${subject}: annotation ${writeThroughAnnotations.arn} is set by smk, and a copied write-through Secret carries no value; remove the smk.dev/aws-* annotations and give the data`,
    );
  }
  const secretName = secretNameFor(secret, namespace, name, settings, subject);
  if (stored && stored.secretName !== '' && stored.secretName !== secretName) {
    refuse(
      `${subject}: annotation ${writeThroughAnnotations.name} cannot change (it is ${JSON.stringify(stored.secretName)}); create a new Secret to use another Secrets Manager secret`,
    );
  }

  // A metadata-only change of a written-through Secret (label, annotation, finalizer edits, and
  // every update smk itself makes): keep what the stored Secret references.
  if (stored && !hasContent(secret)) {
    return { kind: 'store', object: storedForm(secret, { ...stored, secretName }) };
  }

  const encoded = encodeSecretData(decodeData(secret, subject), subject);
  const token = tokenOf(secretName, encoded.document);
  const references = { secretName, keys: encoded.keys, base64Keys: encoded.base64Keys };
  if (stored?.ref && stored.ref.versionId === token) {
    return { kind: 'store', object: storedForm(secret, { ...references, ref: stored.ref }) };
  }
  if (old?.immutable) {
    refuse(
      stored
        ? `${subject}: is immutable; its data cannot change (delete and re-create it)`
        : `${subject}: is immutable, so its data cannot be moved to Secrets Manager; create a new Secret with the label`,
    );
  }
  if (request.dryRun) {
    return {
      kind: 'store',
      object: storedForm(secret, { ...references, ...(stored?.ref ? { ref: stored.ref } : {}) }),
    };
  }
  const uid = secret.metadata.uid || old?.metadata.uid;
  const tags: Record<string, string> = {
    [writeThroughTags.managedBy]: managedByValue,
    [writeThroughTags.cluster]: settings.cluster,
    [writeThroughTags.namespace]: namespace,
    [writeThroughTags.name]: name,
    ...(uid ? { [writeThroughTags.uid]: uid } : {}),
  };
  return {
    kind: 'write',
    plan: {
      mode: stored?.ref ? 'update' : 'create',
      subject,
      namespace,
      name,
      secretName,
      ...(stored?.ref ? { arn: stored.ref.arn } : {}),
      document: encoded.document,
      token,
      tags,
      description: `Kubernetes Secret ${namespace}/${name} in cluster ${settings.cluster}, written through by smk`,
      stored: (ref) => storedForm(secret, { ...references, ref }),
    },
  };
}
