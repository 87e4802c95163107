/**
 * What the rotation tests share: CRDs on the bed, a "stack" in this process (sync controller +
 * rotation controller sharing one AWS cache, as `smk controller` runs them) scoped to the test's
 * namespaces, an SQS queue in moto, CloudTrail-shaped events, labelled Deployments that read the
 * synced Secret, and counting ReplicaSets (a rollout shows as a new one).
 */
import { readFile } from 'node:fs/promises';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Deployment,
} from '@kubernetes/client-node';
import {
  AwsClients,
  createQueueReader,
  createSecretReader,
  type Identity,
  SecretCache,
} from '../../src/aws/index.ts';
import { coalescingReader } from '../../src/controller/coalesce.ts';
import { createIdentityResolver } from '../../src/controller/identity.ts';
import { addRotationController, type RotationParts } from '../../src/controller/rotation/controller.ts';
import type { RotationSettings } from '../../src/controller/rotation/options.ts';
import { addSyncController } from '../../src/controller/sync/controller.ts';
import { createWorkerPool } from '../../src/core/expressions.ts';
import { silentLogger } from '../../src/core/log.ts';
import { createManager, type LeaderElectionSettings } from '../../src/kube/manager.ts';
import { createServiceAccounts } from '../../src/kube/service-accounts.ts';
import { installCrds as installSharedCrds } from '../harness/crds.ts';
import { waitFor } from '../harness/wait.ts';

export { waitFor };

const root = new URL('../../', import.meta.url);
const eventTemplate = new URL('test/rotation/fixtures/cloudtrail-event.json', root);

export const staticIdentity: Identity = {
  kind: 'static',
  accessKeyId: 'testing',
  secretAccessKey: 'testing',
};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every CRD the rotation suites use, served. */
export function installCrds(kubeConfig: KubeConfig): Promise<void> {
  return installSharedCrds(kubeConfig);
}

export function awsClients(endpoint: string) {
  const common = {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  return { secrets: new SecretsManagerClient(common), sqs: new SQSClient(common) };
}

export async function createSecret(
  client: SecretsManagerClient,
  name: string,
  value: string,
): Promise<string> {
  const created = await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
  return created.ARN ?? '';
}

/** A new AWSCURRENT version (or only AWSPENDING); returns the version id. */
export async function putSecret(
  client: SecretsManagerClient,
  name: string,
  value: string,
  stages?: string[],
): Promise<string> {
  const put = await client.send(
    new PutSecretValueCommand({
      SecretId: name,
      SecretString: value,
      ...(stages ? { VersionStages: stages } : {}),
    }),
  );
  return put.VersionId ?? '';
}

/** Moves AWSCURRENT to `versionId` (the end of a Lambda rotation). */
export async function promote(
  client: SecretsManagerClient,
  name: string,
  versionId: string,
  from: string,
): Promise<void> {
  await client.send(
    new UpdateSecretVersionStageCommand({
      SecretId: name,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: versionId,
      RemoveFromVersionId: from,
    }),
  );
}

export async function createQueue(client: SQSClient, name: string): Promise<string> {
  const created = await client.send(new CreateQueueCommand({ QueueName: name }));
  if (!created.QueueUrl) throw new Error('CreateQueue answered no URL');
  return created.QueueUrl;
}

/** Messages in the queue, visible or in flight. */
export async function queueDepth(client: SQSClient, queueUrl: string): Promise<number> {
  const answer = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const attributes = answer.Attributes ?? {};
  return (
    Number(attributes.ApproximateNumberOfMessages ?? 0) +
    Number(attributes.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

/** The event EventBridge would put in the queue for a Secrets Manager write (CloudTrail, via a rule). */
export async function cloudTrailEvent(
  eventName: string,
  secretId: string,
  arn: string,
  time = new Date(),
): Promise<string> {
  const event = JSON.parse(await readFile(eventTemplate, 'utf8')) as {
    time: string;
    detail: {
      eventName: string;
      eventTime: string;
      requestParameters: { secretId: string };
      responseElements: { arn: string };
    };
  };
  event.time = time.toISOString();
  event.detail.eventName = eventName;
  event.detail.eventTime = time.toISOString();
  event.detail.requestParameters.secretId = secretId;
  event.detail.responseElements.arn = arn;
  return JSON.stringify(event);
}

export async function send(client: SQSClient, queueUrl: string, body: string): Promise<void> {
  await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
}

export const roleArn = (name: string): string => `arn:aws:iam::123456789012:role/${name}`;

export async function createServiceAccount(
  kubeConfig: KubeConfig,
  namespace: string,
  role: string,
): Promise<void> {
  await kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
    namespace,
    body: { metadata: { name: 'app', annotations: { 'eks.amazonaws.com/role-arn': roleArn(role) } } },
  });
}

/** A SecretSync of one AWS secret to Secret `secretName` with key VALUE (as the seed app reads it). */
export async function createSecretSync(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  secretId: string,
  secretName: string,
): Promise<void> {
  await kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'smk.dev',
    version: 'v1alpha1',
    plural: 'secretsyncs',
    namespace,
    body: {
      apiVersion: 'smk.dev/v1alpha1',
      kind: 'SecretSync',
      metadata: { name, namespace },
      spec: {
        serviceAccountName: 'app',
        objects: [{ objectName: secretId, objectType: 'secretsmanager', objectAlias: 'VALUE' }],
        target: { name: secretName },
      },
    },
  });
}

