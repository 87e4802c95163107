/**
 * The sync controller as real processes (`smk controller`, as the Deployment runs it) for the
 * fault and HA suites: each one can be SIGKILLed, sees AWS through the counting/fault proxy and,
 * when asked, the API server through a TCP fault proxy, so "restart the API server" and "kill the
 * leader" happen to the process as they would in a cluster. Plus the objects those suites make:
 * the SecretSync CRD, tenants with IRSA ServiceAccounts, secrets in moto, SecretSyncs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Secret,
} from '@kubernetes/client-node';
import { crdFiles, installCrds } from '../harness/crds.ts';
import { delay, waitFor } from '../harness/wait.ts';
import type { TestBed } from '../testbed/index.ts';

export { delay, waitFor };

import { renderKubeConfig } from '../testbed/kubeconfig.ts';

const root = new URL('../../', import.meta.url);
const mainScript = new URL('src/cli/main.ts', root).pathname;
export const secretSyncs = { group: 'smk.dev', version: 'v1alpha1', plural: 'secretsyncs' } as const;

/** The SecretSync CRD, served. */
export function installSecretSyncCrd(kubeConfig: KubeConfig): Promise<void> {
  return installCrds(kubeConfig, [crdFiles.secretSync]);
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export function secretsManager(endpoint: string): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
}

export async function createAwsSecrets(
  client: SecretsManagerClient,
  names: readonly string[],
  value: (name: string) => string,
): Promise<void> {
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(
      names
        .slice(i, i + 20)
        .map((name) => client.send(new CreateSecretCommand({ Name: name, SecretString: value(name) }))),
    );
  }
}

export async function putAwsSecret(client: SecretsManagerClient, name: string, value: string): Promise<void> {
  await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
}

/** A ServiceAccount whose IRSA role the controller assumes (moto answers any role). */
export async function createTenantServiceAccount(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<void> {
  await kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
    namespace,
    body: {
      metadata: {
        name,
        annotations: { 'eks.amazonaws.com/role-arn': `arn:aws:iam::123456789012:role/${name}` },
      },
    },
  });
}

export async function createSecretSync(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    ...secretSyncs,
    namespace,
    body: { apiVersion: 'smk.dev/v1alpha1', kind: 'SecretSync', metadata: { name }, spec },
  });
}

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

export interface SecretSyncState {
  readonly name: string;
  readonly ready: Condition | undefined;
}

export async function listSecretSyncs(kubeConfig: KubeConfig, namespace: string): Promise<SecretSyncState[]> {
  const list = (await kubeConfig
    .makeApiClient(CustomObjectsApi)
    .listNamespacedCustomObject({ ...secretSyncs, namespace })) as {
    items: { metadata: { name: string }; status?: { conditions?: Condition[] } }[];
  };
  return list.items.map((item) => ({
    name: item.metadata.name,
    ready: item.status?.conditions?.find((condition) => condition.type === 'Ready'),
  }));
}

export async function listSecrets(kubeConfig: KubeConfig, namespace: string): Promise<V1Secret[]> {
  const list = await kubeConfig.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace });
  return list.items.filter((secret) => secret.type !== 'kubernetes.io/service-account-token');
}

export const decode = (value: string | undefined): string =>
  Buffer.from(value ?? '', 'base64').toString('utf8');

/** The Lease holder (the controller's identity is `<POD_NAME>-<random>`). */
export async function leaseHolder(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  const lease = await kubeConfig
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ namespace, name })
    .catch(() => undefined);
  return lease?.spec?.holderIdentity ?? undefined;
}

export interface ControllerProcess {
  readonly name: string;
  readonly pid: number;
  /** Its log so far (JSON lines; never asserted on for values). */
  log(): string;
  readonly exited: Promise<number | string>;
  isRunning(): boolean;
  /** The health server's port, once it has logged it. */
  healthPort(): Promise<number>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

export interface ControllerProcessOptions {
  /** POD_NAME: the start of its Lease identity. */
  readonly name: string;
  readonly namespace: string;
  readonly awsEndpoint: string;
  /** Kubeconfig file the process uses (default the bed's admin kubeconfig). */
  readonly kubeConfigPath: string;
  readonly leaseName: string;
  readonly extraArgs?: readonly string[];
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** `smk controller` for one namespace, leader-elected, rotation off, health on a free port. */
export function startControllerProcess(options: ControllerProcessOptions): ControllerProcess {
  const child = spawn(
    process.execPath,
    [
      mainScript,
      'controller',
      '--namespaces',
      options.namespace,
      '--leader-elect',
      'true',
      '--lease-namespace',
      options.namespace,
      '--lease-name',
      options.leaseName,
      '--health-port',
      '0',
      '--rotation',
      'false',
      '--secret-provider-classes',
      'false',
      ...(options.extraArgs ?? []),
    ],
    {
      env: {
        ...process.env,
        KUBECONFIG: options.kubeConfigPath,
        AWS_ENDPOINT_URL: options.awsEndpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        POD_NAME: options.name,
        POD_NAMESPACE: options.namespace,
        SMK_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  let log = '';
  const append = (chunk: Buffer): void => {
    log += chunk.toString('utf8');
    if (log.length > 2_000_000) log = log.slice(-1_000_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let alive = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      running.delete(child);
      resolve(signal ?? code ?? 0);
    });
  });
  return {
    name: options.name,
    pid: child.pid ?? -1,
    log: () => log,
    exited,
    isRunning: () => alive,
    healthPort: () =>
      waitFor(`${options.name} health port`, 30_000, async () => {
        const match = /"healthPort":(\d+)/.exec(log);
        return match ? Number(match[1]) : undefined;
      }),
    async kill(signal) {
      if (!alive) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** A kubeconfig file for the bed's admin that talks to `server` (a proxy in front of the API server). */
export async function kubeConfigFileVia(bed: TestBed, server: string, dir: string): Promise<string> {
  const user = bed.kubeConfig.getCurrentUser();
  const path = join(dir, `kubeconfig-${randomBytes(3).toString('hex')}`);
  const certData = user?.certData;
  const keyData = user?.keyData;
  if (!certData || !keyData) throw new Error('the bed admin kubeconfig has no client certificate data');
  await writeFile(
    path,
    renderKubeConfig({
      server,
      caPem: bed.caPem,
      credentials: {
        name: 'smk-testbed-admin',
        certPem: Buffer.from(certData, 'base64').toString('utf8'),
        keyPem: Buffer.from(keyData, 'base64').toString('utf8'),
      },
    }),
    { mode: 0o600 },
  );
  return path;
}

export async function readyz(port: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2_000) });
  await response.body?.cancel();
  return response.status;
}

export { once };
