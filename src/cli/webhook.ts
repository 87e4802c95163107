/**
 * `smk webhook --tls-cert F --tls-key F`: the admission webhook that injects the agent into pods.
 * Serves HTTPS until SIGTERM, then drains (readiness off first, so endpoints drop this pod
 * before it stops answering). The webhook makes no AWS call: with --write-through, Secret
 * admission seals a labelled Secret's value to the controller's key, and the controller writes it
 * to Secrets Manager (src/webhook/secrets).
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import { processEnvironment } from '../config.ts';
import { InvalidInputError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import { collectProcessMetrics } from '../core/metrics.ts';
import type { KubeAccess } from '../kube/endpoint.ts';
import { startWebhookServer, type WriteThroughRoutes } from '../webhook/server.ts';
import { tlsFlagOptions, tlsFlagsHelp, tlsSettingsFromFlags } from '../webhook/tls/flags.ts';
import { checkFlags, parseCommandArgs, usageError } from './args.ts';
import { injectorFlagOptions, injectorFlagsHelp, injectorFromFlags } from './injector-flags.ts';
import { readTextArgument } from './input.ts';

const help = `Usage: smk webhook --tls-cert FILE --tls-key FILE [options]
       smk webhook --tls-secret NAME --tls-service NAME --tls-webhook-config NAME [options]

Serve the mutating admission webhook (POST /mutate/pods, with --write-through also /mutate/secrets;
GET /healthz /readyz /metrics) over HTTPS.
The certificate files are re-read when they change.

Options:
  --tls-cert FILE           PEM serving certificate (chain); with --tls-secret, where it is written
                            (default: a private temporary directory of this process)
  --tls-key FILE            PEM private key; likewise
  --port N                  listen port (default 8443)
  --host ADDR               listen address (default 0.0.0.0)
${injectorFlagsHelp}
  --shutdown-delay SECONDS  keep serving this long after SIGTERM with /readyz failing (default 5)
  --write-through           also serve POST /mutate/secrets: Secrets labelled smk.dev/write-through=true
                            are stored without data, their value sealed to the controller's key (which
                            writes it to Secrets Manager in AWS_REGION); pods mounting them get the
                            volume filled by the agent. No AWS call, no AWS identity needed
  --write-through-prefix P  Secrets Manager names start with P<namespace>/ (default kubernetes/)
  --cluster-name NAME       this cluster's name in sealed values and tags (default kubernetes)
  --write-through-key NAME  ConfigMap in POD_NAMESPACE where the controller publishes its sealing
                            key (default smk-write-through-key)
${tlsFlagsHelp}`;

/** In a pod the in-cluster endpoint (no client-node); elsewhere a kubeconfig (client-node reads it). */
async function loadKubeAccess(): Promise<KubeAccess> {
  return (await import('./kube-access.ts')).loadCommandKubeAccess('webhook');
}

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
    ...injectorFlagOptions,
    'shutdown-delay': { type: 'string', default: '5' },
    'write-through': { type: 'boolean', default: false },
    'write-through-prefix': { type: 'string', default: 'kubernetes/' },
    'cluster-name': { type: 'string', default: 'kubernetes' },
    'write-through-key': { type: 'string', default: 'smk-write-through-key' },
    help: { type: 'boolean', short: 'h', default: false },
    ...tlsFlagOptions,
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const flags = flagsSchema.safeParse({ port: values.port, shutdownDelay: values['shutdown-delay'] });
  if (!flags.success) {
    const key = String(flags.error.issues[0]?.path[0] ?? '');
    const flag = key === 'port' ? '--port' : '--shutdown-delay';
    throw usageError('webhook', `${flag} must be a number in range`, flag);
  }
  const injector = injectorFromFlags(values, 'webhook');
  const environment = processEnvironment();
  const tlsSettings = checkFlags(() => tlsSettingsFromFlags(values, environment.podNamespace));
  const { certFile, keyFile } = await certificateFiles(
    values['tls-cert'],
    values['tls-key'],
    tlsSettings !== undefined,
  );
  const log = createLogger({ name: 'smk-webhook', level: environment.logLevel });
  collectProcessMetrics();
  // The API server is reached only when a flag needs it, and in a pod through the in-cluster
  // endpoint (TLS bootstrap, sealing key, the write-through Secret cache's list and watch):
  // client-node's modules alone hold ~40 MiB of a webhook whose goal is 64 MiB.
  let kubeAccess: Promise<KubeAccess> | undefined;
  const kubeAccessOf = (): Promise<KubeAccess> => {
    kubeAccess ??= loadKubeAccess();
    return kubeAccess;
  };
  // Self-managed TLS writes the certificate files before the server first reads them.
  let reloadCertificates = (): void => {};
  const tls = tlsSettings
    ? await (await import('../webhook/tls/bootstrap.ts')).startWebhookTls({
        ...tlsSettings,
        kubeConfig: await kubeAccessOf(),
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
        'smk webhook --write-through: AWS_REGION is required (where the controller writes secrets, and pods read them)',
        {
          field: 'AWS_REGION',
        },
      );
    }
    const [access, { createWriteThroughCache }, { reviewSecretAdmission }, { publishedKeySource }] =
      await Promise.all([
        kubeAccessOf(),
        import('../webhook/secrets/cache.ts'),
        import('../webhook/secrets/handler.ts'),
        import('../webhook/secrets/sealing-key.ts'),
      ]);
    const cache = createWriteThroughCache(access, {
      logger: log.child({ component: 'write-through' }),
      location: { prefix: settings.prefix, region: environment.region },
    });
    // Supervised like every informer: a refused or failing list is retried with backoff (and
    // logged), while /readyz fails and pods naming a Secret get a 503 until it has listed.
    void cache.start().then(() => {
      if (cache.synced) log.info('write-through Secrets listed: pod admission ready');
    });
    const deps = {
      settings,
      publicKey: publishedKeySource(access, {
        namespace: environment.podNamespace ?? 'default',
        name: values['write-through-key'],
      }),
      log: log.child({ component: 'write-through' }),
    };
    writeThrough = {
      routes: {
        reviewSecret: (body) => reviewSecretAdmission(body, deps),
        lookup: cache.lookup,
        synced: () => cache.synced,
      },
      stop: () => cache.stop(),
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

/**
 * The serving certificate's files. Given ones must be readable now, so a wrong path is named at
 * start. With self-managed TLS (--tls-secret) the bootstrap writes them, by default into a private
 * directory of this process (mode 0700, removed at exit), as the README's `--tls-secret NAME` says.
 */
async function certificateFiles(
  certFile: string | undefined,
  keyFile: string | undefined,
  selfManaged: boolean,
): Promise<{ certFile: string; keyFile: string }> {
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const missing = certFile === undefined ? '--tls-cert' : '--tls-key';
    throw usageError(
      'webhook',
      `${missing} is required with ${missing === '--tls-cert' ? '--tls-key' : '--tls-cert'}`,
      missing,
    );
  }
  if (certFile !== undefined && keyFile !== undefined) {
    if (!selfManaged) {
      await readTextArgument('webhook', '--tls-cert', certFile);
      await readTextArgument('webhook', '--tls-key', keyFile);
    }
    return { certFile, keyFile };
  }
  if (!selfManaged) {
    throw usageError(
      'webhook',
      'give --tls-cert FILE and --tls-key FILE, or --tls-secret NAME for self-managed TLS',
      '--tls-cert',
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'smk-webhook-tls-'));
  // The private key does not outlive the process, however it ends (short of SIGKILL).
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
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
    throw usageError('webhook', `${flag} ${issue?.message ?? 'is invalid'}`, flag);
  }
  return parsed.data;
}