/** A SecretProviderClass opted in to smk's sync (seed 004's shape): one secret → Secret key VALUE. */
export async function createSyncedSpc(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  secretId: string,
  secretName: string,
): Promise<void> {
  await kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    plural: 'secretproviderclasses',
    namespace,
    body: {
      apiVersion: 'secrets-store.csi.x-k8s.io/v1',
      kind: 'SecretProviderClass',
      metadata: {
        name,
        namespace,
        annotations: { 'smk.dev/sync': 'true', 'smk.dev/service-account': 'app' },
      },
      spec: {
        provider: 'aws',
        secretObjects: [{ secretName, type: 'Opaque', data: [{ objectName: 'VALUE', key: 'VALUE' }] }],
        parameters: {
          objects: `- objectName: "${secretId}"\n  objectType: "secretsmanager"\n  objectAlias: "VALUE"\n`,
        },
      },
    },
  });
}

/** Seed 003's mapping, exactly as its sample writes it. */
export async function createMapping(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  secretId: string,
  labels: Record<string, string>,
): Promise<void> {
  await kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'awssecretsoperator.secretoperator',
    version: 'v1',
    plural: 'secretsrotationmappings',
    namespace,
    body: {
      apiVersion: 'awssecretsoperator.secretoperator/v1',
      kind: 'SecretsRotationMapping',
      metadata: { name, namespace },
      spec: { SecretID: secretId, Labels: labels },
    },
  });
}

export interface MappingResource {
  status?: {
    secretArn?: string;
    currentVersion?: string;
    lastChange?: { versionId?: string; previousVersionId?: string; source?: string; reason?: string };
    workloadsRolled?: { kind: string; name: string; versionId: string }[];
    conditions?: { type: string; status: string; reason: string }[];
  };
}

export async function readMapping(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<MappingResource> {
  return (await kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: 'awssecretsoperator.secretoperator',
    version: 'v1',
    plural: 'secretsrotationmappings',
    namespace,
    name,
  })) as MappingResource;
}

/**
 * A Deployment like seed 003's nginx sample: labels, one replica, the synced Secret in its env,
 * running as ServiceAccount `app` (createServiceAccount's, whose role may describe the secret)
 * unless told otherwise: a workload rolls only for secrets its own account may describe.
 */
export async function createDeployment(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  options: {
    labels: Record<string, string>;
    secretName?: string;
    annotations?: Record<string, string>;
    serviceAccountName?: string;
  },
): Promise<V1Deployment> {
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  return apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: {
        name,
        labels: options.labels,
        ...(options.annotations ? { annotations: options.annotations } : {}),
      },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { ...options.labels, app: name } },
          spec: {
            serviceAccountName: options.serviceAccountName ?? 'app',
            containers: [
              {
                name: 'app',
                image: 'registry.invalid/nginx:1',
                ...(options.secretName ? { envFrom: [{ secretRef: { name: options.secretName } }] } : {}),
              },
            ],
          },
        },
      },
    },
  });
}

export async function readDeployment(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<V1Deployment> {
  return kubeConfig.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name });
}

/** ReplicaSets the Deployment owns: one per pod template it has run. */
export async function replicaSets(kubeConfig: KubeConfig, namespace: string, name: string): Promise<number> {
  const deployment = await readDeployment(kubeConfig, namespace, name);
  const list = await kubeConfig.makeApiClient(AppsV1Api).listNamespacedReplicaSet({ namespace });
  return list.items.filter((rs) =>
    rs.metadata?.ownerReferences?.some((ref) => ref.uid === deployment.metadata?.uid),
  ).length;
}

