/**
 * Kubernetes client setup: the one place that decides where the API server is and how we
 * authenticate (KUBECONFIG / ~/.kube/config, else in-cluster service account).
 */
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import {
  AccessDeniedError,
  InvalidInputError,
  NotFoundError,
  type SmkError,
  TransientError,
} from '../core/errors.ts';

export { KubeConfig };

/** KUBECONFIG (or ~/.kube/config) when present, else the in-cluster service account. */
export function loadKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}

export function kubeConfigFromFile(path: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(path);
  return kubeConfig;
}

/** The HTTP status of a failed API call, if it was one. */
export function apiStatus(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  return undefined;
}

/**
 * Maps a failed API call to our sentinel errors with a message that names the object; the
 * server's body is never copied (it may echo request content).
 */
export function kubeError(error: unknown, what: string): SmkError {
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
