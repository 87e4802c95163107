/** Secrets Manager staging labels rotation cares about. */

/** A region in an ARN id, else the default. */
export function regionOf(id: string, defaultRegion: string | undefined): string | undefined {
  const match = /^arn:[^:]+:secretsmanager:([^:]+):/.exec(id);
  return match?.[1] ?? defaultRegion;
}