export async function secretValue(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  const secret = await kubeConfig
    .makeApiClient(CoreV1Api)
    .readNamespacedSecret({ namespace, name })
    .catch(() => undefined);
  const data = secret?.data?.VALUE;
  return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
}

export async function eventReasons(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<string[]> {
  const list = await kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((event) => `${event.type}/${event.reason}`);
}

/** True once the rotation controller has recorded the versions the Deployment runs with. */
export async function adopted(kubeConfig: KubeConfig, namespace: string, name: string): Promise<boolean> {
  const deployment = await readDeployment(kubeConfig, namespace, name);
  return deployment.metadata?.annotations?.['smk.dev/rolled-versions'] !== undefined;
}

export interface Stack {
  /** The process's controllers: `leading` is the one Lease both act under, as in `smk controller`. */
  readonly rotation: RotationParts & { readonly leading: boolean };
  readonly clients: AwsClients;
  stop(): Promise<void>;
}

export interface StackOptions extends Partial<RotationSettings> {
  readonly namespaces: readonly string[];
  readonly queueUrl?: string;
  /** One Lease for sync and rotation together, as `smk controller` campaigns (default: none, act at once). */
  readonly leaderElection?: LeaderElectionSettings;
  /** Start the sync controller too (default true; a second replica in a leader test may skip it). */
  readonly withSync?: boolean;
  /** Sync and follow opted-in SecretProviderClasses (default false). */
  readonly spc?: boolean;
  /**
   * The sync controller gets an AWS cache of its own, as when its leader is another replica than
   * the rotation leader: the rotation's change does not invalidate what the sync has cached.
   */
  readonly separateSyncCache?: boolean;
}

/**
 * Sync controller + rotation controller in one manager, as `smk controller` runs them: one Lease
 * (so two stacks in a leader test never sync at once), one AWS cache, AWS through `endpoint`.
 */
export async function startStack(
  kubeConfig: KubeConfig,
  endpoint: string,
  options: StackOptions,
): Promise<Stack> {
  const cache = new SecretCache();
  const clients = new AwsClients({ endpoint, maxAttempts: 1, callTimeoutMs: 5_000 });
  const identities = createIdentityResolver({
    serviceAccounts: createServiceAccounts(kubeConfig),
    makeReader: (identity) => coalescingReader(createSecretReader(identity, { cache, clients })),
    roleTtlMs: 500,
  });
  const syncCache = options.separateSyncCache ? new SecretCache() : cache;
  const syncIdentities = options.separateSyncCache
    ? createIdentityResolver({
        serviceAccounts: createServiceAccounts(kubeConfig),
        makeReader: (identity) =>
          coalescingReader(createSecretReader(identity, { cache: syncCache, clients })),
        roleTtlMs: 500,
      })
    : identities;
  const {
    namespaces,
    leaderElection,
    queueUrl,
    withSync = true,
    spc = false,
    separateSyncCache: _separate,
    ...rest
  } = options;
  const logger = silentLogger();
  const manager = createManager({ kubeConfig, logger, namespaces, leaderElection });
  const templates = createWorkerPool();
  if (withSync) {
    addSyncController(manager, {
      identities: syncIdentities,
      defaultRegion: 'us-east-1',
      concurrency: 4,
      templateRenderer: templates,
      secretProviderClasses: spc,
    });
  }
  const parts = addRotationController(manager, {
    reader: createSecretReader(staticIdentity, { cache, clients }),
    identities,
    ...(queueUrl ? { queue: createQueueReader(staticIdentity, { clients }, queueUrl, 'us-east-1') } : {}),
    defaultRegion: 'us-east-1',
    sinks: [{ secretChanged: (change) => cache.stagesMoved(change.secret.region, change.secret.arn) }],
    secretProviderClasses: spc,
    pollIntervalMs: 3_600_000,
    debounceMs: 300,
    queueWaitSeconds: 1,
    ...rest,
  });
  await manager.start();
  let stopped: Promise<void> | undefined;
  return {
    rotation: {
      ...parts,
      get leading() {
        return manager.leading;
      },
    },
    clients,
    stop() {
      stopped ??= (async () => {
        await manager.stop(5_000);
        await templates.close();
        clients.destroy();
      })();
      return stopped;
    },
  };
}
