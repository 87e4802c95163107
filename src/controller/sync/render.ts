/**
 * Payloads (the core pipeline's named files) → a Secret's `data`, for one target: either the
 * target's explicit `data: [{objectName, key}]` mapping (as the CSI driver's secretObjects), or
 * one key per produced file. Size limits are checked here with a clear error: a value over
 * 64 KiB (Secrets Manager's own limit) or a Secret over 1 MiB (etcd's object limit) is refused.
 */
import { InvalidInputError, TooLargeError } from '../../core/errors.ts';
import type { Payload } from '../../core/spec-types.ts';
import type { SyncTarget } from '../jobs.ts';

export const maxValueBytes = 64 * 1024;
/** The API server refuses objects over 1 MiB; keep room for metadata. */
export const maxSecretBytes = 1024 * 1024 - 16 * 1024;

const secretKeyPattern = /^[-._a-zA-Z0-9]{1,253}$/;

/**
 * The keys each Secret type needs, as the API server's validation has them (all of `all`, one of
 * `oneOf`): checked before writing so the error names the missing key, not the API's 422.
 */
export const requiredKeys: Readonly<Record<string, { all?: readonly string[]; oneOf?: readonly string[] }>> =
  {
    'kubernetes.io/tls': { all: ['tls.crt', 'tls.key'] },
    'kubernetes.io/dockerconfigjson': { all: ['.dockerconfigjson'] },
    'kubernetes.io/dockercfg': { all: ['.dockercfg'] },
    'kubernetes.io/basic-auth': { oneOf: ['username', 'password'] },
    'kubernetes.io/ssh-auth': { all: ['ssh-privatekey'] },
  };

function checkRequiredKeys(
  data: Readonly<Record<string, string>>,
  target: SyncTarget,
  where: string,
  subject: string,
): void {
  const required = requiredKeys[target.type];
  if (!required) return;
  const produced =
    Object.keys(data)
      .map((key) => JSON.stringify(key))
      .join(', ') || 'no key';
  const fail = (what: string): never => {
    throw new InvalidInputError(
      `${where}: type ${target.type} needs ${what}; the target produces ${produced} (name keys with objectAlias, keyPrefix, target.data or target.templates)`,
      { subject, field: 'target.type' },
    );
  };
  const missing = required.all?.find((key) => !Object.hasOwn(data, key));
  if (missing !== undefined) fail(`key ${JSON.stringify(missing)}`);
  if (required.oneOf && !required.oneOf.some((key) => Object.hasOwn(data, key))) {
    fail(`key ${required.oneOf.map((key) => JSON.stringify(key)).join(' or ')}`);
  }
}

export interface RenderedSecret {
  /** Key → base64 value, as a Secret's `data`. */
  readonly data: Readonly<Record<string, string>>;
  /** Bytes of all values (before base64). */
  readonly bytes: number;
}

/**
 * Builds the data of `target` from `payloads`. `subject` names the source object in errors
 * (`SecretSync team-a/db`). Errors never contain a value.
 */
export function renderSecretData(
  payloads: readonly Payload[],
  target: SyncTarget,
  subject: string,
): RenderedSecret {
  const where = `${subject}: Secret ${target.name}`;
  const byName = new Map(payloads.map((payload) => [payload.name, payload]));
  const entries: Array<{ key: string; payload: Payload; field: string }> = [];
  if (target.data) {
    for (const [index, entry] of target.data.entries()) {
      const payload = byName.get(entry.objectName);
      if (!payload) {
        const known = [...byName.keys()].map((key) => JSON.stringify(key)).join(', ');
        throw new InvalidInputError(
          `${where}: data[${index}].objectName ${JSON.stringify(entry.objectName)} names no object; the objects produce ${known || 'nothing'}`,
          { subject, field: `data[${index}].objectName` },
        );
      }
      entries.push({ key: entry.key, payload, field: `data[${index}].key` });
    }
  } else {
    for (const payload of payloads) entries.push({ key: payload.name, payload, field: 'objects' });
  }

  const data: Record<string, string> = {};
  let bytes = 0;
  for (const { key, payload, field } of entries) {
    if (!secretKeyPattern.test(key)) {
      throw new InvalidInputError(
        `${where}: key ${JSON.stringify(key)} is not a valid Secret key (letters, digits, "-", "_", "."); name it with objectAlias or target.data`,
        { subject, field },
      );
    }
    if (Object.hasOwn(data, key)) {
      throw new InvalidInputError(`${where}: key ${JSON.stringify(key)} is produced twice`, {
        subject,
        field,
      });
    }
    if (payload.bytes.byteLength > maxValueBytes) {
      throw new TooLargeError(
        `${where}: ${payload.name} is ${payload.bytes.byteLength} bytes; a value may be at most ${maxValueBytes} bytes`,
        { subject, field },
      );
    }
    bytes += payload.bytes.byteLength;
    data[key] = Buffer.from(
      payload.bytes.buffer,
      payload.bytes.byteOffset,
      payload.bytes.byteLength,
    ).toString('base64');
  }
  checkRequiredKeys(data, target, where, subject);
  const encoded = Object.entries(data).reduce((sum, [key, value]) => sum + key.length + value.length, 0);
  if (encoded > maxSecretBytes) {
    throw new TooLargeError(
      `${where}: the Secret would hold ${encoded} bytes of encoded data; a Kubernetes Secret may hold at most 1 MiB`,
      { subject, field: 'data' },
    );
  }
  return { data, bytes };
}
