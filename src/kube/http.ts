/**
 * Direct requests to the API server for the writes and reads the controllers make per object.
 *
 * client-node's generated API spends ~1 ms of CPU per call on its fetch stack and its
 * ObjectSerializer (measured: 1.0–1.2 ms per Secret create against 0.3–0.4 ms for the same request
 * through undici.request on the same pooled connection). At a cold start with 10,000 SecretSyncs
 * that is 20–30 s of CPU on a machine the API server also needs, so the per-object calls go
 * through here: same KubeConfig, same pooled connection and credentials (see PooledKubeConfig),
 * JSON in and out. Resources are found by discovery, once per group/version, as client-node does.
 * Given an in-cluster KubeEndpoint (./in-cluster.ts) instead, this module never loads client-node.
 */
import type { Readable } from 'node:stream';
import { request } from 'undici';
import { smkVersion } from '../core/version.ts';
import { KubeHttpError, parseApiStatus } from './api-errors.ts';
import { type KubeAccess, type KubeConnection, KubeEndpoint } from './endpoint.ts';

export type ContentType =
  | 'application/json'
  | 'application/apply-patch+yaml'
  | 'application/merge-patch+json'
  | 'application/strategic-merge-patch+json'
  | 'application/json-patch+json';

export interface KubeRequest {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** The path below the server URL, e.g. `/api/v1/namespaces/a/secrets`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | boolean | undefined>>;
  /** Serialised as JSON (apply patches too: JSON is YAML). */
  readonly body?: unknown;
  readonly contentType?: ContentType;
  /**
   * The caller uses nothing of a successful answer (a status write, an event): its body is read,
   * so the stream is freed, but not parsed. A status apply answers with the whole object, and
   * parsing it cost a tenth of the sync controller's CPU at a cold start.
   */
  readonly discardAnswer?: boolean;
}

/** What identifies a kind's REST resource; found by discovery. */
export interface ResourceInfo {
  /** `v1`, `apps/v1`, `smk.dev/v1alpha1`. */
  readonly apiVersion: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

export interface KubeHttp {
  /** The parsed JSON response; throws KubeHttpError for an error status. */
  send<T>(request: KubeRequest): Promise<T>;
  /** The resource for `apiVersion` + `kind` (discovery, cached per group/version). */
  resource(apiVersion: string, kind: string): Promise<ResourceInfo>;
  /**
   * A GET whose body is read as it arrives (a WATCH); an error status is thrown as send()'s are.
   * The body ends when the server closes it, `signal` aborts, or it stays silent `bodyTimeoutMs`.
   */
  stream(spec: StreamRequest): Promise<Readable>;
}

export interface StreamRequest {
  readonly path: string;
  readonly query?: KubeRequest['query'];
  readonly signal: AbortSignal;
  readonly bodyTimeoutMs: number;
}

/** `/api/v1` for the core group, `/apis/<group>/<version>` for the others. */
export function apiBase(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/** One object of a collection, and optionally its subresource (`status`, `token`). */
export interface ObjectPathPart {
  readonly name: string;
  readonly subresource?: string;
}

/**
 * The one builder of API paths (requests and watches alike): the collection of `plural` in
 * `apiVersion`, cluster-wide or in `namespace`, and with `object` one object of it. Names are
 * URL-encoded, so a name can never reach another path.
 */
export function resourcePath(
  apiVersion: string,
  plural: string,
  namespace?: string,
  object?: ObjectPathPart,
): string {
  const scope = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const collection = `${apiBase(apiVersion)}${scope}/${plural}`;
  if (!object) return collection;
  // Without a name the path would be the collection: a GET would list, a DELETE delete them all.
  if (!object.name) throw new TypeError(`${plural}: an object path needs a name`);
  const sub = object.subresource ? `/${object.subresource}` : '';
  return `${collection}/${encodeURIComponent(object.name)}${sub}`;
}

/** The path of a discovered resource, in `namespace` when it is namespaced (required then). */
export function pathOf(
  resource: ResourceInfo,
  namespace: string | undefined,
  object?: ObjectPathPart,
): string {
  if (resource.namespaced && !namespace)
    throw new TypeError(`${resource.plural} are namespaced: a namespace is required`);
  return resourcePath(
    resource.apiVersion,
    resource.plural,
    resource.namespaced ? namespace : undefined,
    object,
  );
}

export function queryString(query: KubeRequest['query']): string {
  const parameters = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) parameters.set(name, String(value));
  }
  const text = parameters.toString();
  return text ? `?${text}` : '';
}

interface ApiResourceList {
  readonly resources?: readonly { name: string; kind: string; namespaced: boolean }[];
}

const userAgent = `smk/${smkVersion}`;
const connectionReuseMs = 1000;

/**
 * The endpoint of `access`. A KubeConfig means client-node is loaded already; only our code that
 * reads it (./client.ts) is imported, on first use, so a KubeEndpoint alone loads none of it.
 */
