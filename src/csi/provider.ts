/**
 * The csi-provider role, wired: one AWS cache and client pool for the node, the Kubernetes reads
 * it needs (ServiceAccount annotation, node label), the Mount handler and the socket server.
 * The CLI parses flags into CsiProviderConfig; tests and the benchmark start the same wiring.
 */
import { join } from 'node:path';
import { SecretCache } from '../aws/cache.ts';
import { AwsClients } from '../aws/clients.ts';
import { createSecretReader } from '../aws/reader.ts';
import { createExpressionEvaluator } from '../core/expressions.ts';
import type { Logger } from '../core/log.ts';
import { smkVersion } from '../core/version.ts';
import type { KubeConfig } from '../kube/client.ts';
import { createNodes } from '../kube/nodes.ts';
import { createServiceAccounts } from '../kube/service-accounts.ts';
import { rememberRoleArns } from './identity.ts';
import { createMountHandler, rememberOnceFound } from './mount.ts';
import { type ProviderServer, startProviderServer } from './server.ts';
import { warmUp } from './warm-up.ts';

export const defaultProviderVolume = '/var/run/secrets-store-csi-providers';
export const defaultProviderName = 'aws';
export const runtimeName = 'smk-csi-provider';

export interface CsiProviderConfig {
  /** Directory shared with the driver (a hostPath in the DaemonSet). */
  readonly providerVolume: string;
  /** Socket file name without `.sock`; `aws` keeps `provider: aws` SecretProviderClasses working. */
  readonly providerName: string;
  readonly kubeConfig: KubeConfig;
  /** This node's name (downward API), for the region label; none: no node fallback. */
  readonly nodeName?: string | undefined;
  /** The provider's AWS_REGION. */
  readonly environmentRegion?: string | undefined;
  /** AWS endpoint override (tests' proxy); default what the SDK reads. */
  readonly awsEndpoint?: string | undefined;
  /** How long an identity's successful read of a secret lets it be served from cache. */
  readonly authorizationWindowMs?: number | undefined;
  /** How long a stage (AWSCURRENT, a label) is trusted to point at the same version. */
  readonly stageTtlMs?: number | undefined;
  readonly cacheMaxBytes?: number | undefined;
  readonly maxReplyBytes?: number | undefined;
  /** How long a ServiceAccount's IRSA role annotation is remembered (default 30 s; 0 reads it every mount). */
  readonly roleCacheTtlMs?: number | undefined;
  /** Pod Identity agent URL; default chosen per mount by preferredAddressType, as ASCP does. */
  readonly podIdentityEndpoint?: string | undefined;
  /**
   * Accept full JMESPath expressions (--allow-jmespath-expressions), run off the event loop
   * within a budget; default plain field paths only.
   */
  readonly allowJmesPathExpressions?: boolean | undefined;
  readonly logger: Logger;
}

export interface CsiProvider {
  readonly socketPath: string;
  readonly server: ProviderServer;
  readonly cache: SecretCache;
  close(graceMs?: number): Promise<void>;
}

export function socketPathFor(providerVolume: string, providerName: string): string {
  return join(providerVolume, `${providerName}.sock`);
}

export async function startCsiProvider(config: CsiProviderConfig): Promise<CsiProvider> {
  const cache = new SecretCache({
    ...(config.authorizationWindowMs === undefined ? {} : { authTtlMs: config.authorizationWindowMs }),
    ...(config.stageTtlMs === undefined ? {} : { stageTtlMs: config.stageTtlMs }),
    ...(config.cacheMaxBytes === undefined ? {} : { maxBytes: config.cacheMaxBytes }),
  });
  const clients = new AwsClients({
    ...(config.awsEndpoint === undefined ? {} : { endpoint: config.awsEndpoint }),
    ...(config.environmentRegion === undefined ? {} : { stsRegion: config.environmentRegion }),
  });
  const serviceAccounts = createServiceAccounts(config.kubeConfig);
  const roleCacheTtlMs = config.roleCacheTtlMs ?? 30_000;
  const { nodeName } = config;
  const nodes = nodeName === undefined ? undefined : createNodes(config.kubeConfig);
  const expressions = config.allowJmesPathExpressions ? createExpressionEvaluator() : undefined;
  const mount = createMountHandler({
    readerFor: (identity) => createSecretReader(identity, { cache, clients }),
    identities: {
      roleArn:
        roleCacheTtlMs > 0
          ? rememberRoleArns((ref) => serviceAccounts.roleArn(ref), roleCacheTtlMs)
          : (ref) => serviceAccounts.roleArn(ref),
      podIdentityEndpoint: config.podIdentityEndpoint,
    },
    environmentRegion: config.environmentRegion,
    nodeRegion: nodes && nodeName ? rememberOnceFound(() => nodes.region(nodeName)) : undefined,
    maxReplyBytes: config.maxReplyBytes,
    expressions,
    logger: config.logger,
  });
  // Before the socket exists, so the driver's first Mount does not pay for one-time work.
  await warmUp({ serviceAccounts, stsRegion: config.environmentRegion, logger: config.logger });
  const socketPath = socketPathFor(config.providerVolume, config.providerName);
  const server = await startProviderServer({
    socketPath,
    mount,
    logger: config.logger,
    runtimeName,
    runtimeVersion: smkVersion,
  });
  return {
    socketPath,
    server,
    cache,
    async close(graceMs) {
      await server.close(graceMs);
      await expressions?.close();
      clients.destroy();
    },
  };
}
