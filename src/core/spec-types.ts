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
  /**
   * Name or ARN as written. For a `discover` entry, the discovery's label until the pipeline
   * replaces the entry with one object per secret found (./discovery.ts).
   */
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
  /** Set by `discover`: the objects are the secrets or parameters it finds (./discovery.ts). */
  readonly discover?: Discovery;
  /** On an object a discovery produced: the label of the entry that found it, for messages. */
  readonly discoveredBy?: string;
}

/**
 * `discover` (ESO's dataFrom.find; ASCP's "mount everything under a path"): which secrets or
 * parameters the entry stands for, listed again on every resolution.
 */
export interface Discovery {
  /** Secrets Manager: names start with this (case-sensitive). */
  readonly namePrefix?: string;
  /** Secrets Manager: names match this glob (`*` any run, `?` one character; ./discovery.ts). */
  readonly nameGlob?: string;
  /** Secrets Manager: every tag here, with exactly this value. */
  readonly tags: ReadonlyMap<string, string>;
  /** SSM: parameters under this path (GetParametersByPath). */
  readonly path?: string;
  /** SSM: below the path's direct children too. */
  readonly recursive: boolean;
  /** At most this many matches (≤ maxDiscovered); more is an error, never a cut. */
  readonly limit: number;
  /** Name the files without namePrefix / path (and the `/` after it). */
  readonly stripPrefix: boolean;
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
