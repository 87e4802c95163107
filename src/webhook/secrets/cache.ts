/**
 * The webhook's view of write-through Secrets: a supervised informer over Secrets labelled
 * `smk.dev/write-through=true` (they carry no data, only references), so pod admission knows
 * which secret volumes to swap without any call on its path. Every webhook replica serves, so
 * there is no leader election and no manager (kube/manager.ts and its Lease load client-node):
 * one informer per namespace scope, listing and watching through the undici transport.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { parseArn } from '../../core/arn.ts';
import type { Logger } from '../../core/log.ts';
import {
  secretKeyProblem,
  secretNameOf,
  writeThroughAnnotations,
  writeThroughLabel,
} from '../../core/write-through.ts';
import { apiSource } from '../../kube/api-source.ts';
import type { KubeAccess } from '../../kube/endpoint.ts';
import { createInformer, type Informer, resourcePath } from '../../kube/informer.ts';
import { writeThroughSecrets } from '../../kube/kinds.ts';
import type { WriteThroughLookup, WriteThroughRef } from './pods.ts';

export interface WriteThroughCache {
  readonly lookup: WriteThroughLookup;
  /** Resolves once every informer listed (pod admission is only right from then on). */
  start(): Promise<void>;
  stop(): void;
  readonly synced: boolean;
}

/** Where write-through secrets live: the webhook's prefix and the region the controller writes in. */
export interface WriteThroughLocation {
  readonly prefix: string;
  readonly region: string;
}

function keyList(text: string | undefined): string[] {
  const keys = text === undefined || text === '' ? [] : text.split(',');
  // Key names become file names in the pod: only what a Secret key may be.
  return keys.filter((key) => secretKeyProblem(key) === undefined);
}

/**
 * What a stored write-through Secret tells the pod path. The secret it names is derived from the
 * Secret's namespace and name (src/core/write-through.ts), never taken from an annotation: the
 * ARN the controller recorded is used only when it is that secret's (exact, and region-bound),
 * else the name in the controller's region. A labelled Secret is write-through from the start:
 * before the controller has written it, its pods wait in the agent rather than mount it empty.
 */
export function refOfSecret(secret: V1Secret, location: WriteThroughLocation): WriteThroughRef | undefined {
  if (secret.metadata?.labels?.[writeThroughLabel] !== 'true') return undefined;
  const annotations = secret.metadata.annotations ?? {};
  const target = secretNameOf(
    location.prefix,
    secret.metadata.namespace ?? '',
    secret.metadata.name ?? '',
    annotations,
  );
  if ('problem' in target) return undefined;
  const arn = annotations[writeThroughAnnotations.arn] ?? '';
  const parsed = parseArn(arn);
  const resource = `secret:${target.name}-`;
  const exact =
    parsed?.service === 'secretsmanager' &&
    parsed.region === location.region &&
    parsed.resource.startsWith(resource) &&
    /^[A-Za-z0-9]{6}$/.test(parsed.resource.slice(resource.length));
  return {
    secretId: exact ? arn : target.name,
    region: location.region,
    keys: keyList(annotations[writeThroughAnnotations.keys]),
    base64Keys: keyList(annotations[writeThroughAnnotations.base64Keys]),
  };
}

export function createWriteThroughCache(
  access: KubeAccess,
  options: {
    readonly namespaces?: readonly string[];
    readonly logger: Logger;
    readonly location: WriteThroughLocation;
  },
): WriteThroughCache {
  const kind = writeThroughSecrets;
  const scopes = options.namespaces && options.namespaces.length > 0 ? options.namespaces : [undefined];
  const informers = new Map<string, Informer<V1Secret>>();
  for (const namespace of scopes) {
    const source = apiSource<V1Secret>(access, {
      path: resourcePath(kind.apiVersion, kind.plural, namespace),
      ...(kind.labelSelector ? { labelSelector: kind.labelSelector } : {}),
    });
    informers.set(
      namespace ?? '',
      createInformer(source, {
        name: `${kind.plural}[${kind.labelSelector}]${namespace ? `/${namespace}` : ''}`,
        logger: options.logger,
        ...(kind.transform ? { transform: kind.transform } : {}),
      }),
    );
  }
  const all = [...informers.values()];
  // One namespace's informer answers for its namespace; a cluster-wide one for every namespace.
  const informerOf = (namespace: string): Informer<V1Secret> | undefined =>
    informers.get(namespace) ?? informers.get('');
  return {
    lookup(namespace, name) {
      const secret = informerOf(namespace)?.get(namespace, name);
      return secret ? refOfSecret(secret, options.location) : undefined;
    },
    start: async () => {
      await Promise.all(all.map((informer) => informer.start()));
    },
    stop() {
      for (const informer of all) informer.stop();
    },
    get synced() {
      return all.every((informer) => informer.synced);
    },
  };
}
