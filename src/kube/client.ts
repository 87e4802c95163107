/**
 * Kubernetes client setup: the one place that decides where the API server is and how we
 * authenticate (KUBECONFIG / ~/.kube/config, else in-cluster service account).
 */
import { createHash } from 'node:crypto';
import type { RequestOptions } from 'node:https';
import { ApiException, KubeConfig, type RequestContext } from '@kubernetes/client-node';
import {
  AccessDeniedError,
  InvalidInputError,
  NotFoundError,
  SmkError,
  TransientError,
} from '../core/errors.ts';

export { KubeConfig };

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

/** A request the API server answered with an error status. Carries no response body (it may echo what we sent). */
export class KubeHttpError extends Error {
  readonly status: number;
  readonly reason: string | undefined;

  constructor(method: string, path: string, status: number, reason: string | undefined) {
    super(`${method} ${path}: HTTP ${status}${reason ? ` (${reason})` : ''}`);
    this.name = 'KubeHttpError';
    this.status = status;
    this.reason = reason;
  }
}

/** The HTTP status of a failed API call (client-node's or ours, src/kube/http.ts), if it was one. */
export function apiStatus(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  if (error instanceof KubeHttpError) return error.status;
  return undefined;
}

/**
 * Maps a failed API call to our sentinel errors with a message that names the object; the
 * server's body is never copied (it may echo request content).
 */
export function kubeError(error: unknown, what: string): SmkError {
  if (error instanceof SmkError) return error;
  const status = apiStatus(error);
  if (status === 404) return new NotFoundError(`${what}: not found`, { subject: what, cause: error });
  if (status === 401 || status === 403)
    return new AccessDeniedError(`${what}: forbidden (HTTP ${status})`, { subject: what, cause: error });
  if (status === 400 || status === 422)
    return new InvalidInputError(`${what}: rejected by the API server (HTTP ${status})`, {
      subject: what,
      cause: error,
    });
  const detail = status === undefined ? 'API server unreachable' : `HTTP ${status}`;
  return new TransientError(`${what}: ${detail}`, { subject: what, cause: error });
}
