/**
 * `smk csi-provider`: the Secrets Store CSI provider, a drop-in for the AWS provider (same socket,
 * protocol and SecretProviderClass parameters), run as a DaemonSet with one cache for the node.
 *
 * Deployment needs (the Helm chart carries them):
 * - the driver's CSIDriver must pass pod tokens: `tokenRequests: [{audience: sts.amazonaws.com}]`
 *   (and `{audience: pods.eks.amazonaws.com}` for Pod Identity); smk never mints tokens itself;
 * - the socket directory on a hostPath shared with the driver (default
 *   /var/run/secrets-store-csi-providers), the process running as root like the driver;
 * - RBAC: get serviceaccounts (IRSA role annotation) and get nodes (region label);
 * - `--node-name=$(NODE_NAME)` from the downward API when SecretProviderClasses name no region.
 */
import { createServer, type Server } from 'node:http';
import * as z from 'zod';
import {
  jmesPathExpressionsHelp,
  jmesPathExpressionsOption,
  kubeConfigEnvironment,
  processEnvironment,
} from '../config.ts';
import { parseDuration } from '../core/duration.ts';
import { InvalidInputError } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { collectProcessMetrics, registry } from '../core/metrics.ts';
import { connectProvider } from '../csi/client.ts';
import {
  defaultProviderName,
  defaultProviderVolume,
  socketPathFor,
  startCsiProvider,
} from '../csi/provider.ts';
import { type KubeConfig, loadKubeConfig } from '../kube/client.ts';
import { parseCommandArgs, usageError } from './args.ts';
import { findKubeConfig, kubeConfigSource } from './kube-config.ts';

const usage = `Usage: smk csi-provider [options]

Serves the Secrets Store CSI driver's provider protocol on <provider-volume>/<provider-name>.sock.

Options:
  --provider-volume DIR        socket directory shared with the driver (default ${defaultProviderVolume})
  --provider-name NAME         socket name; SecretProviderClasses say "provider: NAME" (default ${defaultProviderName})
  --node-name NAME             this node, for its topology.kubernetes.io/region label (default: no node lookup)
  --authorization-window DUR   how long an identity's own successful read lets it be served from the
                               node cache, e.g. 60s, 5m (default 5m)
  --stage-ttl DUR              how long AWSCURRENT / a label is trusted to point at one version (default 15s)
  --role-cache-ttl DUR         how long a ServiceAccount's IRSA role annotation is remembered, 0 = every mount (default 30s)
  --cache-max-bytes N          budget for cached values in bytes (default 33554432)
  --max-reply-bytes N          largest Mount reply; match the driver's --max-call-recv-msg-size (default 4 MiB - 64 KiB)
  --health-port PORT           /healthz and /metrics on this port, 0 to disable (default 8095)
  --probe                      call Version on the socket and exit 0 when it answers (liveness probe)
${jmesPathExpressionsHelp(31)}
  -h, --help                   show this help

Environment: AWS_REGION (default region), AWS_ENDPOINT_URL, SMK_LOG_LEVEL, KUBECONFIG (else in-cluster).

The driver must pass each pod's token: its CSIDriver needs
  tokenRequests: [{audience: sts.amazonaws.com}]         (IRSA; add pods.eks.amazonaws.com for Pod Identity)
(driver Helm chart: --set tokenRequests[0].audience=sts.amazonaws.com). RBAC: get serviceaccounts, get nodes.
`;

function durationFlag(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw usageError('csi-provider', `--${flag}: expected a duration like 500ms, 30s or 5m`, `--${flag}`);
  }
  return ms;
}

const flagsSchema = z.object({
  'provider-volume': z.string().min(1),
  'provider-name': z
    .string()
    .regex(/^[a-zA-Z0-9_-]{1,30}$/, 'must be 1–30 of a-z A-Z 0-9 _ - (the driver’s rule)'),
  'node-name': z.string().min(1).optional(),
  'cache-max-bytes': z.coerce.number().int().positive().optional(),
  'max-reply-bytes': z.coerce.number().int().positive().optional(),
  'health-port': z.coerce.number().int().min(0).max(65535),
});

