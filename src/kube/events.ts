/**
 * Kubernetes Events about the objects smk reconciles (what `kubectl describe` shows). The same
 * event for the same object is sent at most once per `repeatWindowMs`, so a failing object that
 * is retried every few seconds does not flood the API server. Messages must be value-free (they
 * are built from our own error messages, which are).
 *
 * Events are written in the background by one writer (`maxInFlight`) from a bounded queue, as
 * client-go's recorder does: a burst (10,000 SecretSyncs created at a cold start) must not put
 * 10,000 event POSTs beside the Secret and status writes that make objects Ready. One writer paces
 * itself by the API server's latency; Warnings go first; Normal events also wait while the owner
 * says it is busy (`yieldWhile`, at most `maxYieldMs`), so at a cold start they follow the writes
 * that matter instead of competing with them. When the queue is full the newest event is dropped
 * and counted (smk_events_dropped_total), never blocking.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import type { KubeConfig } from './client.ts';
import { createKubeHttp, resourcePath } from './http.ts';

export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  /**
   * Records an event; never throws (events are best effort). Resolves once it was written,
   * dropped or failed; callers need not wait.
   */
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
  /** Events written at once; default 1. */
  readonly maxInFlight?: number;
  /** Events waiting beyond those in flight; default 10,000 (then the newest are dropped). */
  readonly maxQueued?: number;
  /**
   * While true, Normal events wait (Warnings do not), each for at most `maxYieldMs` (default 60 s):
   * the sync controller passes "my work queue has a backlog", so at a cold start the API server
   * spends itself on the writes that make objects Ready and the Created events follow.
   */
  readonly yieldWhile?: () => boolean;
  readonly maxYieldMs?: number;
  /** How often a yielding writer looks again; default 250 ms. */
  readonly yieldPollMs?: number;
}

interface Waiting {
  readonly recordedAt: number;
  readonly grant: () => void;
}

const droppedEvents = counter(
  'smk_events_dropped_total',
  'Kubernetes Events not written because the event queue was full',
  ['component'],
);

/** The Kubernetes name limit for an event message is 1 KiB; keep ours well inside it. */
const maxMessage = 1000;

export function createEventRecorder(kubeConfig: KubeConfig, options: EventRecorderOptions): EventRecorder {
  const http = createKubeHttp(kubeConfig);
  return createEventRecorderWith(async (namespace, body) => {
    await http.send({
      method: 'POST',
      path: resourcePath('v1', 'events', namespace),
      body,
      discardAnswer: true,
    });
  }, options);
}

type CreateEvent = (namespace: string, body: CoreV1Event) => Promise<void>;

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

  const maxInFlight = Math.max(1, options.maxInFlight ?? 1);
  const maxQueued = Math.max(0, options.maxQueued ?? 10_000);
  const yieldWhile = options.yieldWhile ?? (() => false);
  const maxYieldMs = options.maxYieldMs ?? 60_000;
  const yieldPollMs = options.yieldPollMs ?? 250;
  // Warnings are written first; a Normal event waits while the owner is busy, for at most maxYieldMs.
  const warnings: Waiting[] = [];
  const normals: Waiting[] = [];
  let inFlight = 0;
  let recheck: ReturnType<typeof setTimeout> | undefined;
  let droppedSinceLog = 0;

  function next(): Waiting | undefined {
    if (warnings.length > 0) return warnings.shift();
    const oldest = normals[0];
    if (oldest && (now() - oldest.recordedAt >= maxYieldMs || !yieldWhile())) return normals.shift();
    return undefined;
  }

  /** Hands free writer slots to waiting events; one timer looks again while Normal events yield. */
  function pump(): void {
    while (inFlight < maxInFlight) {
      const granted = next();
      if (!granted) break;
      inFlight += 1;
      granted.grant();
    }
    if (normals.length > 0 && inFlight < maxInFlight && !recheck) {
      recheck = setTimeout(() => {
        recheck = undefined;
        pump();
      }, yieldPollMs);
      recheck.unref();
    }
  }

  /** Resolves when a writer slot is granted, or false when the queue is full (the event is dropped). */
  function slot(type: EventType, recordedAt: number): Promise<boolean> {
    return new Promise((resolve) => {
      const list = type === 'Warning' ? warnings : normals;
      let granted = false;
      list.push({
        recordedAt,
        grant: () => {
          granted = true;
          resolve(true);
        },
      });
      pump();
      if (!granted && warnings.length + normals.length > maxQueued) {
        list.pop();
        resolve(false);
      }
    });
  }

  function release(): void {
    inFlight -= 1;
    pump();
  }

  function drop(key: string, reason: string): void {
    lastSent.delete(key);
    droppedEvents.inc({ component: options.component });
    droppedSinceLog += 1;
    // One line per 1,000 drops: a flood of drops must not become a flood of log lines.
    if (droppedSinceLog === 1 || droppedSinceLog % 1000 === 0) {
      logger.warn({ reason, dropped: droppedSinceLog }, 'event queue full: events dropped');
    }
  }

  return {
    async record(object, type, reason, message) {
      const at = now();
      const key = `${object.namespace}/${object.kind}/${object.name}/${object.uid ?? ''}/${type}/${reason}/${message}`;
      const sentAt = lastSent.get(key);
      if (sentAt !== undefined && at - sentAt < windowMs) return;
      prune(at);
      lastSent.set(key, at);
      if (!(await slot(type, at))) {
        drop(key, reason);
        return;
      }
      const time = new Date(at);
      const text = message.length > maxMessage ? `${message.slice(0, maxMessage - 1)}…` : message;
      try {
        await create(object.namespace, {
          apiVersion: 'v1',
          kind: 'Event',
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
      } finally {
        release();
      }
    },
  };
}
