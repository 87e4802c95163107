/**
 * Kubernetes Events about the objects smk reconciles (what `kubectl describe` shows). The same
 * event for the same object is sent at most once per `repeatWindowMs`, so a failing object that
 * is retried every few seconds does not flood the API server. Messages must be value-free (they
 * are built from our own error messages, which are).
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import type { KubeConfig } from './client.ts';

export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  /** Records an event; never throws (events are best effort). */
  record(object: InvolvedObject, type: EventType, reason: string, message: string): Promise<void>;
}

export interface EventRecorderOptions {
  /** `source.component` / `reportingComponent`, e.g. `smk-controller`. */
  readonly component: string;
  /** `reportingInstance`, e.g. the pod name. */
  readonly instance?: string;
  readonly repeatWindowMs?: number;
  readonly logger?: Logger;
  readonly now?: () => number;
}

/** The Kubernetes name limit for an event message is 1 KiB; keep ours well inside it. */
const maxMessage = 1000;

export function createEventRecorder(kubeConfig: KubeConfig, options: EventRecorderOptions): EventRecorder {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return createEventRecorderWith(async (namespace, body) => {
    await core.createNamespacedEvent({ namespace, body });
  }, options);
}

type CreateEvent = (
  namespace: string,
  body: Parameters<CoreV1Api['createNamespacedEvent']>[0]['body'],
) => Promise<void>;

export function createEventRecorderWith(create: CreateEvent, options: EventRecorderOptions): EventRecorder {
  const logger = options.logger ?? silentLogger();
  const now = options.now ?? Date.now;
  const windowMs = options.repeatWindowMs ?? 10 * 60 * 1000;
  const lastSent = new Map<string, number>();
  // Sweep expired entries when the map has doubled since the last sweep: amortised O(1) a call.
  let sweepAt = 10_000;

  function prune(at: number): void {
    if (lastSent.size < sweepAt) return;
    for (const [key, sentAt] of lastSent) if (at - sentAt >= windowMs) lastSent.delete(key);
    sweepAt = Math.max(10_000, lastSent.size * 2);
  }

  return {
    async record(object, type, reason, message) {
      const at = now();
      const key = `${object.namespace}/${object.kind}/${object.name}/${object.uid ?? ''}/${type}/${reason}/${message}`;
      const sentAt = lastSent.get(key);
      if (sentAt !== undefined && at - sentAt < windowMs) return;
      prune(at);
      lastSent.set(key, at);
      const time = new Date(at);
      const text = message.length > maxMessage ? `${message.slice(0, maxMessage - 1)}…` : message;
      try {
        await create(object.namespace, {
          metadata: {
            name: `${object.name}.${at.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
            namespace: object.namespace,
          },
          involvedObject: {
            apiVersion: object.apiVersion,
            kind: object.kind,
            name: object.name,
            namespace: object.namespace,
            ...(object.uid ? { uid: object.uid } : {}),
          },
          type,
          reason,
          message: text,
          count: 1,
          firstTimestamp: time,
          lastTimestamp: time,
          source: { component: options.component },
          reportingComponent: options.component,
          reportingInstance: options.instance ?? options.component,
        });
      } catch (error) {
        lastSent.delete(key);
        logger.warn(
          { reason, object: `${object.namespace}/${object.name}`, err: describeError(error) },
          'event not recorded',
        );
      }
    },
  };
}
