/**
 * What rotation watches, and the ONE place its informers are made. The controller asks
 * `informerFor(kind)` for each kind it needs; the default (`apiInformers`) opens one supervised
 * informer per watched namespace through the API server. A process-wide manager with shared
 * informers plugs in by passing its own `InformerFor` (RotationControllerOptions.informerFor).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../../core/log.ts';
import type { KubeConfig } from '../../kube/client.ts';
import {
  apiSource,
  createInformer,
  type Informer,
  type InformerHandlers,
  resourcePath,
} from '../../kube/informer.ts';
import {
  managedByLabel,
  managedByValue,
  secretSyncKind,
  secretSyncPlural,
  spcGroup,
  spcKind,
  spcPlural,
  spcVersion,
  group as syncGroup,
  version as syncVersion,
} from '../jobs.ts';
import { apiVersionOf, type RolloutKind, rolloutKindNames, rolloutKinds } from './kinds.ts';
import { mappingGroup, mappingKind, mappingPlural, mappingVersion } from './mapping.ts';
import { digestOnly, type ReferenceKind } from './references.ts';

/** Everything rotation watches: the sync sources, the Secrets smk wrote, mappings, and each rollout kind. */
export type WatchedKind =
  | typeof secretSyncKind
  | typeof spcKind
  | typeof mappingKind
  /** Secrets labelled `app.kubernetes.io/managed-by=smk`: the ones the sync controller wrote. */
  | 'ManagedSecret'
  /** Every Secret and ConfigMap: the ones workloads name for restarts (references.ts). */
  | ReferenceKind
  | RolloutKind;

export interface WatchedResource {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  readonly labelSelector?: string;
  /** Applied before caching: what rotation keeps of each object (a shared informer may keep more). */
  readonly transform?: (object: KubernetesObject) => KubernetesObject;
}

export const watchedResources: { readonly [K in WatchedKind]: WatchedResource } = {
  [secretSyncKind]: {
    apiVersion: `${syncGroup}/${syncVersion}`,
    kind: secretSyncKind,
    plural: secretSyncPlural,
  },
  [spcKind]: { apiVersion: `${spcGroup}/${spcVersion}`, kind: spcKind, plural: spcPlural },
  [mappingKind]: {
    apiVersion: `${mappingGroup}/${mappingVersion}`,
    kind: mappingKind,
    plural: mappingPlural,
  },
  ManagedSecret: {
    apiVersion: 'v1',
    kind: 'Secret',
    plural: 'secrets',
    labelSelector: `${managedByLabel}=${managedByValue}`,
  },
  // Only a digest of the data is kept: no value in rotation's memory, and little of it.
  Secret: { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', transform: digestOnly },
  ConfigMap: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', transform: digestOnly },
  ...(Object.fromEntries(
    rolloutKindNames.map((kind) => [
      kind,
      { apiVersion: apiVersionOf(kind), kind, plural: rolloutKinds[kind].resource },
    ]),
  ) as { readonly [K in RolloutKind]: WatchedResource }),
};

/**
 * An informer of one watched kind over every namespace rotation serves. The controller starts the
 * informers it asked for and stops them when it stops (a shared manager counts references).
 */
export type InformerFor = (kind: WatchedKind) => Informer<KubernetesObject>;

export interface ApiInformersOptions {
  /** Only these namespaces (an informer each); empty or absent: all namespaces (one informer). */
  readonly namespaces?: readonly string[] | undefined;
  readonly logger: Logger;
  readonly relistIntervalMs?: number | undefined;
}

/** Informers through the API server: one per namespace, shown as one. */
export function apiInformers(kubeConfig: KubeConfig, options: ApiInformersOptions): InformerFor {
  const namespaces = options.namespaces && options.namespaces.length > 0 ? options.namespaces : [undefined];
  return (kind) => {
    const { apiVersion, kind: apiKind, plural, labelSelector, transform } = watchedResources[kind];
    return mergeInformers(
      namespaces.map((namespace) =>
        createInformer<KubernetesObject>(
          apiSource<KubernetesObject>(kubeConfig, {
            apiVersion,
            kind: apiKind,
            path: resourcePath(apiVersion, plural, namespace),
            ...(namespace ? { namespace } : {}),
            ...(labelSelector ? { labelSelector } : {}),
          }),
          {
            name: `rotation/${plural}${namespace ? `/${namespace}` : ''}`,
            logger: options.logger,
            ...(options.relistIntervalMs ? { relistIntervalMs: options.relistIntervalMs } : {}),
            ...(transform ? { transform } : {}),
          },
        ),
      ),
    );
  };
}

/** Several informers (one per namespace) as one: lists concatenate, a get asks each. */
export function mergeInformers<T>(informers: readonly Informer<T>[]): Informer<T> {
  const [only] = informers;
  if (informers.length === 1 && only) return only;
  return {
    addHandlers(handlers: InformerHandlers<T>) {
      for (const informer of informers) informer.addHandlers(handlers);
    },
    async start() {
      await Promise.all(informers.map((informer) => informer.start()));
    },
    stop() {
      for (const informer of informers) informer.stop();
    },
    get(namespace, name) {
      for (const informer of informers) {
        const found = informer.get(namespace, name);
        if (found) return found;
      }
      return undefined;
    },
    list() {
      return informers.flatMap((informer) => informer.list());
    },
    get healthy() {
      return informers.every((informer) => informer.healthy);
    },
    get synced() {
      return informers.every((informer) => informer.synced);
    },
  };
}
