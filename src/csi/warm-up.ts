/**
 * What the provider does once before its socket listens, so the first real Mount after a start
 * costs what later ones cost. Measured on a cold process (CPU profile of the first mount), the
 * one-time work was: loading the STS SDK and building its first clients; protobufjs generating
 * the Mount message coders; zod compiling the attribute schemas, the YAML parser, JMESPath; and
 * the first TLS connection to the API server with the client's first ServiceAccount decode.
 * A rehearsal of one mount (in memory: no AWS call, no pod's identity, nothing cached) and one
 * ServiceAccount read move all of it to start, before readiness.
 */
import type { AwsClients } from '../aws/clients.ts';
import { describeError, isSmkError } from '../core/errors.ts';
import { type Logger, silentLogger } from '../core/log.ts';
import type { ReadResult, SecretReader, SecretRequest } from '../core/source.ts';
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
  readonly clients: AwsClients;
  readonly serviceAccounts: ServiceAccounts;
  readonly logger: Logger;
  /** How long the API server read may take before start goes on without it (default 3 s). */
  readonly kubeTimeoutMs?: number;
}

const rehearsalRegion = 'us-east-1';
const rehearsalValue = new TextEncoder().encode(
  JSON.stringify({ username: 'rehearsal', password: 'rehearsal' }),
);

/** Answers every read with the same made-up value: the rehearsal must not reach AWS. */
const rehearsalReader: SecretReader = {
  read: (requests: readonly SecretRequest[]): Promise<ReadResult[]> =>
    Promise.resolve(
      requests.map((request) => ({
        ok: true as const,
        value: {
          request,
          arn: `arn:aws:secretsmanager:${request.region}:000000000000:secret:${request.id}-AbCdEf`,
          name: request.id,
          versionId: '00000000-0000-4000-8000-000000000000',
          bytes: rehearsalValue,
          binary: false,
        },
      })),
    ),
  describe: () => Promise.reject(new Error('the rehearsal passes no versions back')),
};

/** A mount request shaped like a real one: Secrets Manager objects with jmesPath and aliases, an SSM parameter. */
function rehearsalRequest(): MountRequest {
  const objects = [
    '- {objectName: "rehearsal/one", objectType: secretsmanager, jmesPath: [{path: username, objectAlias: user}, {path: password, objectAlias: pass}]}',
    '- {objectName: "rehearsal/two", objectType: secretsmanager, objectAlias: two}',
    '- {objectName: "/rehearsal/three", objectType: ssmparameter}',
  ].join('\n');
  return {
    attributes: JSON.stringify({
      objects,
      region: rehearsalRegion,
      [secretProviderClassKey]: 'rehearsal',
      [podNameKey]: 'rehearsal',
      [podNamespaceKey]: 'rehearsal',
      [serviceAccountNameKey]: 'rehearsal',
      [serviceAccountTokensKey]: JSON.stringify({ [irsaAudience]: { token: 'rehearsal' } }),
    }),
    secrets: '{}',
    target_path: '/rehearsal',
    permission: '420',
    current_object_version: [],
  };
}

/** One mount through the real handler and the real gRPC coders, against the in-memory reader. */
async function rehearseMount(): Promise<void> {
  const mount = createMountHandler({
    readerFor: () => rehearsalReader,
    identities: { roleArn: () => Promise.resolve('arn:aws:iam::000000000000:role/rehearsal') },
    logger: silentLogger(),
  });
  const method = providerServiceDefinition().Mount;
  if (method === undefined) throw new Error('the provider service has no Mount method');
  const request = method.requestDeserialize(method.requestSerialize(rehearsalRequest())) as MountRequest;
  const response = await mount(request);
  method.responseDeserialize(method.responseSerialize(response));
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
  await Promise.all([options.clients.preload(rehearsalRegion), rehearseMount()]);
  const kube = await openApiServerConnection(options.serviceAccounts, options.kubeTimeoutMs ?? 3_000).then(
    () => 'ready',
    // Not fatal: a forbidden or slow read here only means the first mount opens the connection.
    (error: unknown) => (isSmkError(error) ? error.kind : describeError(error)),
  );
  options.logger.info(
    { ms: Math.round(performance.now() - started), apiServer: kube },
    'warmed up: SDKs loaded, one mount rehearsed, API server connection opened',
  );
}
