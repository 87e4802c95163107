import { parseArn } from '../../core/arn.ts';

/** The region a Secrets Manager ARN id names, else the default. */
export function regionOf(id: string, defaultRegion: string | undefined): string | undefined {
  const arn = parseArn(id);
  return arn?.service === 'secretsmanager' && arn.region !== '' ? arn.region : defaultRegion;
}
