/**
 * Kubernetes Secrets and ConfigMaps a workload names for restarts (Reloader-style), so a workload
 * that reads a Secret synced by something else (or a ConfigMap) restarts when its data changes:
 *   smk.dev/reload-secrets: "db-creds, tls"
 *   smk.dev/reload-configmaps: "app-config"
 * and, where the controller is told to honour them (a drop-in for Stakater Reloader, once Reloader
 * itself is removed), Reloader's own `secret.reloader.stakater.com/reload` and
 * `configmap.reloader.stakater.com/reload` (comma-separated names, same meaning).
 *
 * A name is a bare object name: it always means the object in the workload's own namespace, so a
 * workload can only restart itself, for objects its own pods could mount anyway.
 *
 * What changed is the data, never the metadata: each object's data is kept only as a SHA-256
 * digest, in memory (never written anywhere: a digest of a short secret in an annotation readable
 * by everyone who may read the workload would let them test guesses). The "data version" of an
 * object is the resourceVersion at which its current data was first seen; a workload records
 * that (`smk.dev/rolled-versions`, `Secret/NAME` → resourceVersion) as it records AWS versions.
 * After every replica restarted, a data version is the current resourceVersion: an object whose
 * metadata alone changed while no controller ran restarts its readers once.
 */
import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { InvalidInputError } from '../../core/errors.ts';

export type ReferenceKind = 'Secret' | 'ConfigMap';

/** Workload annotation → the kind of object its names name; `reloader` marks Reloader's own. */
export const referenceAnnotations: readonly {
  readonly annotation: string;
  readonly kind: ReferenceKind;
  readonly reloader: boolean;
}[] = [
  { annotation: 'smk.dev/reload-secrets', kind: 'Secret', reloader: false },
  { annotation: 'smk.dev/reload-configmaps', kind: 'ConfigMap', reloader: false },
  { annotation: 'secret.reloader.stakater.com/reload', kind: 'Secret', reloader: true },
  { annotation: 'configmap.reloader.stakater.com/reload', kind: 'ConfigMap', reloader: true },
];

/** One object a workload names, and the annotation that names it. */
export interface Reference {
  readonly kind: ReferenceKind;
  readonly name: string;
  readonly annotation: string;
}

/** A DNS subdomain, as object names are: in particular no `/`, so never another namespace. */
const objectName = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * The objects a workload's annotations name. Throws InvalidInputError naming the annotation for a
 * name that is not an object name (e.g. `other-namespace/secret`).
 */
export function parseReferences(
  label: string,
  annotations: Readonly<Record<string, string>>,
  options: { readonly reloaderAnnotations?: boolean } = {},
): Reference[] {
  const found: Reference[] = [];
  for (const { annotation, kind, reloader } of referenceAnnotations) {
    if (reloader && !options.reloaderAnnotations) continue;
    const text = annotations[annotation];
    if (text === undefined) continue;
    for (const name of text.split(/[\s,]+/).filter((part) => part !== '')) {
      if (!objectName.test(name)) {
        throw new InvalidInputError(
          `${label}: annotation ${annotation}: "${name.slice(0, 80)}" is not a ${kind} name; name ${kind}s in the workload's own namespace only, without a namespace`,
          { subject: label, field: `metadata.annotations.${annotation}` },
        );
      }
      if (!found.some((other) => other.kind === kind && other.name === name))
        found.push({ kind, name, annotation });
    }
  }
  return found;
}

/** Where an informer strips an object to its digest (memory: no values kept), the digest is here. */
const digestField = 'smkDataDigest';

/** SHA-256 over the object's data and binaryData (keys sorted), or the digest an informer kept. */
export function dataDigest(object: KubernetesObject): string {
  const kept = (object as Record<string, unknown>)[digestField];
  if (typeof kept === 'string') return kept;
  const hash = createHash('sha256');
  for (const field of ['data', 'binaryData'] as const) {
    const data = (object as Record<string, unknown>)[field];
    const entries = data && typeof data === 'object' ? Object.entries(data as Record<string, unknown>) : [];
    hash.update(`${field}\0`);
    for (const [key, value] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      hash.update(`${key}\0${typeof value === 'string' ? value : ''}\0`);
    }
  }
  return hash.digest('hex');
}

/** Informer transform: the object's identity and its data digest, no data (what rotation needs). */
export function digestOnly(object: KubernetesObject): KubernetesObject {
  const { name, namespace, uid, resourceVersion } = object.metadata ?? {};
  return {
    apiVersion: object.apiVersion ?? 'v1',
    kind: object.kind ?? '',
    metadata: {
      ...(name !== undefined ? { name } : {}),
      ...(namespace !== undefined ? { namespace } : {}),
      ...(uid !== undefined ? { uid } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    },
    [digestField]: dataDigest(object),
  } as KubernetesObject;
}

export interface ReferenceTracker {
  /**
   * An object seen (informer add or update): 'new' on first sight, 'changed' when its data differs
   * from what was seen, else 'same' (a metadata-only update).
   */
  observe(kind: ReferenceKind, object: KubernetesObject): 'new' | 'changed' | 'same';
  forget(kind: ReferenceKind, object: KubernetesObject): void;
  /** The resourceVersion at which the object's current data was first seen; undefined when not seen. */
  dataVersion(kind: ReferenceKind, namespace: string, name: string): string | undefined;
}

export function createReferenceTracker(): ReferenceTracker {
  const seen = new Map<string, { version: string; digest: string }>();
  const keyOf = (kind: ReferenceKind, namespace: string | undefined, name: string | undefined) =>
    `${kind}/${namespace ?? ''}/${name ?? ''}`;
  return {
    observe(kind, object) {
      const key = keyOf(kind, object.metadata?.namespace, object.metadata?.name);
      const digest = dataDigest(object);
      const known = seen.get(key);
      if (known?.digest === digest) return 'same';
      seen.set(key, { version: object.metadata?.resourceVersion ?? '', digest });
      return known ? 'changed' : 'new';
    },
    forget(kind, object) {
      seen.delete(keyOf(kind, object.metadata?.namespace, object.metadata?.name));
    },
    dataVersion(kind, namespace, name) {
      return seen.get(keyOf(kind, namespace, name))?.version;
    },
  };
}
