/**
 * Write-through: a Kubernetes Secret labelled `smk.dev/write-through: "true"` keeps its value in
 * Secrets Manager and only references in etcd. This is the contract the webhook (which seals a
 * new value, ./seal.ts) and the controller (which writes it, commits and deletes) share: names of
 * the label, annotations, finalizer and tags, which Secrets Manager secret a Secret maps to, and
 * the stored format.
 *
 * Stored format (SecretString, version 1): one JSON object, keys in code-point order, each
 * Secret key → its value as a string when the bytes are valid UTF-8 (kept exactly, BOM
 * included); otherwise the value is base64 of the bytes and the key is listed in the member
 * `"smk.dev/base64"` (sorted). That member name can never be a Secret key (keys cannot contain
 * "/"), and it is only present when some value needed it. Example:
 *   {"password":"…","username":"app","smk.dev/base64":["keystore.p12"],"keystore.p12":"MIIK…"}
 */
import * as z from 'zod';
import { InvalidInputError, TooLargeError } from './errors.ts';

export const writeThroughLabel = 'smk.dev/write-through';
export const writeThroughFinalizer = 'smk.dev/write-through';

/** Annotations on a write-through Secret. `name`, `deletionPolicy` and `recoveryWindowDays` are the user's. */
export const writeThroughAnnotations = {
  /** The Secrets Manager secret name (default: the configured prefix + `<namespace>/<name>`). */
  name: 'smk.dev/aws-secret-name',
  /** Set by the webhook: a new value sealed to the controller's key, until the controller wrote it. */
  sealed: 'smk.dev/sealed',
  /** Set by the controller, for people: the secret's ARN (nothing smk does reads it back). */
  arn: 'smk.dev/aws-secret-arn',
  /** Set by the controller, for people: the version the Secret's content was written as. */
  versionId: 'smk.dev/aws-version-id',
  /** Set by smk: the Secret's keys, comma-separated (a Secret key cannot contain a comma). */
  keys: 'smk.dev/keys',
  /** Set by smk: the keys whose values are not UTF-8 and are stored base64. */
  base64Keys: 'smk.dev/base64-keys',
  /** Retain | Delete: what deleting the Secret does to the Secrets Manager secret. */
  deletionPolicy: 'smk.dev/deletion-policy',
  /** 7–30: the recovery window of a Delete. */
  recoveryWindowDays: 'smk.dev/recovery-window-days',
} as const;

/** Tags on the Secrets Manager secret: whose it is, and what Kubernetes has committed. */
export const writeThroughTags = {
  managedBy: 'smk.dev/managed-by',
  cluster: 'smk.dev/cluster',
  namespace: 'smk.dev/namespace',
  name: 'smk.dev/name',
  /** The Secret's uid. */
  uid: 'smk.dev/uid',
  /** The version the controller last wrote from the Secret and made AWSCURRENT. */
  committedVersion: 'smk.dev/committed-version',
  /** The Secret's deletion policy as of its last commit (the sweep honours Retain without the Secret). */
  deletionPolicy: 'smk.dev/deletion-policy',
  /** "true" after the Secret was deleted with policy Retain: the secret outlives it on purpose. */
  retained: 'smk.dev/retained',
} as const;

export const managedByValue = 'smk-write-through';

export const base64Member = 'smk.dev/base64';

export type DeletionPolicy = 'Retain' | 'Delete';
export const minRecoveryWindowDays = 7;
export const maxRecoveryWindowDays = 30;

/** Kubernetes Secret key syntax (validation.IsConfigMapKey). */
const secretKeyPattern = /^[-._a-zA-Z0-9]+$/;
const maxSecretKeyLength = 253;
/** SecretString limit. */
export const maxDocumentBytes = 65_536;

export function secretKeyProblem(key: string): string | undefined {
  if (key.length === 0 || key.length > maxSecretKeyLength)
    return `must be 1–${maxSecretKeyLength} characters`;
  if (!secretKeyPattern.test(key)) return 'may contain only letters, digits, "-", "_" and "."';
  if (key === '.' || key === '..' || key.startsWith('..')) return 'must not be "." or start with ".."';
  return undefined;
}

