/**
 * The port through which the core reads secrets. src/aws implements it (with its cache, batching
 * and identity handling); the core's payload pipeline only sees this interface, so the core
 * stays free of AWS I/O and every role fetches the same way.
 */
import type { SmkError } from './errors.ts';

export type ObjectType = 'secretsmanager' | 'ssmparameter';

/** The Secrets Manager stage a reader gets when it names no version or stage. */
export const currentStage = 'AWSCURRENT';

/** How a request selects its version: by id, by stage or label, both, or neither. */
export type VersionSelection = Pick<SecretRequest, 'objectType' | 'versionId' | 'versionStage'>;

/**
 * The one rule for "which version does this object follow now": the stage or label whose moves
 * change what it reads, or undefined when a version id pins it (a pinned version never moves, even
 * with a stage beside it: the stage then only guards the read). An unlabelled SSM parameter follows
 * its newest version, which describe reports under `currentStage` as Secrets Manager does.
 * The agent's refresh, the payload pipeline's stage re-check and rotation's watch list all ask this.
 */
export function followedStage(selection: VersionSelection): string | undefined {
  if (selection.versionId !== undefined) return undefined;
  return selection.versionStage ?? currentStage;
}

/**
 * The stage or label sent to AWS with a read. Secrets Manager always gets one named (AWSCURRENT
 * unless a version id is given, moto.md #1); SSM only the label asked for (none reads the newest).
 */
export function requestedStage(selection: VersionSelection): string | undefined {
  if (selection.versionStage !== undefined) return selection.versionStage;
  return selection.objectType === 'secretsmanager' ? followedStage(selection) : undefined;
}

/** One thing to read: a secret or SSM parameter, in one region, at one version. */
export interface SecretRequest {
  readonly objectType: ObjectType;
  /** Name or ARN, as the user wrote it. */
  readonly id: string;
  readonly region: string;
  /** Secrets Manager VersionId, or the SSM parameter version number. */
  readonly versionId?: string;
  /** Secrets Manager VersionStage (default AWSCURRENT, always sent explicitly), or the SSM label. */
  readonly versionStage?: string;
}

export interface SecretValue {
  readonly request: SecretRequest;
  /** Full ARN of the secret or parameter as AWS reports it. */
  readonly arn: string;
  readonly name: string;
  /** Secrets Manager VersionId, or the SSM parameter version as a string. */
  readonly versionId: string;
  /** SecretString as UTF-8 bytes, or SecretBinary as raw bytes. */
  readonly bytes: Uint8Array;
  /** True when the value came from SecretBinary. */
  readonly binary: boolean;
}

export type ReadResult =
  | { readonly ok: true; readonly value: SecretValue }
  | { readonly ok: false; readonly error: SmkError };

/** What one secret's versions look like now, without reading its value. */
export interface SecretVersions {
  readonly arn: string;
  readonly name: string;
  /** VersionId → stages, as DescribeSecret/ListSecrets report them. */
  readonly versionsToStages: ReadonlyMap<string, readonly string[]>;
  /** Set when the secret is scheduled for deletion. */
  readonly deletedDate?: Date;
}

/** One secret or parameter a discovery found: its name, ARN and tags (Secrets Manager only). */
export interface DiscoveredObject {
  readonly name: string;
  readonly arn: string;
  readonly tags: ReadonlyMap<string, string>;
}

/**
 * A discovery asked of AWS (./discovery.ts builds it from a spec's `discover`): ListSecrets with
 * name/tag filters, or GetParametersByPath. AWS filters are looser than the spec (prefix and
 * case-insensitive matches, tag keys and values matched apart), so `accept` has the last word.
 */
export interface DiscoveryQuery {
  readonly objectType: ObjectType;
  readonly region: string;
  /** Secrets Manager: the ListSecrets `name` filter. */
  readonly namePrefix?: string;
  /** Secrets Manager: `tag-key` / `tag-value` filters. */
  readonly tags: ReadonlyMap<string, string>;
  /** SSM: the GetParametersByPath path, and whether to descend. */
  readonly path?: string;
  readonly recursive?: boolean;
  readonly accept: (found: DiscoveredObject) => boolean;
  /** Listing stops once more than `limit` objects were accepted (the caller then refuses the set). */
  readonly limit: number;
  /** Listing stops with a TooLargeError once this many objects were listed, matches or not. */
  readonly maxListed: number;
}

/**
 * Reads on behalf of one identity (already bound: the aws layer builds one reader per
 * identity). Results come back in request order; one failing request never fails the others.
 */
export interface SecretReader {
  read(requests: readonly SecretRequest[]): Promise<ReadResult[]>;
  describe(request: SecretRequest): Promise<SecretVersions>;
  /**
   * Lists what a discovery matches, as this identity (so it finds only what the identity may
   * list). Throws an SmkError on any failure: a discovery is never answered with a partial set.
   * Readers that cannot list (a rehearsal, test fakes) leave it out; a spec that discovers then fails.
   */
  discover?(query: DiscoveryQuery): Promise<DiscoveredObject[]>;
  /**
   * True when a read of `request` now would make no call of its own: this identity's cache holds
   * it fresh, a call for it is running, or it cannot be read at all. Readers without a cache
   * leave it out (the sync's read-ahead then does nothing).
   */
  held?(request: SecretRequest): boolean;
}
