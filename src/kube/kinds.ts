/**
 * What a shared informer watches: one resource, optionally narrowed by a label selector, and the
 * trim applied once to every object it caches. Two controllers naming the same kind share one
 * watch (./manager.ts), so a kind is declared once, as a constant, beside the code that owns it.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { writeThroughLabel } from '../core/write-through.ts';

export interface ResourceKind<T> {
  /** `v1`, `apps/v1`, `smk.dev/v1alpha1`. */
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  readonly labelSelector?: string;
  /** Namespaces, ClusterSecretSyncs: one cluster-wide watch even when the manager serves a few namespaces. */
  readonly clusterScoped?: boolean;
  /**
   * Applied to every object before it is cached or handed to a handler (e.g. dropping
   * managedFields no reader needs). Shared by every reader of the kind, so it keeps what any
   * of them reads.
   */
  readonly transform?: (object: T) => T;
}

/** The identity of a watch: the same resource with another selector is another watch. */
export function kindKey(
  kind: Pick<ResourceKind<unknown>, 'apiVersion' | 'plural' | 'labelSelector'>,
): string {
  return `${kind.apiVersion}/${kind.plural}${kind.labelSelector ? `?${kind.labelSelector}` : ''}`;
}

/**
 * Secrets labelled write-through (they carry references, no data): the webhook admits pods by
 * them, the write-through controller commits them.
 */
export const writeThroughSecrets: ResourceKind<V1Secret> = {
  apiVersion: 'v1',
  kind: 'Secret',
  plural: 'secrets',
  labelSelector: `${writeThroughLabel}=true`,
};
