/**
 * What the sync controller's integration tests share: the CRDs installed on the bed, a controller
 * running in this process against the bed and (through the counting proxy) moto, secrets made in
 * moto with the SDK, ServiceAccounts with IRSA annotations, and polling with a deadline.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  type V1Secret,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import { AwsClients, createSecretReader, SecretCache } from '../../src/aws/index.ts';
import { coalescingReader } from '../../src/controller/coalesce.ts';
import { createIdentityResolver } from '../../src/controller/identity.ts';
import {
  createSyncController,
  type SyncController,
  type SyncControllerOptions,
} from '../../src/controller/sync/controller.ts';
import { createLogger, silentLogger } from '../../src/core/log.ts';
import { withConnectionReuse } from '../../src/kube/client.ts';
import { createServiceAccounts } from '../../src/kube/service-accounts.ts';
import { crdFiles, installCrds as installSharedCrds } from '../harness/crds.ts';
import { waitFor } from '../harness/wait.ts';
import type { TestBed } from '../testbed/index.ts';

export { waitFor };

const root = new URL('../../', import.meta.url);
export const secretSyncCrdPath = new URL('deploy/crds/smk.dev_secretsyncs.yaml', root);
export const spcCrdPath = new URL('test/controller/fixtures/secretproviderclass-crd.yaml', root);
export const seedSpcPath = new URL('test/controller/fixtures/seed-004-spc.yaml', root);

export async function readYaml<T>(url: URL): Promise<T> {
  return parse(await readFile(url, 'utf8')) as T;
}

/** The SecretSync CRD and the SecretProviderClass fixture CRD, served. */
export function installCrds(kubeConfig: KubeConfig): Promise<void> {
  return installSharedCrds(kubeConfig, [crdFiles.secretSync, crdFiles.secretProviderClass]);
}

export function secretsManager(endpoint: string): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
}

export async function createAwsSecret(
  client: SecretsManagerClient,
  name: string,
  value: string,
): Promise<string> {
  const created = await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
  return created.ARN ?? '';
}

export async function putAwsSecret(client: SecretsManagerClient, name: string, value: string): Promise<void> {
  await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
}

export const roleArn = (name: string): string => `arn:aws:iam::123456789012:role/${name}`;

export async function createServiceAccount(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  role: string | undefined,
): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({
    namespace,
    body: {
      metadata: { name, ...(role ? { annotations: { 'eks.amazonaws.com/role-arn': roleArn(role) } } : {}) },
    },
  });
}

export interface RunningController {
  readonly controller: SyncController;
  /** The AWS client factory the controller uses (tests read an identity's credentials from it). */
  readonly clients: AwsClients;
  stop(): Promise<void>;
}

/** A controller in this process: AWS through `endpoint` (the counting proxy), fast timings for tests. */
export async function startController(
  kubeConfig: KubeConfig,
  endpoint: string,
  extra: Partial<SyncControllerOptions> = {},
): Promise<RunningController> {
  const cache = new SecretCache();
  const clients = new AwsClients({ endpoint, maxAttempts: 1, callTimeoutMs: 5_000 });
  const identities = createIdentityResolver({
    serviceAccounts: createServiceAccounts(withConnectionReuse(kubeConfig)),
    makeReader: (identity) => coalescingReader(createSecretReader(identity, { cache, clients })),
    roleTtlMs: 500,
  });
  const controller = createSyncController({
    kubeConfig,
    identities,
    defaultRegion: 'us-east-1',
    // SMK_TEST_LOG=debug shows the controller's log lines while a test runs.
    logger: process.env.SMK_TEST_LOG ? createLogger({ level: process.env.SMK_TEST_LOG }) : silentLogger(),
    concurrency: 4,
    ...extra,
  });
  await controller.start();
  return { controller, clients, stop: () => controller.stop(2_000) };
}

export async function readSecret(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<V1Secret | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return core.readNamespacedSecret({ name, namespace }).catch((error: { code?: number }) => {
    if (error.code === 404) return undefined;
    throw error;
  });
}

export const decode = (value: string | undefined): string =>
  Buffer.from(value ?? '', 'base64').toString('utf8');

