/**
 * The one metrics registry. Every role registers its instruments here through `metric*`
 * helpers, so `/metrics` of any process shows all of them and tests can read them.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SmkError, SmkErrorKind } from './errors.ts';

export const registry = new Registry();
let defaultsCollected = false;

/** Process metrics (CPU, memory, event loop lag); call once from a long-running role. */
export function collectProcessMetrics(): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  collectDefaultMetrics({ register: registry, prefix: 'smk_' });
}

/**
 * The `outcome` and `reason` labels of a call that may fail with one of our errors. Across all
 * metrics `outcome` is a snake_case word and every failure is `failed`, its `reason` the error's
 * kind (CamelCase, as in Events and status conditions); NotModified is an answer, not a failure.
 */
export function errorLabels(
  error: SmkError | undefined,
): { outcome: 'ok' | 'not_modified' } | { outcome: 'failed'; reason: SmkErrorKind } {
  if (error === undefined) return { outcome: 'ok' };
  if (error.kind === 'NotModified') return { outcome: 'not_modified' };
  return { outcome: 'failed', reason: error.kind };
}

function existing<T>(name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

export function counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
  return existing<Counter<L>>(name) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> {
  return existing<Gauge<L>>(name) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}

export function histogram<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[],
  buckets?: number[],
): Histogram<L> {
  return (
    existing<Histogram<L>>(name) ??
    new Histogram({ name, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) })
  );
}
