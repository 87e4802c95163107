/**
 * Sealing for write-through: the webhook encrypts a Secret's stored document to a key only the
 * controller holds, so the admission answer is the only thing a request (forged or not) gets;
 * the controller opens what the API server really stored and writes it to Secrets Manager.
 *
 * Scheme: X25519 ECDH between a fresh ephemeral key and the controller's key, HKDF-SHA256 to an
 * AES-256-GCM key; the header (key id, ephemeral public key, cluster, namespace, name) is the
 * additional authenticated data, so a sealed value cannot be opened under another cluster,
 * namespace or name. The header is in clear: whose the value is and which key opens it are not
 * secret. Format: `smk-sealed.v1.<base64url header JSON>.<base64url iv ‖ ciphertext ‖ tag>`.
 *
 * The controller's key also keys the content token (the ClientRequestToken and so the version
 * id): equal content under one name gives one version, and the id, shown in an annotation, tells
 * nothing about a short value to anyone without the key.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import * as z from 'zod';
import { InvalidInputError } from './errors.ts';

/** Whose a sealed value is: it opens only for this cluster, namespace and name. */
export interface SealBinding {
  readonly cluster: string;
  readonly namespace: string;
  readonly name: string;
}

/** The public half, as the webhook has it. */
export interface SealingPublicKey {
  /** First 16 hex digits of SHA-256 of the raw key: names the key in sealed values and messages. */
  readonly keyId: string;
  /** The raw 32-byte X25519 key, base64url (what the published ConfigMap holds). */
  readonly text: string;
  readonly key: KeyObject;
}

/** The controller's key pair. */
export interface SealingKeyPair {
  readonly publicKey: SealingPublicKey;
  readonly privateKey: KeyObject;
  /** PKCS#8 PEM of the private key (what the controller's Secret holds). */
  readonly privateKeyPem: string;
  /** HMAC key of content tokens, derived from the private key. */
  readonly tokenKey: Buffer;
}

/** Where the key halves are kept: the controller's Secret and the ConfigMap the webhook reads. */
export const sealingKeyFields = {
  /** Secret data key: the private key, PKCS#8 PEM. */
  privateKey: 'private-key.pem',
  /** ConfigMap data key: the public key, raw base64url. */
  publicKey: 'public-key',
  /** ConfigMap data key: its key id (for people; the webhook recomputes it). */
  keyId: 'key-id',
} as const;

const formatTag = 'smk-sealed.v1';
const sealInfo = 'smk write-through seal v1';
const tokenInfo = 'smk write-through token v1';
const ivBytes = 12;
const tagBytes = 16;
/** A sealed document of the largest allowed size (64 KiB) is about 88,000 characters. */
const maxSealedLength = 100_000;

const headerSchema = z.strictObject({
  kid: z.string().regex(/^[0-9a-f]{16}$/),
  epk: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  cluster: z.string(),
  namespace: z.string(),
  name: z.string(),
});
type SealHeader = z.infer<typeof headerSchema>;

function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url');
}

function keyIdOf(raw: Uint8Array): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function publicKeyFrom(key: KeyObject): SealingPublicKey {
  const raw = rawPublicKey(key);
  return { keyId: keyIdOf(raw), text: raw.toString('base64url'), key };
}

function keyPairFrom(privateKey: KeyObject): SealingKeyPair {
  const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const raw = Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url');
  const tokenKey = Buffer.from(hkdfSync('sha256', raw, Buffer.alloc(0), tokenInfo, 32));
  return { publicKey: publicKeyFrom(createPublicKey(privateKey)), privateKey, privateKeyPem, tokenKey };
}

export function generateSealingKeyPair(): SealingKeyPair {
  return keyPairFrom(generateKeyPairSync('x25519').privateKey);
}

/** The key pair from its PEM; `subject` names where it was read from, for errors. */
export function parseSealingKeyPair(pem: string, subject: string): SealingKeyPair {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new InvalidInputError(`${subject}: ${sealingKeyFields.privateKey} is not a PEM private key`, {
      subject,
      field: sealingKeyFields.privateKey,
    });
  }
  if (key.asymmetricKeyType !== 'x25519') {
    throw new InvalidInputError(
      `${subject}: ${sealingKeyFields.privateKey} is a ${key.asymmetricKeyType ?? 'unknown'} key; expected X25519`,
      { subject, field: sealingKeyFields.privateKey },
    );
  }
  return keyPairFrom(key);
}

/** The public key from its published text (raw base64url). */
export function parseSealingPublicKey(text: string, subject: string): SealingPublicKey {
  const raw = /^[A-Za-z0-9_-]{43}$/.test(text) ? Buffer.from(text, 'base64url') : undefined;
  if (raw?.length !== 32) {
    throw new InvalidInputError(
      `${subject}: ${sealingKeyFields.publicKey} is not an X25519 public key (32 bytes, base64url)`,
      { subject, field: sealingKeyFields.publicKey },
    );
  }
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: text }, format: 'jwk' });
  return publicKeyFrom(key);
}