export interface SecretSyncResource extends KubernetesObject {
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    lastSyncTime?: string;
    secretName?: string;
    syncedVersions?: { objectName: string; versionId: string }[];
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

export function secretSyncApi(kubeConfig: KubeConfig) {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const base = { group: 'smk.dev', version: 'v1alpha1', plural: 'secretsyncs' };
  return {
    create: (namespace: string, name: string, spec: Record<string, unknown>) =>
      custom.createNamespacedCustomObject({
        ...base,
        namespace,
        body: { apiVersion: 'smk.dev/v1alpha1', kind: 'SecretSync', metadata: { name, namespace }, spec },
      }) as Promise<SecretSyncResource>,
    get: (namespace: string, name: string) =>
      custom.getNamespacedCustomObject({ ...base, namespace, name }) as Promise<SecretSyncResource>,
    list: (namespace: string) =>
      custom.listNamespacedCustomObject({ ...base, namespace }) as Promise<{ items: SecretSyncResource[] }>,
    delete: (namespace: string, name: string) =>
      custom.deleteNamespacedCustomObject({ ...base, namespace, name }),
    /** Sets `spec` fields (a JSON merge patch: arrays are replaced whole). */
    patchSpec: (namespace: string, name: string, spec: Record<string, unknown>) =>
      KubernetesObjectApi.makeApiClient(kubeConfig).patch(
        { apiVersion: 'smk.dev/v1alpha1', kind: 'SecretSync', metadata: { name, namespace }, spec },
        undefined,
        undefined,
        'smk-tests',
        undefined,
        PatchStrategy.MergePatch,
      ),
    /** Bumps an annotation the controller treats as "sync now". */
    poke: (namespace: string, name: string) =>
      KubernetesObjectApi.makeApiClient(kubeConfig).patch(
        {
          apiVersion: 'smk.dev/v1alpha1',
          kind: 'SecretSync',
          metadata: { name, namespace, annotations: { 'smk.dev/force-sync': String(Date.now()) } },
        },
        undefined,
        undefined,
        'smk-tests',
        undefined,
        PatchStrategy.MergePatch,
      ),
  };
}

export function ready(resource: SecretSyncResource | undefined) {
  return resource?.status?.conditions?.find((condition) => condition.type === 'Ready');
}

/**
 * A tenant: a user who may create and read SecretSyncs and SecretProviderClasses and read Events
 * in `namespace`, and nothing else (no Secrets).
 */
export async function tenant(bed: TestBed, namespace: string): Promise<KubeConfig> {
  const user = `tenant-${namespace}`;
  const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: 'secretsync-author' },
      rules: [
        { apiGroups: ['smk.dev'], resources: ['secretsyncs'], verbs: ['create', 'get'] },
        {
          apiGroups: ['secrets-store.csi.x-k8s.io'],
          resources: ['secretproviderclasses'],
          verbs: ['create', 'get'],
        },
        { apiGroups: [''], resources: ['events'], verbs: ['list'] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'secretsync-author' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'secretsync-author' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    },
  });
  const kubeConfig = await bed.kubeConfigFor(user);
  // The premise: this tenant may not read the Secret, nor the value any other way.
  await assert.rejects(
    kubeConfig.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace }),
    (error: { code?: number }) => error.code === 403,
  );
  return kubeConfig;
}

/**
 * Polls `url` every 100 ms until stopped, recording each answer's latency; a probe still waiting
 * at the stop counts with the time it has waited (a dead server does not hold the test up); a probe
 * refused, timed out (30 s) or answered with another status than 200 counts as unanswered.
 */
export function sampleLatency(url: string): { stop(): number[]; unanswered(): number } {
  const latencies: number[] = [];
  let unanswered = 0;
  let running = true;
  let inFlight: number | undefined;
  void (async () => {
    while (running) {
      inFlight = performance.now();
      try {
        const answer = await fetch(url, { signal: AbortSignal.timeout(30_000) });
        await answer.text();
        if (answer.status !== 200) unanswered += 1;
      } catch {
        // A refused or timed-out probe is as bad as its duration says, and unanswered.
        if (running) unanswered += 1;
      }
      if (!running) return;
      latencies.push(performance.now() - inFlight);
      inFlight = undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    stop() {
      running = false;
      if (inFlight !== undefined) latencies.push(performance.now() - inFlight);
      return latencies;
    },
    unanswered: () => unanswered,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
