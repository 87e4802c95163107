/**
 * The webhook's view of write-through Secrets: a supervised informer over Secrets labelled
 * `smk.dev/write-through=true` (they carry no data, only references), so pod admission knows
 * which secret volumes to swap without any call on its path.
 */
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../../core/log.ts';
import { writeThroughAnnotations, writeThroughLabel } from '../../core/write-through.ts';
import { apiStatus, type KubeConfig } from '../../kube/client.ts';
import { apiSource, createInformer, type Informer, resourcePath, secretLister } from '../../kube/informer.ts';
import type { WriteThroughLookup, WriteThroughRef } from './pods.ts';

export interface WriteThroughCache {
  readonly lookup: WriteThroughLookup;
  /** Resolves once every informer listed (pod admission is only right from then on). */
  start(): Promise<void>;
  stop(): void;
  readonly synced: boolean;
}

function split(text: string | undefined): string[] {
  return text === undefined || text === '' ? [] : text.split(',');
}

/** What a stored write-through Secret tells the pod path; undefined until smk wrote it through. */
export function refOfSecret(secret: V1Secret): WriteThroughRef | undefined {
  if (secret.metadata?.labels?.[writeThroughLabel] !== 'true') return undefined;
  const annotations = secret.metadata.annotations ?? {};
  const arn = annotations[writeThroughAnnotations.arn];
  if (arn === undefined) return undefined;
  return {
    arn,
    keys: split(annotations[writeThroughAnnotations.keys]),
    base64Keys: split(annotations[writeThroughAnnotations.base64Keys]),
  };
}

export function createWriteThroughCache(
  kubeConfig: KubeConfig,
  options: { readonly namespaces?: readonly string[]; readonly logger: Logger },
): WriteThroughCache {
  const scopes = options.namespaces && options.namespaces.length > 0 ? options.namespaces : [undefined];
  const informers: Informer<V1Secret>[] = scopes.map((namespace) =>
    createInformer<V1Secret>(
      apiSource<V1Secret>(kubeConfig, {
        path: resourcePath('v1', 'secrets', namespace),
        list: secretLister(kubeConfig, namespace),
        labelSelector: `${writeThroughLabel}=true`,
      }),
      { name: `write-through-secrets${namespace ? `/${namespace}` : ''}`, logger: options.logger },
    ),
  );
  return {
    lookup(namespace, name) {
      for (const informer of informers) {
        const secret = informer.get(namespace, name);
        if (secret) return refOfSecret(secret);
      }
      return undefined;
    },
    async start() {
      await Promise.all(informers.map((informer) => informer.start()));
    },
    stop() {
      for (const informer of informers) informer.stop();
    },
    get synced() {
      return informers.every((informer) => informer.synced);
    },
  };
}

/** A GET for the CREATE pre-check: true/false, or undefined when the API server could not tell. */
export function secretExistsFunction(
  kubeConfig: KubeConfig,
): (namespace: string, name: string) => Promise<boolean | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async (namespace, name) => {
    try {
      await core.readNamespacedSecret({ namespace, name });
      return true;
    } catch (error) {
      return apiStatus(error) === 404 ? false : undefined;
    }
  };
}