function aesKey(shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), sealInfo, 32));
}

/** Seals `plaintext` to `recipient` for `binding`. */
export function sealValue(recipient: SealingPublicKey, binding: SealBinding, plaintext: Uint8Array): string {
  const ephemeral = generateKeyPairSync('x25519');
  const epk = rawPublicKey(ephemeral.publicKey);
  const header: SealHeader = {
    kid: recipient.keyId,
    epk: epk.toString('base64url'),
    cluster: binding.cluster,
    namespace: binding.namespace,
    name: binding.name,
  };
  const headerText = Buffer.from(JSON.stringify(header)).toString('base64url');
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient.key });
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', aesKey(shared, epk, rawPublicKey(recipient.key)), iv);
  cipher.setAAD(Buffer.from(headerText));
  const body = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return `${formatTag}.${headerText}.${body.toString('base64url')}`;
}

interface ParsedSealed {
  readonly header: SealHeader;
  readonly headerText: string;
  readonly body: Buffer;
}

function parseSealed(sealed: string, subject: string): ParsedSealed {
  const fail = (why: string): never => {
    throw new InvalidInputError(`${subject}: not a sealed value: ${why}`, { subject });
  };
  if (sealed.length > maxSealedLength) fail(`longer than ${maxSealedLength} characters`);
  const parts = sealed.split('.');
  const [tag, version, headerText = '', bodyText = ''] = parts;
  if (parts.length !== 4 || `${tag}.${version}` !== formatTag) fail(`expected ${formatTag}.<header>.<body>`);
  if (!/^[A-Za-z0-9_-]+$/.test(headerText) || !/^[A-Za-z0-9_-]+$/.test(bodyText)) fail('expected base64url');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(headerText, 'base64url').toString('utf8'));
  } catch {
    fail('header is not JSON');
  }
  const header = headerSchema.safeParse(json);
  if (!header.success) return fail('header has not the expected fields');
  const body = Buffer.from(bodyText, 'base64url');
  if (body.length < ivBytes + tagBytes) fail('too short');
  return { header: header.data, headerText, body };
}

/** Whose a sealed value says it is, without opening it (not authenticated until opened). */
export function sealedBinding(sealed: string, subject: string): SealBinding & { readonly keyId: string } {
  const { header } = parseSealed(sealed, subject);
  return { cluster: header.cluster, namespace: header.namespace, name: header.name, keyId: header.kid };
}

/**
 * Opens a sealed value for `binding`. Throws InvalidInputError (naming what did not match,
 * never content) when it is malformed, for another key, or for another cluster, namespace or
 * name, or when it does not authenticate.
 */
export function openSealed(
  keyPair: SealingKeyPair,
  binding: SealBinding,
  sealed: string,
  subject: string,
): Uint8Array {
  const { header, headerText, body } = parseSealed(sealed, subject);
  const fail = (why: string): never => {
    throw new InvalidInputError(`${subject}: the sealed value cannot be opened: ${why}`, { subject });
  };
  if (header.kid !== keyPair.publicKey.keyId) {
    fail(`it was sealed to key ${header.kid}; the controller holds key ${keyPair.publicKey.keyId}`);
  }
  for (const field of ['cluster', 'namespace', 'name'] as const) {
    if (header[field] !== binding[field]) {
      fail(
        `it was sealed for ${field} ${JSON.stringify(header[field])}, not ${JSON.stringify(binding[field])}`,
      );
    }
  }
  const epk = Buffer.from(header.epk, 'base64url');
  let shared: Buffer;
  try {
    const ephemeral = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: header.epk }, format: 'jwk' });
    shared = diffieHellman({ privateKey: keyPair.privateKey, publicKey: ephemeral });
  } catch {
    return fail('its ephemeral key is not usable');
  }
  const iv = body.subarray(0, ivBytes);
  const tag = body.subarray(body.length - tagBytes);
  const ciphertext = body.subarray(ivBytes, body.length - tagBytes);
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      aesKey(shared, epk, rawPublicKey(keyPair.publicKey.key)),
      iv,
    );
    decipher.setAAD(Buffer.from(headerText));
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
  } catch {
    return fail('it does not authenticate (altered, or sealed for another key)');
  }
}

/**
 * The ClientRequestToken (and so the version id) of `document` stored as `secretName`: equal
 * content gives the equal token, and without the controller's key a token cannot be tested
 * against a guessed value. 64 hex digits (AWS allows 32–64 characters).
 */
export function contentToken(keyPair: SealingKeyPair, secretName: string, document: string): string {
  return createHmac('sha256', keyPair.tokenKey)
    .update(secretName)
    .update('\0')
    .update(document)
    .digest('hex');
}
