/**
 * One write-through setup on the test bed + moto, per test file: smk's webhook server (with the
 * write-through routes, its informer cache and the controller's published sealing key; no AWS
 * identity at all) registered through the API server with the two write-through webhooks, and
 * the write-through controller (its own AWS key, its sealing key in a namespace of its own)
 * writing through a per-file counting/fault proxy in front of moto. Each file gets its own
 * namespaces, cluster name and prefix, so files run in parallel on one bed and moto.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from '@kubernetes/client-node';
import { AwsClients, createSecretWriter } from '../../src/aws/index.ts';
import {
  createWriteThroughController,
  type WriteThroughController,
} from '../../src/controller/write-through/controller.ts';
import { silentLogger } from '../../src/core/log.ts';
import { writeThroughFinalizer } from '../../src/core/write-through.ts';
import { defaultInjectorConfig } from '../../src/webhook/mutate.ts';
import { createWriteThroughCache, type WriteThroughCache } from '../../src/webhook/secrets/cache.ts';
import { secretsPath, writeThroughWebhooks } from '../../src/webhook/secrets/configuration.ts';
import { reviewSecretAdmission } from '../../src/webhook/secrets/handler.ts';
import { publishedKeySource } from '../../src/webhook/secrets/sealing-key.ts';
import { startWebhookServer, type WebhookServer } from '../../src/webhook/server.ts';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';

export const region = 'us-east-1';
export const controllerKey = 'AKIDWRITETHROUGHCTRL';
export const sealingKeyName = 'smk-write-through-key';
export const agentImage = 'registry.invalid/smk:test';

import { eventually } from '../harness/wait.ts';

export { eventually };

export interface WriteThroughWorld {
  readonly bed: TestBed;
  readonly core: CoreV1Api;
  /** Two namespaces with the webhooks on. */
  readonly namespaces: readonly [string, string];
  /** smk's own namespace: the controller's sealing key (Secret) and its public half (ConfigMap). */
  readonly system: string;
  /** The webhook's Secret admission endpoint, as anyone on the pod network could call it. */
  readonly secretsUrl: string;
  /** CA of the webhook's serving certificate. */
  readonly caPem: string;
  readonly cluster: string;
  readonly prefix: string;
  readonly proxy: AwsProxy;
  /** Admin client straight to moto (setup and checks; not counted). */
  readonly admin: SecretsManagerClient;
  readonly controller: WriteThroughController;
  readonly cache: WriteThroughCache;
  /** `namespace/name` of every Secret admission the webhook received, in order. */
  readonly reviewed: string[];
  secretName(namespace: string, name: string): string;
  stop(): Promise<void>;
}

