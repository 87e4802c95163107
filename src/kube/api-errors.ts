/**
 * What a failed API call means, whichever client made it: our KubeHttpError (src/kube/http.ts) or
 * client-node's ApiException. Kept apart from client.ts so a process that only uses the undici
 * transport (the webhook in a pod) never loads client-node: ./client.ts registers the reader of
 * ApiException when it loads, and no ApiException can exist before client-node is loaded.
 */
import {
  AccessDeniedError,
  InvalidInputError,
  NotFoundError,
  SmkError,
  ThrottledError,
  TransientError,
} from '../core/errors.ts';

/** Reads client-node's ApiException as a KubeHttpError; set by ./client.ts, the one importer of client-node's errors. */
let clientErrorReader: ((error: unknown) => KubeHttpError | undefined) | undefined;

export function readClientErrorsWith(reader: (error: unknown) => KubeHttpError | undefined): void {
  clientErrorReader = reader;
}

/** What the API server's Status object says about a failure, reduced to what never echoes a value. */
export interface ApiStatusDetails {
  /** The Status reason (`NotFound`, `Conflict`, `Invalid`, …): a fixed word. */
  readonly reason?: string | undefined;
  /** `details.causes[].field` (e.g. `metadata.labels`): field paths only, never the causes' messages. */
  readonly fields?: readonly string[] | undefined;
  /** The `Retry-After` the server sent with a 429 or 5xx, in milliseconds. */
  readonly retryAfterMs?: number | undefined;
}

/**
 * The one error type for a request the API server answered with an error status, whichever client
 * made it (kubeError converts client-node's ApiException into it). Carries no response body or
 * cause message: they may echo what we sent.
 */
export class KubeHttpError extends Error {
  readonly status: number;
  readonly reason: string | undefined;
  readonly fields: readonly string[];
  readonly retryAfterMs: number | undefined;

  constructor(method: string, path: string, status: number, details: ApiStatusDetails = {}) {
    const fields = details.fields ?? [];
    super(
      `${method} ${path}: HTTP ${status}${details.reason ? ` (${details.reason})` : ''}${
        fields.length > 0 ? ` at ${fields.join(', ')}` : ''
      }`,
    );
    this.name = 'KubeHttpError';
    this.status = status;
    this.reason = details.reason;
    this.fields = fields;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** A field path as the API server names it (`metadata.labels`, `data[tls.crt]`); anything else is dropped. */
const fieldPathPattern = /^[A-Za-z0-9_.\-/[\]]{1,256}$/;
/** Longest Retry-After we honour: a server asking for more is retried at this. */
const maxRetryAfterMs = 10 * 60_000;

/** Reads a Status body (JSON text or client-node's parsed object) and a Retry-After header value. */
export function parseApiStatus(
  body: unknown,
  retryAfter: string | undefined,
  now = Date.now(),
): ApiStatusDetails {
  let status: unknown = body;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body);
    } catch {
      status = undefined;
    }
  }
  const record = (value: unknown): Record<string, unknown> | undefined =>
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  const parsed = record(status);
  const reason = parsed?.reason;
  const causes = record(parsed?.details)?.causes;
  const fields = Array.isArray(causes)
    ? [
        ...new Set(
          causes
            .map((cause) => record(cause)?.field)
            .filter((field): field is string => typeof field === 'string' && fieldPathPattern.test(field)),
        ),
      ]
    : [];
  return {
    ...(typeof reason === 'string' && /^[A-Za-z]{1,64}$/.test(reason) ? { reason } : {}),
    ...(fields.length > 0 ? { fields } : {}),
    ...retryAfterOf(retryAfter, now),
  };
}

/** `Retry-After` is seconds or an HTTP date (RFC 9110 10.2.3). */
function retryAfterOf(value: string | undefined, now: number): { retryAfterMs?: number } {
  if (!value) return {};
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (!Number.isFinite(ms)) return {};
  return { retryAfterMs: Math.min(Math.max(ms, 0), maxRetryAfterMs) };
}

/** The failed API call behind `error` (itself, or the cause of our sentinel error), as KubeHttpError. */
export function apiErrorOf(error: unknown): KubeHttpError | undefined {
  if (error instanceof KubeHttpError) return error;
  const fromClient = clientErrorReader?.(error);
  if (fromClient) return fromClient;
  if (error instanceof SmkError) return apiErrorOf(error.cause);
  return undefined;
}

/** The HTTP status of a failed API call (client-node's or ours, src/kube/http.ts), if it was one. */
export function apiStatus(error: unknown): number | undefined {
  if (error instanceof KubeHttpError) return error.status;
  return clientErrorReader?.(error)?.status;
}

/** How long the server asked us to wait before retrying `error`, if it did. */
export function retryAfterMsOf(error: unknown): number | undefined {
  return apiErrorOf(error)?.retryAfterMs;
}

/**
 * Maps a failed API call to our sentinel errors with a message that names the object; the
 * server's body is never copied (it may echo request content).
 */
export function kubeError(error: unknown, what: string): SmkError {
  if (error instanceof SmkError) return error;
  // client-node's ApiException becomes our KubeHttpError, so callers read one error type.
  const failure = apiErrorOf(error);
  const status = failure?.status;
  const cause = failure ?? error;
  if (status === 404) return new NotFoundError(`${what}: not found`, { subject: what, cause });
  if (status === 401 || status === 403)
    return new AccessDeniedError(`${what}: forbidden (HTTP ${status})`, { subject: what, cause });
  if (status === 400 || status === 422) {
    const fields = failure?.fields ?? [];
    const at = fields.length > 0 ? ` at ${fields.join(', ')}` : '';
    return new InvalidInputError(`${what}: rejected by the API server (HTTP ${status})${at}`, {
      subject: what,
      ...(fields.length > 0 ? { field: fields.join(', ') } : {}),
      cause,
    });
  }
  if (status === 429)
    return new ThrottledError(`${what}: throttled by the API server (HTTP 429)`, { subject: what, cause });
  const detail = status === undefined ? 'API server unreachable' : `HTTP ${status}`;
  return new TransientError(`${what}: ${detail}`, { subject: what, cause });
}
