/**
 * Loading the AWS SDK's client packages. Secrets Manager is imported statically (every role reads
 * it); the others load on first use.
 */

/**
 * The exports of a dynamically imported CommonJS package. Node finds a CommonJS module's named
 * exports itself, but in the esbuild bundle (what the image ships) the namespace holds only
 * `default`: without this, every lazily loaded SDK class was undefined in dist/smk.mjs alone.
 */
export function commonJsExports<T extends object>(namespace: T): T {
  const inner = (namespace as { default?: unknown }).default;
  const onlyDefault = Object.keys(namespace).every((key) => key === 'default' || key === '__esModule');
  return onlyDefault && typeof inner === 'object' && inner !== null ? (inner as T) : namespace;
}

// SDK packages other than Secrets Manager load on first use, so a one-shot `smk fetch` of
// secrets does not pay for SSM, SQS and STS at start (each adds tens of ms to a cold start).
export const ssmSdk = async (): Promise<typeof import('@aws-sdk/client-ssm')> =>
  commonJsExports(await import('@aws-sdk/client-ssm'));
export const sqsSdk = async (): Promise<typeof import('@aws-sdk/client-sqs')> =>
  commonJsExports(await import('@aws-sdk/client-sqs'));
export const stsSdk = async (): Promise<typeof import('@aws-sdk/client-sts')> =>
  commonJsExports(await import('@aws-sdk/client-sts'));