function endpointOf(access: KubeAccess): KubeEndpoint {
  if (access instanceof KubeEndpoint) return access;
  let endpoint: Promise<KubeEndpoint> | undefined;
  return new KubeEndpoint(access.getCurrentCluster()?.server ?? '', async () => {
    endpoint ??= import('./client.ts').then(({ kubeConfigEndpoint }) => kubeConfigEndpoint(access));
    return (await endpoint).connection();
  });
}

export function createKubeHttp(access: KubeAccess): KubeHttp {
  const endpoint = endpointOf(access);
  const server = endpoint.server.replace(/\/+$/, '');
  const discovered = new Map<string, Promise<ApiResourceList>>();

  // Credentials are worked out at most once a second, not per call (that was a tenth of the
  // controller's CPU at a cold start); a rotated token is still picked up within that second.
  let connection: { readonly at: number; readonly value: Promise<KubeConnection> } | undefined;
  function currentConnection(): Promise<KubeConnection> {
    const at = performance.now();
    if (!connection || at - connection.at >= connectionReuseMs) {
      const value = endpoint.connection();
      connection = { at, value };
      value.catch(() => {
        if (connection?.value === value) connection = undefined;
      });
    }
    return connection.value;
  }

  async function send<T>(spec: KubeRequest): Promise<T> {
    const { dispatcher, headers } = await currentConnection();
    const response = await request(`${server}${spec.path}${queryString(spec.query)}`, {
      method: spec.method,
      dispatcher,
      headers: {
        ...headers,
        accept: 'application/json',
        'user-agent': userAgent,
        ...(spec.body === undefined ? {} : { 'content-type': spec.contentType ?? 'application/json' }),
      },
      ...(spec.body === undefined ? {} : { body: JSON.stringify(spec.body) }),
    });
    const text = await response.body.text();
    if (response.statusCode >= 400) {
      const retryAfter = response.headers['retry-after'];
      throw new KubeHttpError(
        spec.method,
        spec.path,
        response.statusCode,
        parseApiStatus(text, typeof retryAfter === 'string' ? retryAfter : undefined),
      );
    }
    return spec.discardAnswer ? (undefined as T) : parseBody<T>(spec, response.statusCode, text);
  }

  async function stream(spec: StreamRequest): Promise<Readable> {
    const { dispatcher, headers } = await currentConnection();
    const response = await request(`${server}${spec.path}${queryString(spec.query)}`, {
      method: 'GET',
      dispatcher,
      headers: { ...headers, accept: 'application/json', 'user-agent': userAgent },
      signal: spec.signal,
      bodyTimeout: spec.bodyTimeoutMs,
    });
    if (response.statusCode >= 300) {
      const text = await response.body.text().catch(() => '');
      const retryAfter = response.headers['retry-after'];
      throw new KubeHttpError(
        'GET',
        spec.path,
        response.statusCode,
        parseApiStatus(text, typeof retryAfter === 'string' ? retryAfter : undefined),
      );
    }
    return response.body;
  }

  async function resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const base = apiBase(apiVersion);
    let listing = discovered.get(base);
    if (!listing) {
      listing = send<ApiResourceList>({ method: 'GET', path: base });
      discovered.set(base, listing);
      // A failed discovery is asked again next time, not remembered.
      listing.catch(() => discovered.delete(base));
    }
    const found = (await listing).resources?.find(
      (entry) => entry.kind === kind && !entry.name.includes('/'),
    );
    if (!found)
      throw new KubeHttpError('GET', `${base} (kind ${kind} not served)`, 404, { reason: 'NotFound' });
    return { apiVersion, plural: found.name, namespaced: found.namespaced };
  }

  return { send, resource, stream };
}

/** One page of a list, as an informer consumes it. */
export interface ListedPage<T> {
  readonly items: T[];
  readonly resourceVersion: string;
  /** Undefined on the last page. */
  readonly continueToken: string | undefined;
}

/**
 * One page of the collection at `path` (from resourcePath), through this transport: the lister an
 * informer needs for any kind, typed or custom, with the `continue` token kept (client-node's
 * KubernetesObjectApi.list drops it for custom resources).
 */
export async function listPage<T>(
  http: Pick<KubeHttp, 'send'>,
  path: string,
  page: {
    readonly limit: number;
    readonly continueToken?: string | undefined;
    readonly labelSelector?: string | undefined;
  },
): Promise<ListedPage<T>> {
  const list = await http.send<{
    readonly items?: T[] | null;
    readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  }>({
    method: 'GET',
    path,
    query: { limit: String(page.limit), continue: page.continueToken, labelSelector: page.labelSelector },
  });
  return {
    items: list?.items ?? [],
    resourceVersion: list?.metadata?.resourceVersion ?? '',
    continueToken: list?.metadata?.continue || undefined,
  };
}

/**
 * The JSON of a successful answer. A body that is not JSON (a proxy's page, a cut connection) is a
 * KubeHttpError naming the request, never JSON.parse's SyntaxError: its message quotes the text,
 * which may be a Secret's data.
 */
export function parseBody<T>(spec: Pick<KubeRequest, 'method' | 'path'>, status: number, text: string): T {
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new KubeHttpError(spec.method, spec.path, status, { reason: 'NotJson' });
  }
}
