/**
 * How a failed Mount is reported. The driver discards the reply body of a failed call and shows
 * the status message in the pod's events, so the message carries everything: which object, which
 * field, what was expected. The code the driver would read from `error.code` travels beside it
 * in the trailers (`smk-error-code`) and names the sentinel class, for metrics and tests.
 */
import { Metadata, status } from '@grpc/grpc-js';
import { describeError, isSmkError, type SmkErrorKind } from '../core/errors.ts';

export const errorCodeTrailer = 'smk-error-code';

export type MountErrorCode = SmkErrorKind | 'Internal';

export interface MountFailure {
  readonly code: status;
  readonly details: string;
  readonly errorCode: MountErrorCode;
  readonly metadata: Metadata;
}

const statusByKind: Record<SmkErrorKind, status> = {
  InvalidInput: status.INVALID_ARGUMENT,
  NotFound: status.NOT_FOUND,
  AccessDenied: status.PERMISSION_DENIED,
  // The driver retries UNAVAILABLE itself (three attempts); throttling is better left to the
  // kubelet's own backoff than retried at once.
  Throttled: status.RESOURCE_EXHAUSTED,
  TooLarge: status.FAILED_PRECONDITION,
  NotModified: status.FAILED_PRECONDITION,
  Transient: status.UNAVAILABLE,
};

export function mountFailure(error: unknown): MountFailure {
  const errorCode: MountErrorCode = isSmkError(error) ? error.kind : 'Internal';
  const metadata = new Metadata();
  metadata.set(errorCodeTrailer, errorCode);
  return {
    code: isSmkError(error) ? statusByKind[error.kind] : status.INTERNAL,
    // Our messages are value-free by construction; anything else is reduced to its class.
    details: describeError(error),
    errorCode,
    metadata,
  };
}
