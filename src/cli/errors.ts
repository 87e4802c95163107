/**
 * What the CLI says about an error that is not one of ours. Node's system errors (a missing file, a
 * refused connection, an unknown host) carry what failed and where as fields — code, syscall, path,
 * address, port — so the message is built from those fields, never from message text (which for
 * other errors may quote input). Anything else stays reduced to its class name, as describeError does.
 */
import { describeError, isSmkError } from '../core/errors.ts';

const reasons: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EMFILE: 'too many open files',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_SOCKET: 'connection closed',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS: self-signed certificate in the chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: certificate not trusted (unknown issuer)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'TLS: certificate not trusted (unknown issuer)',
  CERT_HAS_EXPIRED: 'TLS: certificate expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: certificate does not name the host',
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS: the server does not speak TLS',
};

interface SystemErrorFields {
  readonly code: string;
  readonly path?: string;
  readonly dest?: string;
  readonly address?: string;
  readonly port?: number;
  readonly hostname?: string;
  readonly host?: string;
}

function fieldsOf(error: unknown): SystemErrorFields | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const record = error as Record<string, unknown>;
  if (typeof record.code !== 'string' || !Object.hasOwn(reasons, record.code)) return undefined;
  const text = (key: string): string | undefined =>
    typeof record[key] === 'string' ? (record[key] as string) : undefined;
  const port = typeof record.port === 'number' ? record.port : undefined;
  return {
    code: record.code,
    ...(text('path') ? { path: text('path') } : {}),
    ...(text('dest') ? { dest: text('dest') } : {}),
    ...(text('address') ? { address: text('address') } : {}),
    ...(port === undefined ? {} : { port }),
    ...(text('hostname') ? { hostname: text('hostname') } : {}),
    ...(text('host') ? { host: text('host') } : {}),
  };
}

/** The first system error in a chain of causes (fetch's TypeError wraps one; a dual-stack connect aggregates). */
function systemError(error: unknown): SystemErrorFields | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth += 1) {
    const fields = fieldsOf(current);
    if (fields) {
      // Happy eyeballs: an AggregateError with the code, and the address in each attempt.
      const first = current instanceof AggregateError ? fieldsOf(current.errors[0]) : undefined;
      return first ? { ...first, code: fields.code } : fields;
    }
    if (current instanceof AggregateError && current.errors.length > 0) {
      const inner = systemError(current.errors[0]);
      if (inner) return inner;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function where(fields: SystemErrorFields): string | undefined {
  if (fields.path !== undefined) return fields.dest ? `${fields.path} → ${fields.dest}` : fields.path;
  if (fields.address !== undefined) {
    const host = fields.address.includes(':') ? `[${fields.address}]` : fields.address;
    return fields.port === undefined ? host : `${host}:${fields.port}`;
  }
  return fields.hostname ?? fields.host;
}

/**
 * A system error as "WHERE: reason (CODE)", or undefined when the error is not one. `where` may be
 * given by the caller when it knows better (the flag and file it was reading).
 */
export function describeSystemError(error: unknown): string | undefined {
  const fields = systemError(error);
  if (!fields) return undefined;
  const place = where(fields);
  const reason = `${reasons[fields.code]} (${fields.code})`;
  return place === undefined ? reason : `${place}: ${reason}`;
}

/** The reason alone ("no such file or directory"), for callers that name the place themselves. */
export function systemErrorReason(error: unknown): string | undefined {
  const fields = systemError(error);
  return fields ? `${reasons[fields.code]} (${fields.code})` : undefined;
}

/** What to print for any error: ours as they are, system errors by their fields, others by class. */
export function describeCliError(error: unknown): string {
  if (isSmkError(error)) return error.message;
  return describeSystemError(error) ?? describeError(error);
}
