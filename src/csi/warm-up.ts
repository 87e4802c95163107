/**
 * What the provider does once before its socket listens, so the first real Mount after a start
 * costs what later ones cost. Measured on a cold process (CPU profile of the first mount), the
 * one-time work was: loading the STS and SSM SDKs and building their first clients; protobufjs
 * generating the Mount message coders; zod compiling the attribute schemas, the YAML parser,
 * JMESPath; the first TLS connection to the API server with the client's first ServiceAccount
 * decode; the first HTTP request through the SDK's handler, the reader and the cache.
 * So the provider rehearses a whole mount through the real handler, reader, cache, clients, HTTP
 * handler and gRPC coders, against a loopback stand-in for AWS (../aws/rehearsal.ts), with a
 * throwaway cache and clients and a made-up pod: nothing of a tenant is read, held or shared.
 * It reads one ServiceAccount meanwhile, to open the API server connection.
 */
import { SecretCache } from '../aws/cache.ts';
import { AwsClients } from '../aws/clients.ts';
import { resetAwsCounts } from '../aws/metrics.ts';
import { createSecretReader } from '../aws/reader.ts';
import { startRehearsalAws } from '../aws/rehearsal.ts';
import { describeError, isSmkError } from '../core/errors.ts';
import { type Logger, silentLogger } from '../core/log.ts';
import type { ServiceAccounts } from '../kube/service-accounts.ts';
import {
  podNameKey,
  podNamespaceKey,
  secretProviderClassKey,
  serviceAccountNameKey,
  serviceAccountTokensKey,
} from './attributes.ts';
import { irsaAudience } from './identity.ts';
import { createMountHandler } from './mount.ts';
import { type MountRequest, providerServiceDefinition } from './protocol.ts';

export interface WarmUpOptions {
  readonly serviceAccounts: ServiceAccounts;
  /** The provider's STS region, so the rehearsal's STS client is configured as the real one. */
  readonly stsRegion?: string | undefined;
  readonly logger: Logger;
  /** How long the API server read may take before start goes on without it (default 3 s). */
  readonly kubeTimeoutMs?: number;
}

const rehearsalRegion = 'us-east-1';
/**
 * Mounts rehearsed at start. One pays for the loading and first-call work; more (8 measured in
 * bench/csi.ts) did not lower the first real mount's CPU beyond the noise, and each costs ~12 ms
 * of start: what a first mount still costs is the path's steady cost, not compilation.
 */
export const rehearsalRounds = 1;

/**
 * A mount request shaped like a real one: Secrets Manager objects with jmesPath and aliases, an
 * SSM parameter. Each round names other objects and another pod's ServiceAccount, so each reads
 * through (no cache hit) and assumes its role, as a first mount does.
 */
function rehearsalRequest(round: number): MountRequest {
  const objects = [
    `- {objectName: "rehearsal/${round}/one", objectType: secretsmanager, jmesPath: [{path: username, objectAlias: user}, {path: password, objectAlias: pass}]}`,
    `- {objectName: "rehearsal/${round}/two", objectType: secretsmanager, objectAlias: two}`,
    `- {objectName: "/rehearsal/${round}/three", objectType: ssmparameter}`,
  ].join('\n');
  return {
    attributes: JSON.stringify({
      objects,
      region: rehearsalRegion,
      [secretProviderClassKey]: 'rehearsal',
      [podNameKey]: 'rehearsal',
      [podNamespaceKey]: 'rehearsal',
      [serviceAccountNameKey]: `rehearsal-${round}`,
      [serviceAccountTokensKey]: JSON.stringify({ [irsaAudience]: { token: 'rehearsal' } }),
    }),
    secrets: '{}',
    target_path: '/rehearsal',
    permission: '420',
    current_object_version: [],
  };
}

/**
 * `rounds` mounts through the real handler, reader and clients and the real gRPC coders, against
 * the loopback stand-in; then the aws layer's counts are zeroed (none of it reached AWS).
 * Throws when a rehearsed mount fails: the caller logs it and starts anyway.
 */
async function rehearseMounts(rounds: number, stsRegion: string | undefined): Promise<void> {
  const aws = await startRehearsalAws();
  const clients = new AwsClients({
    endpoint: aws.endpoint,
    maxAttempts: 1,
    ...(stsRegion === undefined ? {} : { stsRegion }),
  });
  const cache = new SecretCache();
  const mount = createMountHandler({
    readerFor: (identity) => createSecretReader(identity, { cache, clients }),
    identities: { roleArn: () => Promise.resolve('arn:aws:iam::000000000000:role/rehearsal') },
    logger: silentLogger(),
  });
  const method = providerServiceDefinition().Mount;
  if (method === undefined) throw new Error('the provider service has no Mount method');
  try {
    for (let round = 0; round < rounds; round += 1) {
      const request = method.requestDeserialize(
        method.requestSerialize(rehearsalRequest(round)),
      ) as MountRequest;
      const response = await mount(request);
      method.responseDeserialize(method.responseSerialize(response));
    }
  } finally {
    clients.destroy();
    await aws.close();
    resetAwsCounts();
  }
}

/** Reads one ServiceAccount every cluster has, as each mount reads the pod's; bounded, never fatal. */
async function openApiServerConnection(serviceAccounts: ServiceAccounts, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([
      serviceAccounts.roleArnIfAny({ namespace: 'kube-system', name: 'default' }),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function warmUp(options: WarmUpOptions): Promise<void> {
  const started = performance.now();
  // The API server read waits on the network while the rehearsal keeps the CPU busy.
  const [rehearsal, kube] = await Promise.all([
    rehearseMounts(rehearsalRounds, options.stsRegion).then(
      () => 'ready',
      // Not fatal: the first real mounts then pay for what was not rehearsed.
      (error: unknown) => describeError(error),
    ),
    openApiServerConnection(options.serviceAccounts, options.kubeTimeoutMs ?? 3_000).then(
      () => 'ready',
      // Not fatal: a forbidden or slow read here only means the first mount opens the connection.
      (error: unknown) => (isSmkError(error) ? error.kind : describeError(error)),
    ),
  ]);
  options.logger.info(
    {
      ms: Math.round(performance.now() - started),
      rehearsedMounts: rehearsalRounds,
      rehearsal,
      apiServer: kube,
    },
    'warmed up: mounts rehearsed against a loopback AWS, API server connection opened',
  );
}