function readArgs(args: readonly string[]) {
  return parseCommandArgs('csi-provider', args, {
    'provider-volume': { type: 'string', default: defaultProviderVolume },
    'provider-name': { type: 'string', default: defaultProviderName },
    'node-name': { type: 'string' },
    'authorization-window': { type: 'string', default: '5m' },
    'stage-ttl': { type: 'string', default: '15s' },
    'role-cache-ttl': { type: 'string', default: '30s' },
    'cache-max-bytes': { type: 'string' },
    'max-reply-bytes': { type: 'string' },
    'health-port': { type: 'string', default: '8095' },
    probe: { type: 'boolean', default: false },
    ...jmesPathExpressionsOption,
    help: { type: 'boolean', short: 'h', default: false },
  });
}

function parseFlags(args: readonly string[]) {
  const { values } = readArgs(args);
  const parsed = flagsSchema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = String(issue?.path[0] ?? 'flags');
    throw usageError('csi-provider', `--${flag}: ${issue?.message ?? 'invalid'}`, `--${flag}`);
  }
  return {
    ...parsed.data,
    authorizationWindowMs: durationFlag(values['authorization-window'], 'authorization-window'),
    stageTtlMs: durationFlag(values['stage-ttl'], 'stage-ttl'),
    roleCacheTtlMs: durationFlag(values['role-cache-ttl'], 'role-cache-ttl'),
    probe: values.probe,
    allowJmesPathExpressions: values['allow-jmespath-expressions'],
    help: values.help,
  };
}

/**
 * A kubeconfig that is named but unusable stops the provider with the file and the reason. With none
 * at all (not in a pod, no KUBECONFIG) it still serves its socket — the driver's Version and the
 * liveness probe need no cluster — and says in its log that mounts will fail their ServiceAccount lookup.
 */
function providerKubeConfig(logger: Logger): KubeConfig {
  const found = findKubeConfig();
  if (!('problem' in found)) return found.kubeConfig;
  if (kubeConfigSource(kubeConfigEnvironment()).kind !== 'none') {
    throw new InvalidInputError(`smk csi-provider: ${found.problem}`, {
      subject: 'kubeconfig',
      field: 'KUBECONFIG',
    });
  }
  logger.warn(
    { problem: found.problem },
    'no kubeconfig: mounts will fail until smk runs with one (in a pod: in-cluster)',
  );
  return loadKubeConfig();
}

async function probe(socketPath: string): Promise<number> {
  const client = connectProvider(socketPath);
  try {
    const version = await client.version();
    process.stdout.write(`${version.runtime_name} ${version.runtime_version} (${version.version})\n`);
    return 0;
  } catch {
    process.stderr.write(`smk csi-provider: no answer on ${socketPath}\n`);
    return 1;
  } finally {
    client.close();
  }
}

function startHealthServer(port: number): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (request.url === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => response.writeHead(500).end(),
      );
      return;
    }
    response.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}

export async function run(args: readonly string[]): Promise<number> {
  const flags = parseFlags(args);
  if (flags.help) {
    process.stdout.write(usage);
    return 0;
  }
  const socketPath = socketPathFor(flags['provider-volume'], flags['provider-name']);
  if (flags.probe) return probe(socketPath);

  const environment = processEnvironment();
  const logger = createLogger({ name: 'smk-csi-provider', level: environment.logLevel });
  collectProcessMetrics();
  const provider = await startCsiProvider({
    providerVolume: flags['provider-volume'],
    providerName: flags['provider-name'],
    kubeConfig: providerKubeConfig(logger),
    nodeName: flags['node-name'],
    environmentRegion: environment.region,
    awsEndpoint: environment.awsEndpoint,
    authorizationWindowMs: flags.authorizationWindowMs,
    stageTtlMs: flags.stageTtlMs,
    roleCacheTtlMs: flags.roleCacheTtlMs,
    cacheMaxBytes: flags['cache-max-bytes'],
    maxReplyBytes: flags['max-reply-bytes'],
    allowJmesPathExpressions: flags.allowJmesPathExpressions,
    logger,
  });
  const health = flags['health-port'] === 0 ? undefined : await startHealthServer(flags['health-port']);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ signal }, 'stopping: finishing running mounts');
  health?.close();
  await provider.close(10_000);
  logger.flush();
  return 0;
}
