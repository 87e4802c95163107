/** The aws layer's instruments, registered once in the core's registry. */
import { counter, gauge, histogram } from '../core/metrics.ts';

export const awsCalls = counter(
  'smk_aws_calls_total',
  'AWS API calls made, by API, outcome and (for failed) reason.',
  ['api', 'outcome', 'reason'] as const,
);

export const awsCallSeconds = histogram(
  'smk_aws_call_duration_seconds',
  'Duration of AWS API calls including SDK retries, by API.',
  ['api'] as const,
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
);

export const cacheHits = counter(
  'smk_aws_cache_hits_total',
  'Secret reads served from the cache without an AWS call.',
  ['object_type'] as const,
);

export const cacheMisses = counter(
  'smk_aws_cache_misses_total',
  'Secret reads that needed an AWS call (absent, stale, or not yet authorised for the identity).',
  ['object_type'] as const,
);

export const cacheBytes = gauge('smk_aws_cache_bytes', 'Bytes of secret values held by the cache.', []);

/**
 * Sets the aws layer's counts back to zero. A role that rehearses reads before it reports ready
 * calls it after: those calls went to a loopback stand-in, not to AWS, and must not be counted.
 */
export function resetAwsCounts(): void {
  for (const metric of [awsCalls, awsCallSeconds, cacheHits, cacheMisses, cacheBytes]) metric.reset();
}