export interface EncodedSecretData {
  /** The SecretString. */
  readonly document: string;
  readonly keys: readonly string[];
  readonly base64Keys: readonly string[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A Secret's keys and bytes → the stored document. `subject` names the Secret in errors. */
export function encodeSecretData(data: ReadonlyMap<string, Uint8Array>, subject: string): EncodedSecretData {
  const keys = [...data.keys()].sort();
  const document: Record<string, string | string[]> = {};
  const base64Keys: string[] = [];
  for (const key of keys) {
    const problem = secretKeyProblem(key);
    if (problem !== undefined) {
      throw new InvalidInputError(`${subject}: data key ${JSON.stringify(key)} ${problem}`, {
        subject,
        field: 'data',
      });
    }
    const bytes = data.get(key) ?? new Uint8Array();
    const text = isUtf8(bytes);
    if (text === undefined) {
      base64Keys.push(key);
      document[key] = Buffer.from(bytes).toString('base64');
    } else {
      document[key] = text;
    }
  }
  if (base64Keys.length > 0) document[base64Member] = base64Keys;
  const text = JSON.stringify(document);
  const size = Buffer.byteLength(text);
  if (size > maxDocumentBytes) {
    throw new TooLargeError(
      `${subject}: stored as ${size} bytes; expected at most ${maxDocumentBytes} (the Secrets Manager limit for one secret)`,
      { subject, field: 'data' },
    );
  }
  return { document: text, keys, base64Keys };
}

const documentSchema = z.record(z.string(), z.union([z.string(), z.array(z.string())]));

/** The stored document → keys and bytes. Throws InvalidInputError (value-free) when it is not one. */
export function decodeSecretDocument(text: string, subject: string): Map<string, Uint8Array> {
  const fail = (why: string): never => {
    throw new InvalidInputError(`${subject}: not a write-through document: ${why}`, { subject });
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail('not JSON');
  }
  const result = documentSchema.safeParse(parsed);
  if (!result.success) return fail('expected an object of strings');
  const marker = result.data[base64Member] ?? [];
  if (!Array.isArray(marker)) return fail(`${base64Member} must be a list of keys`);
  const encoded = new Set(marker);
  const data = new Map<string, Uint8Array>();
  for (const [key, value] of Object.entries(result.data)) {
    if (key === base64Member) continue;
    if (typeof value !== 'string') return fail(`key ${JSON.stringify(key)} is not a string`);
    if (encoded.has(key)) {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return fail(`key ${JSON.stringify(key)} is not base64`);
      data.set(key, new Uint8Array(Buffer.from(value, 'base64')));
    } else {
      data.set(key, new TextEncoder().encode(value));
    }
  }
  for (const key of encoded)
    if (!data.has(key)) fail(`${base64Member} names missing key ${JSON.stringify(key)}`);
  return data;
}

/** The default Secrets Manager name of a Secret: prefix + `<namespace>/<name>`. */
export function defaultSecretName(prefix: string, namespace: string, name: string): string {
  return `${prefix}${namespace}/${name}`;
}

/** Every name a namespace may write starts with this (tenancy: the prefix ends in "/"). */
export function namespacePrefix(prefix: string, namespace: string): string {
  return `${prefix}${namespace}/`;
}

const awsNamePattern = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

export type SecretNameResult = { readonly name: string } | { readonly problem: string };

/**
 * The Secrets Manager secret a Secret maps to: from its namespace and name, or from its
 * `smk.dev/aws-secret-name` annotation only when that stays under `<prefix><namespace>/`. The
 * webhook checks it at admission; the controller and the pod path check it again on the stored
 * object, so no other annotation ever decides where a value is written or read.
 */
export function secretNameOf(
  prefix: string,
  namespace: string,
  name: string,
  annotations: Readonly<Record<string, string>> | null | undefined,
): SecretNameResult {
  const given = annotations?.[writeThroughAnnotations.name];
  if (given === undefined) return { name: defaultSecretName(prefix, namespace, name) };
  const annotation = `annotation ${writeThroughAnnotations.name}`;
  if (given.startsWith('arn:')) return { problem: `${annotation}: expected a secret name, not an ARN` };
  if (!awsNamePattern.test(given)) {
    return { problem: `${annotation}: expected 1–512 of the characters A-Z a-z 0-9 / _ + = . @ -` };
  }
  const own = namespacePrefix(prefix, namespace);
  if (!given.startsWith(own) || given.length === own.length) {
    return {
      problem: `${annotation}: ${JSON.stringify(given)} is outside this namespace's prefix ${JSON.stringify(own)}; a namespace writes only under its own prefix`,
    };
  }
  return { name: given };
}
