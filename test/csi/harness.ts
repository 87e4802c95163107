/**
 * What the CSI provider tests share: the provider started with its real wiring (socket in a
 * temp dir, AWS through a counting/fault proxy in front of moto, Kubernetes through the test bed
 * as a user with only the provider's RBAC), pods with IRSA ServiceAccounts, and Mount requests
 * built the way the driver builds them (SecretProviderClass parameters + the pod's context).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Logger, silentLogger } from '../../src/core/log.ts';
import { connectProvider, type ProviderClient } from '../../src/csi/client.ts';
import type { MountRequest } from '../../src/csi/protocol.ts';
import { type CsiProvider, type CsiProviderConfig, startCsiProvider } from '../../src/csi/provider.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';

export const providerRbacRules = [
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
];

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export function awsClientConfig(region: string) {
  const { endpoint } = connectMoto();
  return {
    region,
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

/** Creates the secret, or gives an existing one (fixed seed names) this value as AWSCURRENT. */
export async function putSecret(
  region: string,
  name: string,
  value: string | Uint8Array,
): Promise<{ arn: string; versionId: string }> {
  const client = new SecretsManagerClient(awsClientConfig(region));
  const content = typeof value === 'string' ? { SecretString: value } : { SecretBinary: value };
  try {
    const created = await client.send(new CreateSecretCommand({ Name: name, ...content }));
    return { arn: created.ARN ?? '', versionId: created.VersionId ?? '' };
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
    // Other test files may use the same seed name: leave an equal value alone (no new version).
    const current = await client.send(
      new GetSecretValueCommand({ SecretId: name, VersionStage: 'AWSCURRENT' }),
    );
    const same =
      typeof value === 'string'
        ? current.SecretString === value
        : current.SecretBinary !== undefined && Buffer.from(current.SecretBinary).equals(Buffer.from(value));
    if (same) return { arn: current.ARN ?? '', versionId: current.VersionId ?? '' };
    const put = await client.send(new PutSecretValueCommand({ SecretId: name, ...content }));
    return { arn: put.ARN ?? '', versionId: put.VersionId ?? '' };
  } finally {
    client.destroy();
  }
}

/** A new version of an existing secret; `stages` default AWSCURRENT. */
export async function putSecretVersion(
  region: string,
  name: string,
  value: string,
  stages?: string[],
): Promise<string> {
  const client = new SecretsManagerClient(awsClientConfig(region));
  try {
    const put = await client.send(
      new PutSecretValueCommand({
        SecretId: name,
        SecretString: value,
        ...(stages ? { VersionStages: stages } : {}),
      }),
    );
    return put.VersionId ?? '';
  } finally {
    client.destroy();
  }
}

export async function putParameter(
  region: string,
  name: string,
  value: string,
  type: 'String' | 'SecureString' = 'String',
): Promise<number> {
  const client = new SSMClient(awsClientConfig(region));
  try {
    const put = await client.send(
      new PutParameterCommand({ Name: name, Value: value, Type: type, Overwrite: true }),
    );
    return put.Version ?? 0;
  } finally {
    client.destroy();
  }
}

const secretProviderClassSchema = z.object({
  kind: z.literal('SecretProviderClass'),
  metadata: z.object({ name: z.string() }),
  spec: z.object({ provider: z.string(), parameters: z.record(z.string(), z.string()) }),
});

/** A SecretProviderClass manifest from test/csi/fixtures. */
export async function readSecretProviderClass(
  file: string,
): Promise<z.infer<typeof secretProviderClassSchema>> {
  const text = await readFile(new URL(`./fixtures/${file}`, import.meta.url), 'utf8');
  return secretProviderClassSchema.parse(parseYaml(text));
}

export interface TestPod {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  readonly roleArn: string | undefined;
  /** Projected tokens by audience, as the driver passes them (CSIDriver tokenRequests). */
  readonly tokens: Readonly<Record<string, string>>;
}

export interface PodOptions {
  /** IRSA annotation value; `null` for a ServiceAccount without one. */
  readonly roleArn?: string | null;
  readonly audiences?: readonly string[];
  readonly serviceAccount?: string;
}

export interface ProviderWorld {
  readonly bed: TestBed;
  readonly proxy: AwsProxy;
  readonly provider: CsiProvider;
  readonly client: ProviderClient;
  /** A namespace of this test file. */
  readonly namespace: string;
  pod(options?: PodOptions): Promise<TestPod>;
  /** A Mount request as the driver sends it for this pod and these SecretProviderClass parameters. */
  request(
    pod: TestPod,
    parameters: Readonly<Record<string, string>>,
    extra?: { secretProviderClass?: string; permission?: string; omit?: readonly string[] },
  ): Partial<MountRequest>;
  close(): Promise<void>;
}

