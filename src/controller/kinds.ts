/**
 * What the controllers of `smk controller` watch, declared once: the sync and rotation controllers
 * read the same SecretSyncs, SecretProviderClasses and managed Secrets, and the manager
 * (kube/manager.ts) gives both the one shared, trimmed informer of each.
 */
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { ResourceKind } from '../kube/kinds.ts';
import {
  group,
  managedByLabel,
  managedByValue,
  secretSyncKind,
  secretSyncPlural,
  spcGroup,
  spcKind,
  spcPlural,
  spcVersion,
  version,
} from './jobs.ts';

export interface SecretSyncObject extends KubernetesObject {
  metadata: NonNullable<KubernetesObject['metadata']> & {
    name: string;
    namespace: string;
  };
  spec?: { refreshInterval?: string; target?: { name?: string }; creationPolicy?: string };
  status?: SyncStatus;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface SyncStatus {
  observedGeneration?: number;
  secretName?: string;
  lastSyncTime?: string;
  syncedVersions?: { objectName: string; versionId: string }[];
  conditions?: Condition[];
}

const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';

/** Cached sources keep what a reader uses: managedFields and kubectl's last-applied copy go. */
export function withoutBookkeeping<T extends KubernetesObject>(object: T): T {
  const metadata = object.metadata;
  if (!metadata) return object;
  delete metadata.managedFields;
  if (metadata.annotations?.[lastApplied] !== undefined) delete metadata.annotations[lastApplied];
  return object;
}

/** Cached Secrets keep only smk's own managedFields entries (sync/plan.ts reads them) and no last-applied copy. */
export function withOwnFieldsOnly(secret: V1Secret): V1Secret {
  const metadata = secret.metadata;
  if (!metadata) return secret;
  if (metadata.managedFields) {
    metadata.managedFields = metadata.managedFields.filter((entry) => entry.manager?.startsWith('smk'));
  }
  if (metadata.annotations?.[lastApplied] !== undefined) delete metadata.annotations[lastApplied];
  return secret;
}

export const secretSyncs: ResourceKind<SecretSyncObject> = {
  apiVersion: `${group}/${version}`,
  kind: secretSyncKind,
  plural: secretSyncPlural,
  transform: withoutBookkeeping,
};

export const secretProviderClasses: ResourceKind<KubernetesObject> = {
  apiVersion: `${spcGroup}/${spcVersion}`,
  kind: spcKind,
  plural: spcPlural,
  transform: withoutBookkeeping,
};

/** The CRD probed before SecretProviderClasses are watched (`auto`). */
export const secretProviderClassResource = {
  group: spcGroup,
  version: spcVersion,
  plural: spcPlural,
} as const;

/** The Secrets smk writes (its managed-by label). */
export const managedSecrets: ResourceKind<V1Secret> = {
  apiVersion: 'v1',
  kind: 'Secret',
  plural: 'secrets',
  labelSelector: `${managedByLabel}=${managedByValue}`,
  transform: withOwnFieldsOnly,
};
