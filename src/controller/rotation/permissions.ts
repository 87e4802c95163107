/**
 * Whether a namespace may know about a secret: rotation watches secrets with the controller's own
 * role, but shows what it saw (ARN, versions, when it changed) in a namespace's objects — mapping
 * status, workload records and events, a source's force-sync stamp, a rollout's very timing —
 * only where an identity of that namespace can `DescribeSecret` it. The identity is a
 * ServiceAccount of the namespace, resolved as the sync controller resolves it (identity.ts), and
 * the answer is that identity's own DescribeSecret call. Answers are kept for a while (revoking a
 * grant takes effect within `ttlMs`) in a bounded map; a failure that may pass (throttling, an
 * outage) is never remembered as a refusal, and is asked again by itself, sooner at first (1 s,
 * doubling up to `retryMs`): nothing else may look again for a long while (a mapping's status is
 * planned on events), so a passing fault at the first check must not leave a namespace unshown.
 */
import { describeError, isSmkError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { IdentityResolver } from '../identity.ts';

/** One question: may `namespace/serviceAccountName` describe secret `id` in `region`? */
export interface PermissionSubject {
  readonly namespace: string;
  readonly serviceAccountName: string;
  readonly region: string;
  readonly id: string;
}

export interface Permissions {
  /** The last answer; undefined when there is none yet (a check is started). Stale answers start a re-check. */
  known(subject: PermissionSubject): boolean | undefined;
  /** The answer, asking AWS first when none is known or it is older than the TTL. */
  check(subject: PermissionSubject): Promise<boolean>;
  /** Cancels the scheduled re-asks (a later look schedules them again). */
  stop(): void;
}

export interface PermissionsOptions {
  readonly identities: IdentityResolver;
  readonly logger: Logger;
  /** Called when an answer is new or differs from the last one: what depends on it is planned again. */
  readonly onChange?: (subject: PermissionSubject, allowed: boolean) => void;
  /** How long an answer is trusted (default 5 minutes). */
  readonly ttlMs?: number;
  /** After a check that failed for a passing reason, ask again no sooner than this (default 30 s). */
  readonly retryMs?: number;
  /** The first re-ask after a passing failure (default 1 s); each further failure doubles it, up to retryMs. */
  readonly firstRetryMs?: number;
  /** Answers kept at most (default 10,000; the least recently asked go first). */
  readonly maxEntries?: number;
  readonly now?: () => number;
  /** Schedules a re-ask (tests pass their own clock's). */
  readonly setTimer?: (run: () => void, ms: number) => { clear(): void };
}

interface Answer {
  readonly allowed: boolean;
  readonly at: number;
}

const realTimer = (run: () => void, ms: number): { clear(): void } => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return { clear: () => clearTimeout(timer) };
};

const keyOf = (subject: PermissionSubject): string =>
  [subject.namespace, subject.serviceAccountName, subject.region, subject.id].join('\0');

export function createPermissions(options: PermissionsOptions): Permissions {
  const now = options.now ?? Date.now;
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const retryMs = Math.min(options.retryMs ?? 30_000, ttlMs);
  const firstRetryMs = Math.min(options.firstRetryMs ?? 1_000, retryMs);
  const maxEntries = options.maxEntries ?? 10_000;
  const setTimer = options.setTimer ?? realTimer;
  const answers = new Map<string, Answer>();
  const inFlight = new Map<string, Promise<boolean>>();
  /** Passing failures in a row, per question (the re-ask delay doubles with each). */
  const failures = new Map<string, number>();
  const retries = new Map<string, { clear(): void }>();

  function remember(key: string, answer: Answer): void {
    answers.delete(key);
    answers.set(key, answer);
    while (answers.size > maxEntries) answers.delete(answers.keys().next().value ?? '');
  }

  /** True when the identity's DescribeSecret succeeds; false when AWS or Kubernetes says no; throws otherwise. */
  async function ask(subject: PermissionSubject): Promise<boolean> {
    try {
      const { reader } = await options.identities.resolve(subject.namespace, subject.serviceAccountName);
      await reader.describe({ objectType: 'secretsmanager', id: subject.id, region: subject.region });
      return true;
    } catch (error) {
      // No such account, no role, refused or no such secret: nothing this namespace may be shown.
      if (isSmkError(error) && !error.transient) return false;
      throw error;
    }
  }

  function refresh(subject: PermissionSubject): Promise<boolean> {
    const key = keyOf(subject);
    const running = inFlight.get(key);
    if (running) return running;
    const previous = answers.get(key);
    const asked = ask(subject)
      .then((allowed) => {
        failures.delete(key);
        remember(key, { allowed, at: now() });
        if (previous?.allowed !== allowed) options.onChange?.(subject, allowed);
        return allowed;
      })
      .catch((error: unknown) => {
        options.logger.warn(
          {
            serviceAccount: `${subject.namespace}/${subject.serviceAccountName}`,
            secret: subject.id,
            err: describeError(error),
          },
          'could not check whether the namespace may describe the secret; asking again later',
        );
        // Keep what was known (with nothing known: no); ask again after the delay, not at every look.
        const failed = (failures.get(key) ?? 0) + 1;
        failures.set(key, failed);
        if (failures.size > maxEntries) failures.delete(failures.keys().next().value ?? '');
        const delay = Math.min(retryMs, firstRetryMs * 2 ** (failed - 1));
        const allowed = previous?.allowed ?? false;
        remember(key, { allowed, at: now() - ttlMs + delay });
        // Unasked for, no look may come before a relist: ask again by ourselves.
        retries.get(key)?.clear();
        retries.set(
          key,
          setTimer(() => {
            retries.delete(key);
            void refresh(subject);
          }, delay),
        );
        return allowed;
      })
      .finally(() => inFlight.delete(key));
    inFlight.set(key, asked);
    return asked;
  }

  return {
    known(subject) {
      const answer = answers.get(keyOf(subject));
      if (!answer || now() - answer.at >= ttlMs) void refresh(subject);
      return answer?.allowed;
    },
    async check(subject) {
      const answer = answers.get(keyOf(subject));
      if (answer && now() - answer.at < ttlMs) return answer.allowed;
      return refresh(subject);
    },
    stop() {
      for (const retry of retries.values()) retry.clear();
      retries.clear();
    },
  };
}
