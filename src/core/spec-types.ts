/**
 * The objects spec, in exactly the AWS Secrets Store CSI provider's `objects` format, so one
 * spec language serves injection, CSI mounts and sync. Parsed (and validated) by ./spec.ts.
 */
import type { ObjectType } from './source.ts';

/** File mode as a number (0o644), parsed from the spec's four-digit octal string ("0644"). */
export type FileMode = number;

export interface JmesPathEntry {
  readonly path: string;
  readonly objectAlias: string;
  readonly filePermission?: FileMode;
}

export interface FailoverObject {
  readonly objectName: string;
  readonly objectVersion?: string;
  readonly objectVersionLabel?: string;
}

export interface ObjectSpec {
  /** Position in the `objects` list: errors name it as `objects[index] (objectName)`. */
  readonly index: number;
  /** Name or ARN as written. */
  readonly objectName: string;
  /** Given, or derived from the ARN. */
  readonly objectType: ObjectType;
  /** Region named by an ARN objectName, if any (wins over the spec's region for this object). */
  readonly arnRegion?: string;
  readonly objectAlias?: string;
  readonly objectVersion?: string;
  readonly objectVersionLabel?: string;
  readonly filePermission?: FileMode;
  readonly jmesPath: readonly JmesPathEntry[];
  readonly failoverObject?: FailoverObject;
  /** Set by `extractKeys: true`: one file per top-level JSON key, and no whole-value file. */
  readonly extractKeys?: ExtractKeys;
}

/** Every top-level key of a JSON value as its own file, named `prefix + key` (./naming.ts). */
export interface ExtractKeys {
  readonly prefix: string;
}

/** `false` when pathTranslation is "False": slashes in names then make sub-directories. */
export type PathTranslation = string | false;

export interface MountSpec {
  readonly objects: readonly ObjectSpec[];
  readonly region?: string;
  readonly failoverRegion?: string;
  readonly pathTranslation: PathTranslation;
  /**
   * Unknown fields of object entries, ignored as ASCP ignores them, named
   * `objects[0] (db): "objectTemplate"` for a warning; names only, never a value.
   */
  readonly ignoredFields: readonly string[];
}

/** One file's worth of output: what the agent writes, the CSI provider returns, the sync controller stores. */
export interface Payload {
  /** Path relative to the target directory, already checked to stay inside it. */
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly mode: FileMode;
  /** Which object and version produced it (CSI object_version, sync status, rotation). */
  readonly objectVersion: { readonly id: string; readonly version: string };
}
