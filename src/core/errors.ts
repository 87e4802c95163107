/**
 * Sentinel errors. Callers branch on the class (or `kind`), never on message text.
 * Messages name the object and field and must never contain a secret value.
 */
export type SmkErrorKind =
  | 'NotFound'
  | 'AccessDenied'
  | 'Throttled'
  | 'InvalidInput'
  | 'NotModified'
  | 'TooLarge'
  | 'Transient';

export interface SmkErrorOptions {
  /** Which object the error is about (secret id, spec object "objects[2] (db-creds)", annotation …). */
  readonly subject?: string;
  /** Which field of that object is wrong, when there is one. */
  readonly field?: string;
  readonly cause?: unknown;
}

export abstract class SmkError extends Error {
  abstract readonly kind: SmkErrorKind;
  /** True when a retry later may succeed: keep the last good state and back off. */
  abstract readonly transient: boolean;
  readonly subject: string | undefined;
  readonly field: string | undefined;

  constructor(message: string, options: SmkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.subject = options.subject;
    this.field = options.field;
  }
}

export class NotFoundError extends SmkError {
  readonly kind = 'NotFound' as const;
  readonly transient = false;
}

export class AccessDeniedError extends SmkError {
  readonly kind = 'AccessDenied' as const;
  readonly transient = false;
}

export class ThrottledError extends SmkError {
  readonly kind = 'Throttled' as const;
  readonly transient = true;
}

/** Bad input from a user: a spec, an annotation, a parameter. Never retried. */
export class InvalidInputError extends SmkError {
  readonly kind = 'InvalidInput' as const;
  readonly transient = false;
}

/** Nothing changed since the version the caller already has. */
export class NotModifiedError extends SmkError {
  readonly kind = 'NotModified' as const;
  readonly transient = false;
}

/** A value or a set of values over a hard size limit (64 KiB per secret, 1 MiB per Kubernetes Secret). */
export class TooLargeError extends SmkError {
  readonly kind = 'TooLarge' as const;
  readonly transient = false;
}

/** Network failures, timeouts, 5xx: retry with backoff, keep what was served before. */
export class TransientError extends SmkError {
  readonly kind = 'Transient' as const;
  readonly transient = true;
}

export function isSmkError(error: unknown): error is SmkError {
  return error instanceof SmkError;
}

/** A message safe to log or show: our own messages are value-free by construction; others are reduced to their class. */
export function describeError(error: unknown): string {
  if (error instanceof SmkError) return error.message;
  if (error instanceof Error) return `${error.name}: unexpected error`;
  return 'unexpected error';
}

type ErrorClass = new (message: string, options?: SmkErrorOptions) => SmkError;
const errorClasses: Record<SmkErrorKind, ErrorClass> = {
  NotFound: NotFoundError,
  AccessDenied: AccessDeniedError,
  Throttled: ThrottledError,
  InvalidInput: InvalidInputError,
  NotModified: NotModifiedError,
  TooLarge: TooLargeError,
  Transient: TransientError,
};

/** The same sentinel class, with the spec's subject and object in front of the reader's message. */
export function about(error: SmkError, where: string, message: string): SmkError {
  return new errorClasses[error.kind](`${where}: ${message}`, {
    subject: where,
    ...(error.field === undefined ? {} : { field: error.field }),
    cause: error,
  });
}
