/**
 * Where a supervised informer (./informer.ts) gets its objects from the API server: a paged LIST
 * and a WATCH with bookmarks, with the lister chosen from the resource (custom resource, Secret,
 * any other typed kind).
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  KubernetesObjectApi,
  type V1Secret,
  Watch,
} from '@kubernetes/client-node';
import type { KubeConfig } from './client.ts';
import { describeResource, type ListWatchSource, type WatchEventType } from './informer.ts';

/** One page of a LIST, as the API server sends it. */
export interface ListPage<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

export interface PageRequest {
  readonly limit: number;
  readonly continueToken: string | undefined;
  readonly labelSelector: string | undefined;
}

export type Lister<T> = (request: PageRequest) => Promise<ListPage<T>>;

interface ApiSourceCommon {
  /** Watch URL path, e.g. `/apis/smk.dev/v1alpha1/secretsyncs`, `/api/v1/namespaces/a/secrets`. */
  readonly path: string;
  readonly labelSelector?: string;
  /** Objects per list page. */
  readonly pageSize?: number;
}

export type ApiSourceOptions<T> = ApiSourceCommon &
  (
    | {
        /** Lists the same objects as `path` watches (see customObjectLister, secretLister). */
        readonly list: Lister<T>;
      }
    | {
        /** e.g. `smk.dev/v1alpha1`, `v1`: the lister is chosen from it (custom resource, Secret, typed kind). */
        readonly apiVersion: string;
        readonly kind: string;
        readonly namespace?: string;
      }
  );

function listerFor<T>(kubeConfig: KubeConfig, options: ApiSourceOptions<T>): Lister<T> {
  if ('list' in options) return options.list;
  const { apiVersion, kind, namespace } = options;
  if (apiVersion.includes('/')) {
    const [group = '', version = ''] = apiVersion.split('/');
    const plural = options.path.split('/').pop() ?? '';
    return customObjectLister<T>(kubeConfig, { group, version, plural, namespace });
  }
  if (kind === 'Secret') return secretLister(kubeConfig, namespace) as unknown as Lister<T>;
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  return async (request) => {
    const page = await objects.list<KubernetesObject>(
      apiVersion,
      kind,
      namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      request.labelSelector,
      request.limit,
      request.continueToken,
    );
    const metadata = page.metadata as { resourceVersion?: string; _continue?: string } | undefined;
    return {
      items: page.items as unknown as T[],
      resourceVersion: metadata?.resourceVersion ?? '',
      continueToken: metadata?._continue || undefined,
    };
  };
}

/**
 * A ListWatchSource over the API server: paged LIST, WATCH with bookmarks and a server-side
 * timeout, so a stream is renewed every few minutes even when all is quiet.
 */
export function apiSource<T>(kubeConfig: KubeConfig, options: ApiSourceOptions<T>): ListWatchSource<T> {
  const watcher = new Watch(kubeConfig);
  const pageSize = options.pageSize ?? 500;
  const lister = listerFor(kubeConfig, options);
  return {
    resource: describeResource(options.path, options.labelSelector),
    async list() {
      const items: T[] = [];
      let continueToken: string | undefined;
      let resourceVersion = '';
      do {
        const page = await lister({
          limit: pageSize,
          continueToken,
          labelSelector: options.labelSelector,
        });
        items.push(...page.items);
        resourceVersion = page.resourceVersion || resourceVersion;
        continueToken = page.continueToken;
      } while (continueToken);
      return { items, resourceVersion };
    },
    async watch(resourceVersion, onEvent, onDone) {
      const controller = await watcher.watch(
        options.path,
        {
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: 240 + Math.floor(Math.random() * 120),
          ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
        },
        (type: string, object: unknown) => onEvent(type as WatchEventType, object as T),
        onDone,
      );
      return { abort: () => controller.abort() };
    },
  };
}

interface PlainList<T> {
  readonly items?: T[];
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
}

/**
 * Lists a custom resource (all namespaces, or one). The answer stays plain JSON, like watch
 * events. (KubernetesObjectApi.list drops the `continue` token of custom resources, so a list
 * longer than a page would silently end after the first.)
 */
export function customObjectLister<T>(
  kubeConfig: KubeConfig,
  resource: { group: string; version: string; plural: string; namespace?: string | undefined },
): Lister<T> {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  return async (request) => {
    const common = {
      group: resource.group,
      version: resource.version,
      plural: resource.plural,
      limit: request.limit,
      ...(request.continueToken ? { _continue: request.continueToken } : {}),
      ...(request.labelSelector ? { labelSelector: request.labelSelector } : {}),
    };
    const page = (
      resource.namespace
        ? await custom.listNamespacedCustomObject({ ...common, namespace: resource.namespace })
        : await custom.listClusterCustomObject(common)
    ) as PlainList<T>;
    return {
      items: page.items ?? [],
      resourceVersion: page.metadata?.resourceVersion ?? '',
      continueToken: page.metadata?.continue || undefined,
    };
  };
}

/** Lists Secrets (all namespaces, or one). */
export function secretLister(kubeConfig: KubeConfig, namespace?: string): Lister<V1Secret> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async (request) => {
    const common = {
      limit: request.limit,
      ...(request.continueToken ? { _continue: request.continueToken } : {}),
      ...(request.labelSelector ? { labelSelector: request.labelSelector } : {}),
    };
    const page = namespace
      ? await core.listNamespacedSecret({ ...common, namespace })
      : await core.listSecretForAllNamespaces(common);
    return {
      items: page.items,
      resourceVersion: page.metadata?.resourceVersion ?? '',
      continueToken: page.metadata?._continue || undefined,
    };
  };
}
