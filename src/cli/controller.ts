/**
 * `smk controller`: the sync controller (SecretSync and the SecretProviderClass drop-in →
 * Kubernetes Secrets), rotation and write-through, on one manager (kube/manager.ts: shared
 * informers, one Lease). Works with no flags: kubeconfig from KUBECONFIG or in-cluster, region and
 * endpoint from the standard AWS environment.
 *
 * RBAC it needs (cluster-wide, or per namespace with --namespaces):
 *   smk.dev secretsyncs: get list watch patch; secretsyncs/status: patch
 *   secrets-store.csi.x-k8s.io secretproviderclasses: get list watch
 *   secrets: get list watch create patch delete; serviceaccounts: get; serviceaccounts/token: create
 *   events: create; coordination.k8s.io leases (its own namespace): create, and get update on the
 *   one Lease --lease-name, under which every controller of the process acts
 * and for rotation (--rotation true, the default):
 *   apps deployments, statefulsets, daemonsets; batch cronjobs; argoproj.io rollouts (where served):
 *   get list watch patch
 *   configmaps: get list watch (those workloads name for restarts; Secrets are read as above)
 *   awssecretsoperator.secretoperator secretsrotationmappings: get list watch; …/status: patch
 *   smk.dev secretsyncs and secrets-store.csi.x-k8s.io secretproviderclasses: patch (re-sync request)
 * and for write-through (--write-through true): secrets: get list watch patch (finalizer, sealed
 *   value → references); its key Secret and ConfigMap in its own namespace: get patch (create when
 *   the chart did not make them);
 *   AWS (own role): secretsmanager CreateSecret, PutSecretValue, DescribeSecret, UpdateSecretVersionStage,
 *   TagResource, RestoreSecret, DeleteSecret on the write-through prefix, ListSecrets
 */
import { hostname } from 'node:os';
import * as z from 'zod';
import {
  AwsClients,
  createQueueReader,
  createSecretReader,
  createSecretWriter,
  parseQueueUrl,
  queueRegion,
  SecretCache,
} from '../aws/index.ts';
import { jmesPathExpressionsHelp, jmesPathExpressionsOption, parseEnvironment } from '../config.ts';
import { addClusterSyncController } from '../controller/cluster-sync/controller.ts';
import { coalescingReader } from '../controller/coalesce.ts';
import { createIdentityResolver } from '../controller/identity.ts';
import { addRotationController } from '../controller/rotation/controller.ts';
import { startHealthServer } from '../controller/server.ts';
import { addSyncController } from '../controller/sync/controller.ts';
import { addWriteThroughController } from '../controller/write-through/controller.ts';
import { parseDuration } from '../core/duration.ts';
import { createWorkerPool } from '../core/expressions.ts';
import { createLogger } from '../core/log.ts';
import { collectProcessMetrics } from '../core/metrics.ts';
import { createManager, type LeaderElectionSettings } from '../kube/manager.ts';
import { createServiceAccounts } from '../kube/service-accounts.ts';
import { parseCommandArgs, usageError } from './args.ts';
import { loadCommandKubeConfig } from './kube-config.ts';

