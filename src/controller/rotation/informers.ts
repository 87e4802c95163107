/**
 * What rotation watches, declared once as the manager's kinds (kube/kinds.ts): the sync sources and
 * managed Secrets are the sync controller's (../kinds.ts, one shared watch each); mappings, every
 * rollout kind's workloads, and the Secrets and ConfigMaps workloads name are rotation's own.
 * A kind's trim is compared by reference (one kind, one trim), so these are constants.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ResourceKind } from '../../kube/kinds.ts';
import type { CustomResource } from '../../kube/served.ts';
import { apiVersionOf, type RolloutKind, rolloutKindNames, rolloutKinds } from './kinds.ts';
import { mappingGroup, mappingKind, mappingPlural, mappingVersion } from './mapping.ts';
import { digestOnly, type ReferenceKind } from './references.ts';

/** The CRD probed before mappings are watched (`auto`). */
export const mappingResource: Omit<CustomResource, 'namespace'> = {
  group: mappingGroup,
  version: mappingVersion,
  plural: mappingPlural,
};

export const rotationMappings: ResourceKind<KubernetesObject> = {
  apiVersion: `${mappingGroup}/${mappingVersion}`,
  kind: mappingKind,
  plural: mappingPlural,
};

/** Each rollout kind's workloads, at its row's API (./kinds.ts). */
export const workloadKinds: { readonly [K in RolloutKind]: ResourceKind<KubernetesObject> } =
  Object.fromEntries(
    rolloutKindNames.map((kind) => [
      kind,
      { apiVersion: apiVersionOf(kind), kind, plural: rolloutKinds[kind].resource },
    ]),
  ) as { readonly [K in RolloutKind]: ResourceKind<KubernetesObject> };

/** The CRD of an optional rollout kind (e.g. Argo's Rollout), probed before it is watched. */
export function workloadResource(kind: RolloutKind): Omit<CustomResource, 'namespace'> {
  const row = rolloutKinds[kind];
  return { group: row.group, version: row.version, plural: row.resource };
}

/**
 * Every Secret and ConfigMap (the ones workloads name for restarts, references.ts): only a digest
 * of the data is kept, so no value sits in rotation's memory, and little of it.
 */
export const referencedKinds: { readonly [K in ReferenceKind]: ResourceKind<KubernetesObject> } = {
  Secret: { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', transform: digestOnly },
  ConfigMap: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', transform: digestOnly },
};
