/**
 * `smk webhook --tls-cert F --tls-key F`: the admission webhook that injects the agent into pods.
 * Serves HTTPS until SIGTERM, then drains (readiness off first, so endpoints drop this pod
 * before it stops answering). Pod admission makes no AWS call; with --write-through, Secret
 * admission writes labelled Secrets to Secrets Manager (src/webhook/secrets).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { AwsClients, createSecretWriter } from '../aws/index.ts';
import { jmesPathExpressionsHelp, jmesPathExpressionsOption, parseEnvironment } from '../config.ts';
import { InvalidInputError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import { collectProcessMetrics } from '../core/metrics.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { injectorConfigFromFlags } from '../webhook/injector-config.ts';
import { createWriteThroughCache, secretExistsFunction } from '../webhook/secrets/cache.ts';
import { reviewSecretAdmission } from '../webhook/secrets/handler.ts';
import { tokenFunction } from '../webhook/secrets/token.ts';
import { startWebhookServer, type WriteThroughRoutes } from '../webhook/server.ts';
import { startWebhookTls } from '../webhook/tls/bootstrap.ts';
import { tlsFlagOptions, tlsFlagsHelp, tlsSettingsFromFlags } from '../webhook/tls/flags.ts';
import { parseCommandArgs } from './args.ts';

const help = `Usage: smk webhook --tls-cert FILE --tls-key FILE [options]

Serve the mutating admission webhook (POST /mutate/pods, with --write-through also /mutate/secrets;
GET /healthz /readyz /metrics) over HTTPS.
The certificate files are re-read when they change.

Options:
  --tls-cert FILE           PEM serving certificate (chain)
  --tls-key FILE            PEM private key
  --port N                  listen port (default 8443)
  --host ADDR               listen address (default 0.0.0.0)
  --agent-image IMAGE       image of the injected agent (default: this release's smk image)
  --agent-pull-policy P     Always | IfNotPresent | Never (default IfNotPresent)
  --volume-size-limit Q     size limit of the memory volume (default 4Mi)
  --no-native-sidecar       run the refresh sidecar as a regular container (Kubernetes < 1.29)
${jmesPathExpressionsHelp(28)}
  --shutdown-delay SECONDS  keep serving this long after SIGTERM with /readyz failing (default 5)
  --write-through           also serve POST /mutate/secrets: Secrets labelled smk.dev/write-through=true
                            are written to Secrets Manager (this process's own AWS identity, AWS_REGION)
                            and stored without data; pods mounting them get the volume filled by the agent
  --write-through-prefix P  Secrets Manager names start with P<namespace>/ (default kubernetes/)
  --cluster-name NAME       tag value naming this cluster on written secrets (default kubernetes)
  --write-through-kms-key ID  KMS key (id, alias or ARN) new secrets are encrypted with
                            (default: the account's aws/secretsmanager key)
  --write-through-token-key FILE
                            secret bytes the replicas share, keying the version ids (default: --tls-key)
${tlsFlagsHelp}`;

const flagsSchema = z.object({
  port: z.coerce.number().int().min(0).max(65_535),
  shutdownDelay: z.coerce.number().min(0).max(300),
});

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('webhook', args, {
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    port: { type: 'string', default: '8443' },
    host: { type: 'string', default: '0.0.0.0' },
    'agent-image': { type: 'string' },
    'agent-pull-policy': { type: 'string' },
    'volume-size-limit': { type: 'string' },
    'no-native-sidecar': { type: 'boolean', default: false },
    ...jmesPathExpressionsOption,
    'shutdown-delay': { type: 'string', default: '5' },
    'write-through': { type: 'boolean', default: false },
    'write-through-prefix': { type: 'string', default: 'kubernetes/' },
    'cluster-name': { type: 'string', default: 'kubernetes' },
    'write-through-token-key': { type: 'string' },
    'write-through-kms-key': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
    ...tlsFlagOptions,
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  if (certFile === undefined || keyFile === undefined) {
    throw new InvalidInputError(
      'smk webhook: --tls-cert and --tls-key are required (see smk webhook --help)',
      {
        field: certFile === undefined ? '--tls-cert' : '--tls-key',
      },
    );
  }
  const flags = flagsSchema.safeParse({ port: values.port, shutdownDelay: values['shutdown-delay'] });
  if (!flags.success) {
    const key = String(flags.error.issues[0]?.path[0] ?? '');
    const flag = key === 'port' ? '--port' : '--shutdown-delay';
    throw new InvalidInputError(`smk webhook: ${flag} must be a number in range`, { field: flag });
  }
  const injector = injectorConfigFromFlags(
    {
      agentImage: values['agent-image'],
      pullPolicy: values['agent-pull-policy'],
      volumeSizeLimit: values['volume-size-limit'],
      nativeSidecar: !values['no-native-sidecar'],
      allowJmesPathExpressions: values['allow-jmespath-expressions'],
    },
    'webhook',
  );
  const tlsSettings = tlsSettingsFromFlags(values, process.env.POD_NAMESPACE);
  const environment = parseEnvironment(process.env);
  const log = createLogger({ name: 'smk-webhook', level: environment.logLevel });
  collectProcessMetrics();
  // Self-managed TLS writes the certificate files before the server first reads them.
  let reloadCertificates = (): void => {};
  const tls = tlsSettings
    ? await startWebhookTls({
        ...tlsSettings,
        kubeConfig: loadKubeConfig(),
        certFile,
        keyFile,
        log,
        onFilesChanged: () => reloadCertificates(),
      })
    : undefined;
  let writeThrough: { routes: WriteThroughRoutes; stop(): void } | undefined;
  if (values['write-through']) {
    const settings = writeThroughSettings(values['write-through-prefix'], values['cluster-name']);
    if (environment.region === undefined) {
      throw new InvalidInputError(
        'smk webhook --write-through: AWS_REGION is required (where secrets are written)',
        {
          field: 'AWS_REGION',
        },
      );
    }
    const kubeConfig = loadKubeConfig();
    const cache = createWriteThroughCache(kubeConfig, { logger: log.child({ component: 'write-through' }) });
    // Supervised like every informer: a refused or failing list is retried with backoff (and
    // logged), while /readyz fails and pods naming a Secret get a 503 until it has listed.
    void cache.start().then(() => {
      if (cache.synced) log.info('write-through Secrets listed: pod admission ready');
    });
    // A write must answer inside the API server's webhook timeout (10 s in the chart).
    const clients = new AwsClients({
      ...(environment.awsEndpoint ? { endpoint: environment.awsEndpoint } : {}),
      callTimeoutMs: 6_000,
    });
    const writer = createSecretWriter({ kind: 'default' }, environment.region, { clients });
    const tokenKeyFile = values['write-through-token-key'] ?? keyFile;
    const deps = {
      settings,
      writer,
      tokenOf: async () => tokenFunction(await readFile(tokenKeyFile)),
      secretExists: secretExistsFunction(kubeConfig),
      ...(values['write-through-kms-key'] ? { kmsKeyId: values['write-through-kms-key'] } : {}),
      log: log.child({ component: 'write-through' }),
    };
    writeThrough = {
      routes: {
        reviewSecret: (body) => reviewSecretAdmission(body, deps),
        lookup: cache.lookup,
        synced: () => cache.synced,
      },
      stop: () => {
        cache.stop();
        clients.destroy();
      },
    };
  }
  const server = await startWebhookServer({
    tlsCertFile: certFile,
    tlsKeyFile: keyFile,
    injector,
    ...(writeThrough ? { writeThrough: writeThrough.routes } : {}),
    log,
    port: flags.data.port,
    host: values.host,
  });
  reloadCertificates = () => void server.reloadCertificates();
  log.info({ agentImage: injector.agentImage, nativeSidecar: injector.nativeSidecar }, 'injector ready');
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      tls?.stop();
      server
        .close({ delayMs: flags.data.shutdownDelay * 1000 })
        .finally(() => writeThrough?.stop())
        .then(resolve, resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return 0;
}

const settingsSchema = z.object({
  prefix: z.string().regex(/^[A-Za-z0-9/_+=.@-]{0,256}$/, 'expected Secrets Manager name characters'),
  cluster: z.string().regex(/^[A-Za-z0-9 _.:/=+@-]{1,256}$/, 'expected 1-256 AWS tag value characters'),
});

function writeThroughSettings(prefix: string, cluster: string): { prefix: string; cluster: string } {
  const parsed = settingsSchema.safeParse({ prefix, cluster });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = issue?.path[0] === 'prefix' ? '--write-through-prefix' : '--cluster-name';
    throw new InvalidInputError(`smk webhook: ${flag} ${issue?.message ?? 'is invalid'}`, { field: flag });
  }
  return parsed.data;
}