const usage = `Usage: smk controller [options]

Syncs AWS Secrets Manager / SSM into Kubernetes Secrets for every SecretSync (smk.dev/v1alpha1)
and every SecretProviderClass annotated smk.dev/sync: "true", acting as the ServiceAccount each
object names in its own namespace (IRSA role from eks.amazonaws.com/role-arn).

Options:
  --namespaces A,B          only these namespaces (default: all)
  --concurrency N           syncs running at once (default 16)
  --rate N                  syncs started per second at most (default 200)
  --secret-provider-classes auto|true|false
                            watch SecretProviderClasses (default auto: when the CRD is installed)
  --leader-elect true|false run only while holding the Lease (default true)
  --lease-namespace NS      namespace of the Lease (default POD_NAMESPACE, else default)
  --lease-name NAME         (default smk-controller)
  --health-port PORT        /healthz, /readyz (a line per controller; /readyz/NAME for one) and /metrics
                            (default 8081; 0 picks a free port)
  --pod-identity true|false accounts without eks.amazonaws.com/role-arn use EKS Pod Identity (the node's
                            agent, AWS_CONTAINER_CREDENTIALS_FULL_URI) instead of failing (default false)
  --rotation true|false     detect secret changes, re-sync and roll workloads (default true)
  --rotation-queue-url URL  SQS queue of Secrets Manager events (deploy/aws/rotation.yaml);
                            without it, polling alone detects changes
  --rotation-poll-interval D  ListSecrets poll of the secrets in use (default 60s, jittered)
  --rotation-debounce D     changes within D make one rollout per workload (default 500ms)
  --reloader-annotations true|false
                            also roll workloads annotated with Stakater Reloader's
                            secret.reloader.stakater.com/reload and configmap.reloader.stakater.com/reload
                            (default false: with Reloader still installed, each change would restart twice)
  --write-through true|false  write the values the webhook sealed into write-through Secrets (label
                            smk.dev/write-through) to Secrets Manager, delete and sweep, with the
                            controller's own AWS identity; under the process's one Lease (default false)
  --write-through-prefix P  Secrets Manager names start with P<namespace>/ (default kubernetes/)
  --cluster-name NAME       this cluster's tag on written secrets; the webhook's value (default kubernetes)
  --write-through-key NAME  the Secret (private half, generated at first start) and ConfigMap (public half,
                            for the webhook) of the sealing key in POD_NAMESPACE (default smk-write-through-key)
  --write-through-kms-key ID  KMS key (id, alias or ARN) new secrets are encrypted with
                            (default: the account's aws/secretsmanager key)
  --write-through-deletion-policy Retain|Delete
                            when a Secret without smk.dev/deletion-policy is deleted (default Delete)
  --write-through-recovery-window-days N
                            recovery window of a Delete, 7-30 (default 30)
  --write-through-sweep-interval D
                            how often secrets whose Secret no longer exists are looked for
                            (default 10m; 0s turns it off)
  --write-through-sweep-grace D
                            such a secret is deleted once unchanged this long (default 10m)
${jmesPathExpressionsHelp(28)}
  -h, --help                show this help

Environment: AWS_REGION (default region), AWS_ENDPOINT_URL, SMK_LOG_LEVEL, KUBECONFIG (else in-cluster),
POD_NAME and POD_NAMESPACE (leader identity; Lease and write-through key namespace).
`;

const flagsSchema = z.object({
  namespaces: z
    .string()
    .optional()
    .transform((text) =>
      (text ?? '')
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== ''),
    ),
  concurrency: z.coerce.number().int().min(1).max(256).default(16),
  rate: z.coerce.number().positive().max(100_000).default(200),
  'secret-provider-classes': z.enum(['auto', 'true', 'false']).default('auto'),
  'leader-elect': z.enum(['true', 'false']).default('true'),
  'lease-namespace': z.string().min(1).optional(),
  'lease-name': z.string().min(1).default('smk-controller'),
  'health-port': z.coerce.number().int().min(0).max(65_535).default(8081),
  'pod-identity': z.enum(['true', 'false']).default('false'),
  rotation: z.enum(['true', 'false']).default('true'),
  'rotation-queue-url': z
    .string()
    .optional()
    .refine((url) => url === undefined || isQueueUrl(url), 'expected an SQS queue URL'),
  'rotation-poll-interval': durationFlag('60s', 10_000),
  'rotation-debounce': durationFlag('500ms', 0),
  'reloader-annotations': z.enum(['true', 'false']).default('false'),
  'write-through': z.enum(['true', 'false']).default('false'),
  'write-through-prefix': z
    .string()
    .regex(/^[A-Za-z0-9/_+=.@-]{0,256}$/, 'expected Secrets Manager name characters')
    .default('kubernetes/'),
  'cluster-name': z
    .string()
    .regex(/^[A-Za-z0-9 _.:/=+@-]{1,256}$/, 'expected 1-256 AWS tag value characters')
    .default('kubernetes'),
  'write-through-key': z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'expected a Kubernetes object name')
    .default('smk-write-through-key'),
  'write-through-kms-key': z.string().min(1).optional(),
  'write-through-deletion-policy': z.enum(['Retain', 'Delete']).default('Delete'),
  'write-through-recovery-window-days': z.coerce.number().int().min(7).max(30).default(30),
  'write-through-sweep-interval': durationFlag('10m', 0),
  'write-through-sweep-grace': durationFlag('10m', 0),
});