export type ProviderWorldOptions = Partial<
  Pick<
    CsiProviderConfig,
    | 'authorizationWindowMs'
    | 'stageTtlMs'
    | 'environmentRegion'
    | 'nodeName'
    | 'maxReplyBytes'
    | 'cacheMaxBytes'
    | 'podIdentityEndpoint'
  >
> & {
  /** Something in front of the counting proxy (it gets the proxy's endpoint, returns its own). */
  readonly inFront?: (proxyEndpoint: string) => string;
  /** The provider's logger; default silent. */
  readonly logger?: Logger;
};

export async function startProviderWorld(options: ProviderWorldOptions = {}): Promise<ProviderWorld> {
  const bed = await connectTestBed();
  const proxy = await startAwsProxy();
  const namespace = await bed.newNamespace('csi');
  const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  const rbacName = uniqueName('smk-csi-provider-test');
  await rbac.createClusterRole({ body: { metadata: { name: rbacName }, rules: providerRbacRules } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: rbacName },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: rbacName },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: rbacName }],
    },
  });
  const directory = await mkdtemp(join(tmpdir(), 'smk-csi-'));
  const provider = await startCsiProvider({
    providerVolume: join(directory, 'providers'),
    providerName: 'aws',
    kubeConfig: await bed.kubeConfigFor(rbacName),
    awsEndpoint: options.inFront ? options.inFront(proxy.endpoint) : proxy.endpoint,
    environmentRegion: 'environmentRegion' in options ? options.environmentRegion : 'us-east-1',
    nodeName: options.nodeName,
    authorizationWindowMs: options.authorizationWindowMs,
    stageTtlMs: options.stageTtlMs,
    maxReplyBytes: options.maxReplyBytes,
    cacheMaxBytes: options.cacheMaxBytes,
    podIdentityEndpoint: options.podIdentityEndpoint,
    logger: options.logger ?? silentLogger(),
  });
  const client = connectProvider(provider.socketPath);

  return {
    bed,
    proxy,
    provider,
    client,
    namespace,
    async pod(podOptions = {}) {
      const serviceAccount = podOptions.serviceAccount ?? uniqueName('sa');
      const roleArn =
        podOptions.roleArn === null
          ? undefined
          : (podOptions.roleArn ?? `arn:aws:iam::123456789012:role/${uniqueName('csi-role')}`);
      await core.createNamespacedServiceAccount({
        namespace,
        body: {
          metadata: {
            name: serviceAccount,
            ...(roleArn ? { annotations: { 'eks.amazonaws.com/role-arn': roleArn } } : {}),
          },
        },
      });
      const tokens: Record<string, string> = {};
      for (const audience of podOptions.audiences ?? ['sts.amazonaws.com']) {
        tokens[audience] = await bed.serviceAccountToken(namespace, serviceAccount, audience);
      }
      return { namespace, name: uniqueName('pod'), serviceAccount, roleArn, tokens };
    },
    request(pod, parameters, extra = {}) {
      const expires = new Date(Date.now() + 3600_000).toISOString();
      const tokens = Object.fromEntries(
        Object.entries(pod.tokens).map(([audience, token]) => [
          audience,
          { token, expirationTimestamp: expires },
        ]),
      );
      const attributes: Record<string, string> = {
        ...parameters,
        secretProviderClass: extra.secretProviderClass ?? 'test-class',
        'csi.storage.k8s.io/pod.name': pod.name,
        'csi.storage.k8s.io/pod.namespace': pod.namespace,
        'csi.storage.k8s.io/pod.uid': randomBytes(16).toString('hex'),
        'csi.storage.k8s.io/serviceAccount.name': pod.serviceAccount,
        'csi.storage.k8s.io/ephemeral': 'false',
        'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify(tokens),
      };
      for (const key of extra.omit ?? []) delete attributes[key];
      return {
        attributes: JSON.stringify(attributes),
        secrets: '{}',
        target_path: `/var/lib/kubelet/pods/${pod.name}/volumes/kubernetes.io~csi/secrets/mount`,
        permission: extra.permission ?? '420',
        current_object_version: [],
      };
    },
    async close() {
      client.close();
      await provider.close(2000);
      await proxy.stop();
      await rbac.deleteClusterRoleBinding({ name: rbacName }).catch(() => undefined);
      await rbac.deleteClusterRole({ name: rbacName }).catch(() => undefined);
      await rm(directory, { recursive: true, force: true });
      await bed.stop();
    },
  };
}

/** Files of a reply as {path: text}, for readable assertions. */
export function filesAsText(
  files: readonly { path: string; contents: Uint8Array }[],
): Record<string, string> {
  return Object.fromEntries(files.map((file) => [file.path, Buffer.from(file.contents).toString('utf8')]));
}
