/** Secrets Manager staging labels rotation cares about. */

/** The stage readers get when they name none. */
export const currentStageName = 'AWSCURRENT';

/** A region in an ARN id, else the default. */
export function regionOf(id: string, defaultRegion: string | undefined): string | undefined {
  const match = /^arn:[^:]+:secretsmanager:([^:]+):/.exec(id);
  return match?.[1] ?? defaultRegion;
}
