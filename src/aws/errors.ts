/**
 * AWS failures → the core's sentinel errors. We branch on the error name AND the HTTP status
 * (moto answers denials with 403 XML that SDK v3 JSON clients cannot parse), and compose the
 * message ourselves: API, subject, region, error code, status. Never the SDK's message, a
 * request id, a credential or a value; the raw error is not kept as `cause` for the same reason.
 */
import {
  AccessDeniedError,
  InvalidInputError,
  isSmkError,
  NotFoundError,
  type SmkError,
  ThrottledError,
  TransientError,
} from '../core/errors.ts';

export interface AwsErrorContext {
  /** The API called, e.g. `GetSecretValue`. */
  readonly api: string;
  /** The secret or parameter id as the user wrote it, when the call is about one. */
  readonly subject?: string;
  readonly region?: string;
  /**
   * Codes that mean "not there" for this API beyond the usual ones: Secrets Manager reads
   * answer InvalidRequestException for a secret scheduled for deletion.
   */
  readonly notFoundCodes?: readonly string[];
}

const notFoundCodes = new Set([
  'ResourceNotFoundException',
  'ParameterNotFound',
  'ParameterVersionNotFound',
  'ParameterVersionLabelNotFound',
]);

const accessDeniedCodes = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidIdentityToken',
  'IDPRejectedClaim',
  'DecryptionFailure',
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'KMSNotFoundException',
]);

const throttledCodes = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
  'SlowDown',
]);

const invalidInputCodes = new Set([
  'InvalidParameterException',
  'InvalidParameterValue',
  'InvalidParameterCombinationException',
  'ValidationException',
  'ValidationError',
  'InvalidKeyId',
  'MalformedPolicyDocumentException',
]);

const transientCodes = new Set([
  'InternalServiceError',
  'InternalServiceErrorException',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'IDPCommunicationError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'AbortError',
]);

const networkErrorCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Names that say nothing about AWS: a client-side parse failure or a plain JavaScript error. */
const genericNames = new Set(['Error', 'SyntaxError', 'TypeError', 'RangeError', 'UnknownError']);

/** Only a short identifier-like code is echoed; anything else a server sent is dropped. */
const codePattern = /^[A-Za-z][A-Za-z0-9_.]{0,63}$/;

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function errorCodeOf(error: unknown): string | undefined {
  const name = field(error, 'name');
  const code = field(error, 'Code') ?? field(error, 'code');
  for (const candidate of [name, code]) {
    if (typeof candidate === 'string' && !genericNames.has(candidate) && codePattern.test(candidate)) {
      return candidate;
    }
  }
  return undefined;
}

function httpStatusOf(error: unknown): number | undefined {
  const status = field(field(error, '$metadata'), 'httpStatusCode');
  return typeof status === 'number' ? status : undefined;
}

type Sentinel = 'NotFound' | 'AccessDenied' | 'Throttled' | 'InvalidInput' | 'Transient';

function classify(
  code: string | undefined,
  status: number | undefined,
  network: boolean,
  extraNotFound: readonly string[] = [],
): Sentinel {
  if (code !== undefined) {
    if (notFoundCodes.has(code) || extraNotFound.includes(code)) return 'NotFound';
    if (accessDeniedCodes.has(code)) return 'AccessDenied';
    if (throttledCodes.has(code)) return 'Throttled';
    if (invalidInputCodes.has(code)) return 'InvalidInput';
    if (transientCodes.has(code) || networkErrorCodes.has(code)) return 'Transient';
  }
  if (network) return 'Transient';
  if (status === 401 || status === 403) return 'AccessDenied';
  if (status === 404) return 'NotFound';
  if (status === 429) return 'Throttled';
  if (status !== undefined && status >= 500) return 'Transient';
  if (status !== undefined && status >= 400 && code !== undefined) return 'InvalidInput';
  // No status and no known code: a network failure or a client-side timeout. Retry later.
  return 'Transient';
}

const descriptions: Record<Sentinel, string> = {
  NotFound: 'not found',
  AccessDenied: 'access denied',
  Throttled: 'throttled by AWS',
  InvalidInput: 'rejected as invalid',
  Transient: 'AWS unavailable or unreachable',
};

function build(
  kind: Sentinel,
  context: AwsErrorContext,
  details: readonly string[],
  description = descriptions[kind],
): SmkError {
  const where = [context.api, context.subject, context.region ? `in ${context.region}` : undefined]
    .filter((part) => part !== undefined && part !== '')
    .join(' ');
  const message = `${where}: ${description}${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
  const options = context.subject === undefined ? {} : { subject: context.subject };
  switch (kind) {
    case 'NotFound':
      return new NotFoundError(message, options);
    case 'AccessDenied':
      return new AccessDeniedError(message, options);
    case 'Throttled':
      return new ThrottledError(message, options);
    case 'InvalidInput':
      return new InvalidInputError(message, options);
    case 'Transient':
      return new TransientError(message, options);
  }
}

function isProgrammingError(error: unknown): error is Error {
  return error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError;
}

/** Map anything an SDK call threw. Our own sentinel errors (e.g. from a credential provider) pass through. */
export function mapAwsError(error: unknown, context: AwsErrorContext): SmkError {
  if (isSmkError(error)) return error;
  const code = errorCodeOf(error);
  const status = httpStatusOf(error);
  const network = status === undefined && typeof field(error, 'code') === 'string';
  if (code === undefined && !network && status === undefined && isProgrammingError(error)) {
    // Not AWS's doing (a bundling slip once made every lazily loaded SDK class undefined): say so,
    // with the error's class name only, rather than blame the network. Retried like a transient.
    return build('Transient', context, [error.name], 'failed inside smk before reaching AWS');
  }
  const kind = classify(code, status, network, context.notFoundCodes);
  const details = [code, status === undefined ? undefined : `HTTP ${status}`].filter(
    (part): part is string => part !== undefined,
  );
  return build(kind, context, details);
}

/** Map a per-item error code from a batch answer (BatchGetSecretValue `Errors[].ErrorCode`). */
export function mapAwsErrorCode(code: string | undefined, context: AwsErrorContext): SmkError {
  const safe = code !== undefined && codePattern.test(code) ? code : undefined;
  const kind = safe === undefined ? 'Transient' : classify(safe, undefined, false, context.notFoundCodes);
  // An unknown per-item code is not a network failure: do not retry it forever.
  const settled =
    safe !== undefined && kind === 'Transient' && !transientCodes.has(safe) ? 'InvalidInput' : kind;
  return build(settled, context, safe === undefined ? [] : [safe]);
}

/** Metric label for an outcome: `ok` or the sentinel kind in snake case. */
/** The same error for one item of a batch whose whole call failed: same class and message, item as subject. */
export function forSubject(error: SmkError, subject: string): SmkError {
  const Kind = error.constructor as new (message: string, options?: { subject?: string }) => SmkError;
  return new Kind(error.message, { subject });
}
