/**
 * Whether the API server serves a custom resource (its CRD is installed), for roles that use one
 * only when it is there (`auto`). Asked as an informer would list it (limit 1): 404 means not
 * served. Anything else — a refusal (RBAC), a failure — is supervised like an informer's list:
 * logged (a refusal names the verb and the resource), retried with backoff until it answers or
 * the role stops. It never throws, so a role keeps running, unready, until it can tell.
 */
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { apiStatus, type KubeConfig, retryAfterMsOf } from './client.ts';
import { failureText } from './gate.ts';
import { createKubeHttp, resourcePath } from './http.ts';
import { describeResource, refusalMessage } from './informer.ts';
import { type BackoffOptions, backoffDelay, type Clock, systemClock } from './queue.ts';

export interface CustomResource {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  /** Ask in this namespace (a role limited to namespaces may list only there); default all. */
  readonly namespace?: string | undefined;
}

export interface ServedOptions {
  readonly logger: Logger;
  /** Aborted when the role stops: the answer is then undefined. */
  readonly signal?: AbortSignal;
  readonly backoff?: BackoffOptions;
  readonly clock?: Clock;
  /** Told each failure as a person reads it (a refusal names the verb and the resource), for /readyz. */
  readonly onProblem?: (problem: string) => void;
  /** The one-item list that answers (default: the API server through kubeConfig). */
  readonly list?: () => Promise<unknown>;
}

export async function customResourceServed(
  kubeConfig: KubeConfig,
  resource: CustomResource,
  options: ServedOptions,
): Promise<boolean | undefined> {
  const { group, version, plural, namespace } = resource;
  const { logger, signal } = options;
  const clock = options.clock ?? systemClock;
  const backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000, jitter: 0.3 };
  const path = resourcePath(`${group}/${version}`, plural, namespace);
  const list =
    options.list ?? (() => createKubeHttp(kubeConfig).send({ method: 'GET', path, query: { limit: '1' } }));
  const what = describeResource(path);
  for (let failures = 1; ; failures += 1) {
    if (signal?.aborted) return undefined;
    try {
      await list();
      return true;
    } catch (error) {
      const status = apiStatus(error);
      if (status === 404) return false;
      // A throttled or overloaded server's Retry-After is a floor under the backoff.
      const retryInMs = Math.max(backoffDelay(failures, backoff, Math.random), retryAfterMsOf(error) ?? 0);
      options.onProblem?.(failureText('list', what, error));
      if (status === 401 || status === 403) {
        logger.error({ resource: what, retryInMs }, refusalMessage(status, 'list', what));
      } else {
        logger.warn(
          { resource: what, status, err: describeError(error), retryInMs },
          'could not tell whether the resource is served; retrying',
        );
      }
      await new Promise<void>((resolve) => {
        const cancel = clock.schedule(resolve, retryInMs);
        signal?.addEventListener(
          'abort',
          () => {
            cancel();
            resolve();
          },
          { once: true },
        );
      });
    }
  }
}
