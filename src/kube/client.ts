/**
 * Kubernetes client setup: the one place that decides where the API server is and how we
 * authenticate (KUBECONFIG / ~/.kube/config, else in-cluster service account).
 */
import { createHash } from 'node:crypto';
import type { RequestOptions } from 'node:https';
import { ApiException, KubeConfig, RequestContext } from '@kubernetes/client-node';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import { KubeHttpError, parseApiStatus, readClientErrorsWith } from './api-errors.ts';
import { KubeEndpoint } from './endpoint.ts';

export {
  type ApiStatusDetails,
  apiErrorOf,
  apiStatus,
  KubeHttpError,
  kubeError,
  parseApiStatus,
  retryAfterMsOf,
} from './api-errors.ts';
export { KubeConfig };

readClientErrorsWith((error) => {
  if (!(error instanceof ApiException)) return undefined;
  const headers = (error.headers ?? {}) as Record<string, string | undefined>;
  return new KubeHttpError('', '', error.code, parseApiStatus(error.body, headers['retry-after']));
});

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/**
 * client-node 2.0 builds a new undici Agent for every request, so every call pays a TLS
 * handshake and leaves an idle socket behind (a controller making thousands of calls grows to
 * hundreds of MB and crawls). This KubeConfig hands every request the same Agent per
 * (server, TLS material), so connections are reused. Only the first request for a key lets
 * client-node build its Agent; later ones set the headers it would set (bearer token or basic
 * auth, read afresh each time so a rotated token is used) and the pooled Agent, without building
 * and closing an Agent per request (that was a tenth of the controller's CPU at a cold start).
 */
class PooledKubeConfig extends KubeConfig {
  readonly #dispatchers = new Map<string, Dispatcher>();
  readonly #headersTimeoutMs: number;

  constructor(options: ConnectionOptions = {}) {
    super();
    this.#headersTimeoutMs = options.headersTimeoutMs ?? defaultHeadersTimeoutMs;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    const options: RequestOptions = {};
    await this.applyToHTTPSOptions(options);
    const key = createHash('sha256')
      .update(
        JSON.stringify([
          this.getCurrentCluster()?.server,
          this.getCurrentCluster()?.proxyUrl,
          String(options.ca ?? ''),
          String(options.cert ?? ''),
          String(options.key ?? ''),
          options.rejectUnauthorized,
          options.servername,
        ]),
      )
      .digest('hex');
    const pooled = this.#dispatchers.get(key);
    if (!pooled) {
      await super.applySecurityAuthentication(context);
      const fresh = context.getDispatcher();
      if (fresh) {
        const timeoutMs = this.#headersTimeoutMs;
        const bounded = fresh.compose(
          (dispatch) => (request, handler) => dispatch({ ...request, headersTimeout: timeoutMs }, handler),
        );
        this.#dispatchers.set(key, bounded);
        context.setDispatcher(bounded);
      }
      return;
    }
    const user = this.getCurrentUser();
    if (user?.username) {
      const basic = Buffer.from(`${user.username}:${user.password}`).toString('base64');
      context.setHeaderParam('Authorization', `Basic ${basic}`);
    }
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      context.setHeaderParam(name, `${value}`);
    }
    context.setDispatcher(pooled);
  }
}

/**
 * How long a request waits for the API server's response headers. Without it a request written to
 * a connection a middlebox froze (no reset, nothing back) waits for undici's default of 300 s; the
 * API server answers every request we make (a watch too) with headers at once, long lists included.
 */
const defaultHeadersTimeoutMs = 60_000;

export interface ConnectionOptions {
  readonly headersTimeoutMs?: number;
}

/** The same configuration with connection reuse and a response deadline (see PooledKubeConfig). */
export function withConnectionReuse(kubeConfig: KubeConfig, options: ConnectionOptions = {}): KubeConfig {
  if (kubeConfig instanceof PooledKubeConfig && options.headersTimeoutMs === undefined) return kubeConfig;
  const pooled = new PooledKubeConfig(options);
  pooled.loadFromString(kubeConfig.exportConfig());
  return pooled;
}

/** KUBECONFIG (or ~/.kube/config) when present, else the in-cluster service account. */
export function loadKubeConfig(): KubeConfig {
  const kubeConfig = new PooledKubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}

export function kubeConfigFromFile(path: string): KubeConfig {
  const kubeConfig = new PooledKubeConfig();
  kubeConfig.loadFromFile(path);
  return kubeConfig;
}

/**
 * `kubeConfig` as the undici transport (./http.ts) uses it: its server, and the pooled connection
 * and per-request credentials PooledKubeConfig hands client-node's calls.
 */
export function kubeConfigEndpoint(kubeConfig: KubeConfig): KubeEndpoint {
  const pooled = withConnectionReuse(kubeConfig);
  return new KubeEndpoint(pooled.getCurrentCluster()?.server ?? '', async () => {
    const context = new RequestContext(pooled.getCurrentCluster()?.server ?? '', 'GET');
    await pooled.applySecurityAuthentication(context);
    return {
      dispatcher: context.getDispatcher() as UndiciDispatcher | undefined,
      headers: context.getHeaders(),
    };
  });
}