export async function startWriteThroughWorld(label: string): Promise<WriteThroughWorld> {
  const moto = connectMoto();
  const bed = await connectTestBed();
  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  const run = randomUUID().slice(0, 8);
  const cluster = `bed-${run}`;
  const prefix = `smk-it-${run}/`;
  const namespaces = [await bed.newNamespace(`${label}-a`), await bed.newNamespace(`${label}-b`)] as const;
  const system = await bed.newNamespace(`${label}-smk`);
  const work = await mkdtemp(join(tmpdir(), 'smk-write-through-it-'));
  const ca = await createCertificateAuthority({ commonName: 'smk-write-through-test-ca', validForDays: 1 });
  const serving = await issueServingCertificate(ca, {
    commonName: 'smk-webhook',
    ipAddresses: ['127.0.0.1'],
  });
  const certFile = join(work, 'tls.crt');
  const keyFile = join(work, 'tls.key');
  await writeFile(certFile, serving.certPem);
  await writeFile(keyFile, serving.keyPem, { mode: 0o600 });

  const proxy = await startAwsProxy({ target: moto.endpoint });
  const clients = new AwsClients({ endpoint: proxy.endpoint, maxAttempts: 1, callTimeoutMs: 6_000 });
  const identity = (accessKeyId: string) => ({
    kind: 'static' as const,
    accessKeyId,
    secretAccessKey: 'testing',
  });
  const cache = createWriteThroughCache(bed.kubeConfig, {
    namespaces,
    logger: silentLogger(),
    location: { prefix, region },
  });
  await cache.start();
  const reviewed: string[] = [];
  const deps = {
    settings: { prefix, cluster },
    publicKey: publishedKeySource(bed.kubeConfig, { namespace: system, name: sealingKeyName }),
    log: silentLogger(),
  };
  const server: WebhookServer = await startWebhookServer({
    tlsCertFile: certFile,
    tlsKeyFile: keyFile,
    injector: { ...defaultInjectorConfig, agentImage },
    writeThrough: {
      reviewSecret: (body) => {
        const request = (
          body as {
            request?: { namespace?: string; name?: string; object?: { metadata?: { name?: string } } };
          }
        ).request;
        reviewed.push(`${request?.namespace}/${request?.name ?? request?.object?.metadata?.name}`);
        return reviewSecretAdmission(body, deps);
      },
      lookup: cache.lookup,
    },
    log: silentLogger(),
    port: 0,
    host: '127.0.0.1',
  });
  const configName = `smk-write-through-${run}`;
  const admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  await admission.createMutatingWebhookConfiguration({
    body: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: configName },
      webhooks: writeThroughWebhooks({
        caBundlePem: ca.certPem,
        target: { url: `https://127.0.0.1:${server.port}` },
        // Only this file's namespaces: the bed is shared with tests running in parallel.
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [...namespaces] }],
        },
      }),
    },
  });
  const controller = createWriteThroughController({
    kubeConfig: bed.kubeConfig,
    writer: createSecretWriter(identity(controllerKey), region, { clients }),
    settings: { cluster, prefix, deletionPolicy: 'Delete', recoveryWindowDays: 30 },
    sealingKey: { namespace: system, name: sealingKeyName },
    logger: silentLogger(),
    namespaces,
    sweepIntervalMs: 0,
    sweepGraceMs: 0,
  });
  await controller.start();
  // The API server picks up a new webhook configuration asynchronously: probe with a dry run.
  await eventually('the write-through webhook to take effect', async () => {
    const probe = await core.createNamespacedSecret({
      namespace: namespaces[0],
      dryRun: 'All',
      body: { metadata: { name: 'probe', labels: { 'smk.dev/write-through': 'true' } }, data: { a: 'YQ==' } },
    });
    return probe.metadata?.annotations?.['smk.dev/keys'] === 'a' ? true : undefined;
  });
  reviewed.length = 0;
  const admin = new SecretsManagerClient({ region, endpoint: moto.endpoint });

  return {
    bed,
    core,
    namespaces,
    system,
    secretsUrl: `https://127.0.0.1:${server.port}${secretsPath}`,
    caPem: ca.certPem,
    cluster,
    prefix,
    proxy,
    admin,
    controller,
    cache,
    reviewed,
    secretName: (namespace, name) => `${prefix}${namespace}/${name}`,
    async stop() {
      await admission.deleteMutatingWebhookConfiguration({ name: configName }).catch(() => undefined);
      // Leave nothing Terminating for want of the controller: take our finalizer off what is left.
      for (const namespace of namespaces) {
        const list = await core.listNamespacedSecret({ namespace }).catch(() => undefined);
        for (const secret of list?.items ?? []) {
          const finalizers = secret.metadata?.finalizers ?? [];
          if (!finalizers.includes(writeThroughFinalizer)) continue;
          await core
            .patchNamespacedSecret(
              {
                namespace,
                name: secret.metadata?.name ?? '',
                body: [
                  {
                    op: 'replace',
                    path: '/metadata/finalizers',
                    value: finalizers.filter((f) => f !== writeThroughFinalizer),
                  },
                ],
              },
              setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
            )
            .catch(() => undefined);
        }
      }
      await controller.stop();
      cache.stop();
      await server.close();
      await proxy.stop();
      clients.destroy();
      admin.destroy();
      await bed.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** A Secret body as `kubectl create secret generic NAME --from-literal=k=v` sends it, labelled. */
export function secretBody(
  name: string,
  values: Record<string, string | Uint8Array>,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      labels: { 'smk.dev/write-through': 'true', ...extra.labels },
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
    },
    type: 'Opaque',
    data: Object.fromEntries(
      Object.entries(values).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
    ),
  };
}

/** The stored document in Secrets Manager at a stage (always named: moto.md #1). */
export async function storedValue(
  admin: SecretsManagerClient,
  id: string,
  stage = 'AWSCURRENT',
): Promise<Record<string, unknown>> {
  const answer = await admin.send(new GetSecretValueCommand({ SecretId: id, VersionStage: stage }));
  return JSON.parse(answer.SecretString ?? 'null') as Record<string, unknown>;
}

export async function versionsOf(admin: SecretsManagerClient, id: string): Promise<Map<string, string[]>> {
  const answer = await admin.send(new ListSecretVersionIdsCommand({ SecretId: id, IncludeDeprecated: true }));
  return new Map(
    (answer.Versions ?? []).map((version) => [version.VersionId ?? '', version.VersionStages ?? []]),
  );
}

export async function describe(admin: SecretsManagerClient, id: string) {
  return admin.send(new DescribeSecretCommand({ SecretId: id }));
}

/** True when moto has no secret of that name (NotFound). */
export async function absent(admin: SecretsManagerClient, id: string): Promise<boolean> {
  try {
    await describe(admin, id);
    return false;
  } catch (error) {
    if ((error as { name?: string }).name === 'ResourceNotFoundException') return true;
    throw error;
  }
}

/** The error text the API server gave for a refused request (ApiException body), for assertions. */
export function refusal(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  try {
    return String((JSON.parse(text) as { message?: unknown }).message ?? text);
  } catch {
    return text;
  }
}

/**
 * The Secret once the controller wrote its value through: no sealed value left, the ARN and
 * version it wrote recorded, and that version committed (tagged) in Secrets Manager.
 */
export async function settled(world: WriteThroughWorld, namespace: string, name: string): Promise<V1Secret> {
  return eventually(`the controller to write Secret ${namespace}/${name} through`, async () => {
    const secret = await world.core.readNamespacedSecret({ namespace, name });
    const annotations = secret.metadata?.annotations ?? {};
    const arn = annotations['smk.dev/aws-secret-arn'];
    const versionId = annotations['smk.dev/aws-version-id'];
    if (annotations['smk.dev/sealed'] !== undefined || !arn || !versionId) return undefined;
    const tags = (await describe(world.admin, arn)).Tags ?? [];
    return tags.some((tag) => tag.Key === 'smk.dev/committed-version' && tag.Value === versionId)
      ? secret
      : undefined;
  });
}