function isQueueUrl(url: string): boolean {
  try {
    parseQueueUrl(url);
    return true;
  } catch {
    return false;
  }
}

function durationFlag(fallback: string, minimumMs: number) {
  return z
    .string()
    .default(fallback)
    .transform((text) => parseDuration(text) ?? Number.NaN)
    .refine(
      (ms) => Number.isFinite(ms) && ms >= minimumMs,
      `expected a duration of at least ${minimumMs / 1000}s like "30s" or "2m"`,
    );
}

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('controller', args, {
    namespaces: { type: 'string' },
    concurrency: { type: 'string' },
    rate: { type: 'string' },
    'secret-provider-classes': { type: 'string' },
    'leader-elect': { type: 'string' },
    'lease-namespace': { type: 'string' },
    'lease-name': { type: 'string' },
    'health-port': { type: 'string' },
    'pod-identity': { type: 'string' },
    rotation: { type: 'string' },
    'rotation-queue-url': { type: 'string' },
    'rotation-poll-interval': { type: 'string' },
    'rotation-debounce': { type: 'string' },
    'reloader-annotations': { type: 'string' },
    'write-through': { type: 'string' },
    'write-through-prefix': { type: 'string' },
    'cluster-name': { type: 'string' },
    'write-through-key': { type: 'string' },
    'write-through-kms-key': { type: 'string' },
    'write-through-deletion-policy': { type: 'string' },
    'write-through-recovery-window-days': { type: 'string' },
    'write-through-sweep-interval': { type: 'string' },
    'write-through-sweep-grace': { type: 'string' },
    ...jmesPathExpressionsOption,
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const parsed = flagsSchema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = String(issue?.path[0] ?? 'flags');
    throw usageError('controller', `--${flag}: ${issue?.message ?? 'invalid'}`, `--${flag}`);
  }
  const flags = parsed.data;
  const env = parseEnvironment(process.env);
  const logger = createLogger({ level: env.logLevel, name: 'smk-controller' });
  collectProcessMetrics();

  const kubeConfig = loadCommandKubeConfig('controller');
  const cache = new SecretCache();
  const clients = new AwsClients({
    ...(env.awsEndpoint ? { endpoint: env.awsEndpoint } : {}),
    ...(env.region ? { stsRegion: env.region } : {}),
  });
  const identities = createIdentityResolver({
    serviceAccounts: createServiceAccounts(kubeConfig),
    makeReader: (identity) => coalescingReader(createSecretReader(identity, { cache, clients })),
    podIdentity: flags['pod-identity'] === 'true' ? {} : undefined,
  });
  const allowExpressions = values['allow-jmespath-expressions'];
  // One pool of worker threads for the process: templates always (every namespace's, in turn),
  // full JMESPath expressions where enabled. Nothing a tenant's spec decides runs on this loop.
  const workers = createWorkerPool();
  const expressions = allowExpressions ? workers : undefined;
  const podName = env.podName ?? hostname();
  let exitCode = 0;
  let stopping: Promise<void> | undefined;
  const leaseNamespace = flags['lease-namespace'] ?? env.podNamespace ?? 'default';
  const leaderElection: LeaderElectionSettings | undefined =
    flags['leader-elect'] === 'true'
      ? {
          namespace: leaseNamespace,
          name: flags['lease-name'],
          identity: `${podName}-${Math.random().toString(36).slice(2, 8)}`,
        }
      : undefined;
  // One manager for the process: shared informers, one Lease (sync, rotation and write-through
  // act only while holding it), worker pools, readiness and the graceful stop. Each controller
  // starts on its own caches: a list refused to rotation leaves sync syncing.
  const manager = createManager({
    kubeConfig,
    logger,
    namespaces: flags.namespaces,
    leaderElection,
    onLostLeadership: () => {
      logger.error('lost the leader lease; exiting so a fresh process competes again');
      exitCode = 1;
      void shutdown();
    },
  });
  addSyncController(manager, {
    identities,
    defaultRegion: env.region,
    expressions,
    templateRenderer: workers,
    concurrency: flags.concurrency,
    rateLimit: { perSecond: flags.rate, burst: Math.max(1, Math.round(flags.rate * 5)) },
    secretProviderClasses:
      flags['secret-provider-classes'] === 'auto' ? 'auto' : flags['secret-provider-classes'] === 'true',
  });
  addClusterSyncController(manager, { identities, defaultRegion: env.region, expressions });
  if (flags['write-through'] === 'true') {
    addWriteThroughController(manager, {
      writer: createSecretWriter({ kind: 'default' }, env.region ?? 'us-east-1', { clients }),
      settings: {
        cluster: flags['cluster-name'],
        prefix: flags['write-through-prefix'],
        deletionPolicy: flags['write-through-deletion-policy'],
        recoveryWindowDays: flags['write-through-recovery-window-days'],
        ...(flags['write-through-kms-key'] ? { kmsKeyId: flags['write-through-kms-key'] } : {}),
      },
      sealingKey: { namespace: env.podNamespace ?? 'default', name: flags['write-through-key'] },
      sweepIntervalMs: flags['write-through-sweep-interval'],
      sweepGraceMs: flags['write-through-sweep-grace'],
    });
  }
  if (flags.rotation === 'true') {
    const queueUrl = flags['rotation-queue-url'];
    addRotationController(manager, {
      // Change detection (ListSecrets, DescribeSecret) acts as the controller's own role.
      reader: createSecretReader({ kind: 'default' }, { cache, clients }),
      // What a namespace is shown of a secret waits for its own identity's DescribeSecret.
      identities,
      ...(queueUrl
        ? {
            queue: createQueueReader(
              { kind: 'default' },
              { clients },
              queueUrl,
              queueRegion(queueUrl) ?? env.region ?? 'us-east-1',
            ),
          }
        : {}),
      defaultRegion: env.region,
      // A confirmed change makes every identity's cached stage stale before the re-sync reads.
      sinks: [{ secretChanged: (change) => cache.stagesMoved(change.secret.region, change.secret.arn) }],
      pollIntervalMs: flags['rotation-poll-interval'],
      debounceMs: flags['rotation-debounce'],
      secretProviderClasses:
        flags['secret-provider-classes'] === 'auto' ? 'auto' : flags['secret-provider-classes'] === 'true',
      allowJmesPathExpressions: allowExpressions,
      reloaderAnnotations: flags['reloader-annotations'] === 'true',
    });
  }
  // /readyz: one line per controller; the process is ready once every enabled controller runs.
  const health = await startHealthServer(flags['health-port'], () => manager.readiness());
  logger.info({ healthPort: health.port }, 'health server listening');

  let release: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    release = resolve;
  });
  function shutdown(): Promise<void> {
    stopping ??= (async () => {
      logger.info('shutting down');
      await manager.stop();
      await workers.close();
      await health.close();
      release();
    })();
    return stopping;
  }
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());

  // The manager retries what the API server refuses (informers, CRD probes) with /readyz failing;
  // a SIGTERM meanwhile stops what started, and what has not started never starts.
  try {
    await manager.start();
  } catch (error) {
    // Unexpected: shut down (health server too), so the process exits with the message.
    await shutdown();
    throw error;
  }
  await stopped;
  return exitCode;
}
