/**
 * An ExternalSecret's data → smk's objects: remote refs become ASCP objects (with field paths for
 * ESO's properties), refresh durations their smk equivalents.
 */
import type * as z from 'zod';
import { dataEntry, remoteRef } from './convert-eso-schema.ts';
import { type ConvertIssue, unknownFields } from './convert-output.ts';

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * ESO's `property` (a gjson path: dots, `\.` for a literal dot, numbers for array items) as smk's
 * plain field path; undefined for gjson's wildcards and queries.
 */
export function fieldPathOf(property: string): string | undefined {
  if (/[*?#|@]/.test(property)) return undefined;
  const segments = property.split(/(?<!\\)\./).map((segment) => segment.replaceAll('\\.', '.'));
  if (segments.some((segment) => segment === '')) return undefined;
  return segments
    .map((segment, index) => {
      if (/^\d+$/.test(segment) && index > 0) return `[${segment}]`;
      return identifier.test(segment) ? segment : JSON.stringify(segment);
    })
    .join('.')
    .replaceAll('.[', '[');
}

export interface SmkObject {
  objectName: string;
  objectType: string;
  objectAlias?: string;
  objectVersion?: string;
  objectVersionLabel?: string;
  extractKeys?: true;
  jmesPath?: { path: string; objectAlias: string }[];
}

export type RemoteRef = z.infer<typeof remoteRef>;

/** What a remote ref asks of the value that smk does not do, as issues under `field`. */
function refIssues(ref: RemoteRef, field: string, subject: string): ConvertIssue[] {
  const issues: ConvertIssue[] = [];
  const unsupported = (where: string, message: string): void => {
    issues.push({ severity: 'unsupported', subject, field: `${field}.${where}`, message });
  };
  if (ref.metadataPolicy === 'Fetch')
    unsupported('metadataPolicy', 'smk does not read tags or metadata as values');
  if (ref.decodingStrategy !== undefined && ref.decodingStrategy !== 'None') {
    unsupported('decodingStrategy', 'smk writes values as stored (no Base64 decoding)');
  }
  // Default keeps the keys as they are, as smk does; Unicode renames invalid ones, smk refuses them.
  if (ref.conversionStrategy === 'Unicode') {
    unsupported(
      'conversionStrategy',
      'no Unicode key conversion: smk fails an object whose key is not a valid Secret key',
    );
  }
  return issues;
}

/** The ASCP object a remote key (and version) becomes; one per distinct pair. */
function remoteObject(
  byRemote: Map<string, SmkObject>,
  ref: RemoteRef,
  settings: { objectType: string; prefix: string },
): SmkObject {
  const version = ref.version;
  const name = `${settings.prefix}${ref.key}`;
  const remote = `${name}\0${version ?? ''}`;
  let object = byRemote.get(remote);
  if (object === undefined) {
    object = { objectName: name, objectType: settings.objectType };
    if (version !== undefined) {
      if (version.startsWith('uuid/')) object.objectVersion = version.slice('uuid/'.length);
      else if (settings.objectType === 'ssmparameter' && /^\d+$/.test(version))
        object.objectVersion = version;
      else object.objectVersionLabel = version;
    }
    byRemote.set(remote, object);
  }
  return object;
}

/**
 * `spec.data` and `spec.dataFrom[].extract` → ASCP objects (one per remote key and version) and
 * the Secret keys `spec.data` fills. An extract becomes `extractKeys: true` (on the same object as
 * `spec.data` entries of that key, so no whole-value file appears beside them).
 */
export function objectsOf(
  data: z.infer<typeof dataEntry>[],
  extracts: { ref: RemoteRef; field: string }[],
  settings: { objectType: string; prefix: string },
  subject: string,
): { objects: SmkObject[]; keys: { objectName: string; key: string }[]; issues: ConvertIssue[] } {
  const byRemote = new Map<string, SmkObject>();
  const keys: { objectName: string; key: string }[] = [];
  const issues: ConvertIssue[] = [];
  for (const [index, entry] of data.entries()) {
    const field = `spec.data[${index}]`;
    const unsupported = (where: string, message: string): void => {
      issues.push({ severity: 'unsupported', subject, field: `${field}.${where}`, message });
    };
    issues.push(
      ...unknownFields(dataEntry, entry, subject, field),
      ...unknownFields(remoteRef, entry.remoteRef, subject, `${field}.remoteRef`),
      ...refIssues(entry.remoteRef, `${field}.remoteRef`, subject),
    );
    const ref = entry.remoteRef;
    if (entry.sourceRef !== undefined)
      unsupported('sourceRef', 'smk reads one store per object (no generators or per-key stores)');
    const object = remoteObject(byRemote, ref, settings);
    if (ref.property === undefined) {
      if (object.objectAlias !== undefined) {
        unsupported(
          'secretKey',
          `the whole value of ${object.objectName} is already written as ${object.objectAlias}; smk writes one file per object`,
        );
        continue;
      }
      object.objectAlias = entry.secretKey;
    } else {
      const path = fieldPathOf(ref.property);
      if (path === undefined) {
        unsupported('remoteRef.property', 'gjson wildcards and queries have no plain field path equivalent');
        continue;
      }
      object.jmesPath = [...(object.jmesPath ?? []), { path, objectAlias: entry.secretKey }];
    }
    keys.push({ objectName: entry.secretKey, key: entry.secretKey });
  }
  for (const { ref, field } of extracts) {
    issues.push(...unknownFields(remoteRef, ref, subject, field), ...refIssues(ref, field, subject));
    if (ref.property !== undefined) {
      issues.push({
        severity: 'unsupported',
        subject,
        field: `${field}.property`,
        message: 'extractKeys takes the top-level keys of the whole value, not of a nested object',
      });
      continue;
    }
    const object = remoteObject(byRemote, ref, settings);
    if (object.objectAlias !== undefined) {
      issues.push({
        severity: 'unsupported',
        subject,
        field,
        message: `the whole value of ${object.objectName} is also written as ${object.objectAlias}; an extractKeys object writes only its keys`,
      });
      continue;
    }
    object.extractKeys = true;
  }
  return { objects: [...byRemote.values()], keys, issues };
}

/** ESO's "never refresh": a Go duration that is zero ("0", "0s", "0h0m0s"). */
export function isZeroDuration(text: string): boolean {
  return /^(?:0+(?:\.0*)?(?:ns|us|µs|ms|s|m|h)?)+$/.test(text);
}
