/**
 * Webhook TLS without extra software: at start the webhook loads or creates its CA and serving
 * certificate, kept in one Secret that every replica shares, writes the certificate and key to
 * the files its HTTPS server reads, and patches the caBundle into its webhook configurations.
 * Then it checks again every interval and rotates before expiry (plan.ts decides what to do).
 * Replicas agree through the Secret's resourceVersion: a create or replace that loses the race
 * re-reads and takes the winner's material, so all replicas serve certificates of one CA.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1MutatingWebhookConfiguration,
  V1Secret,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { describeError, InvalidInputError, isSmkError, TransientError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { counter, gauge } from '../../core/metrics.ts';
import { apiStatus, kubeError, retryAfterMsOf } from '../../kube/api-errors.ts';
import type { KubeAccess } from '../../kube/endpoint.ts';
import { createKubeHttp, resourcePath } from '../../kube/http.ts';
import { caBundle, materialFacts, readMaterial, type TlsMaterial, writeMaterial } from './material.ts';
import { type CertificateWithKey, createCertificateAuthority, issueServingCertificate } from './pki.ts';
import { planTls, type RotationPolicy, type ServingNames, type TlsAction } from './plan.ts';

const dayMs = 24 * 60 * 60 * 1000;

export const defaultRotationPolicy: RotationPolicy = {
  caValidityMs: 3650 * dayMs,
  servingValidityMs: 365 * dayMs,
  caOverlapMs: 10 * 60 * 1000,
};

const rotations = counter(
  'smk_webhook_tls_rotations_total',
  'Changes made to the webhook TLS Secret, by action.',
  ['action'],
);
const checkFailures = counter(
  'smk_webhook_tls_check_failures_total',
  'TLS checks that failed (API errors); the current certificate stays in use.',
  [],
);
const expiry = gauge(
  'smk_webhook_tls_expiry_timestamp_seconds',
  'When the certificate in use expires (unix seconds), by certificate (serving, ca).',
  ['certificate'],
);

export interface WebhookConfigurationRefs {
  readonly mutating?: readonly string[];
  readonly validating?: readonly string[];
}

export interface WebhookTlsOptions {
  /** A kubeconfig, or in a pod the in-cluster endpoint (then client-node is never loaded). */
  readonly kubeConfig: KubeAccess;
  /** Namespace of the Secret and the Service. */
  readonly namespace: string;
  readonly secretName: string;
  /** The Service the API server calls; the certificate names `<svc>.<ns>.svc[.<domain>]`. */
  readonly serviceName: string;
  readonly clusterDomain?: string;
  /** Configurations whose every webhook gets our caBundle (and whose url hosts join the names). */
  readonly webhookConfigurations: WebhookConfigurationRefs;
  readonly certFile: string;
  readonly keyFile: string;
  readonly log: Logger;
  readonly policy?: Partial<RotationPolicy>;
  /** Default 60 s (±10% jitter). Also how soon a replica takes up another replica's rotation. */
  readonly checkIntervalMs?: number;
  /** How long start keeps retrying (API not reachable yet, configuration not created yet). Default 60 s. */
  readonly startupTimeoutMs?: number;
  /** Called after new files were written (the server reloads them). */
  readonly onFilesChanged?: () => void;
}

export interface WebhookTls {
  /** The PEM bundle currently patched into the configurations. */
  readonly caBundlePem: string;
  /** One check now: Secret, files, caBundles. Throws on API errors (the timer only logs them). */
  check(): Promise<void>;
  stop(): void;
}

type StoredSecret = { readonly secret: V1Secret; readonly material: TlsMaterial | undefined } | undefined;

function servingNames(options: WebhookTlsOptions, urlHosts: ServingNames): ServingNames {
  const base = `${options.serviceName}.${options.namespace}.svc`;
  const dnsNames = [base, `${base}.${options.clusterDomain ?? 'cluster.local'}`, ...urlHosts.dnsNames];
  return { dnsNames: [...new Set(dnsNames)], ipAddresses: [...new Set(urlHosts.ipAddresses)] };
}

/** Hosts of url-mode webhooks: the certificate must be valid for however the API server dials us. */
function urlHosts(clientConfigs: readonly AdmissionregistrationV1WebhookClientConfig[]): ServingNames {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const config of clientConfigs) {
    if (config.url === undefined) continue;
    let host: string;
    try {
      host = new URL(config.url).hostname;
    } catch {
      continue;
    }
    if (host.startsWith('[')) ipAddresses.push(host.slice(1, -1));
    else if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) ipAddresses.push(host);
    else dnsNames.push(host);
  }
  return { dnsNames, ipAddresses };
}

function toPair(cert: CertificateWithKey): { certPem: string; keyPem: string } {
  return { certPem: cert.certPem, keyPem: cert.keyPem };
}

async function newCa(
  policy: RotationPolicy,
  commonName: string,
): Promise<{ certPem: string; keyPem: string }> {
  return toPair(await createCertificateAuthority({ commonName, validForDays: policy.caValidityMs / dayMs }));
}

async function newServing(
  ca: { certPem: string; keyPem: string },
  names: ServingNames,
  policy: RotationPolicy,
): Promise<{ certPem: string; keyPem: string }> {
  const caNotAfter = Date.parse(new X509Certificate(ca.certPem).validTo);
  const validMs = Math.min(policy.servingValidityMs, caNotAfter - Date.now());
  const serving = await issueServingCertificate(
    { certPem: ca.certPem, keyPem: ca.keyPem, notAfter: new Date(caNotAfter) },
    {
      commonName: names.dnsNames[0] ?? names.ipAddresses[0] ?? 'smk-webhook',
      dnsNames: names.dnsNames,
      ipAddresses: names.ipAddresses,
      validForDays: validMs / dayMs,
    },
  );
  return toPair(serving);
}

/** The material after `action`; `current` is defined for every action but initialize. */
async function carryOut(
  action: Exclude<TlsAction, { kind: 'keep' }>,
  current: TlsMaterial | undefined,
  names: ServingNames,
  policy: RotationPolicy,
  caName: string,
): Promise<TlsMaterial> {
  if (action.kind === 'initialize' || current === undefined) {
    const ca = await newCa(policy, caName);
    return { ca, serving: await newServing(ca, names, policy) };
  }
  switch (action.kind) {
    case 'stage-next-ca':
      return { ...current, nextCa: { ...(await newCa(policy, caName)), since: new Date() } };
    case 'promote-next-ca': {
      const next = current.nextCa ?? (await newCa(policy, caName));
      const ca = { certPem: next.certPem, keyPem: next.keyPem };
      return { ca, previousCaPem: current.ca.certPem, serving: await newServing(ca, names, policy) };
    }
    case 'reissue-serving':
      return { ...current, serving: await newServing(current.ca, names, policy) };
    case 'drop-previous-ca': {
      const { previousCaPem: _dropped, ...rest } = current;
      return rest;
    }
  }
}

async function writeFileAtomically(path: string, content: string, mode: number): Promise<boolean> {
  const existing = await readFile(path, 'utf8').catch(() => undefined);
  if (existing === content) return false;
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, content, { mode });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return true;
}

/** Loggable: our errors say what failed; file errors their code and path; others only their class. */
function reason(error: unknown): string {
  if (isSmkError(error)) return error.message;
  const errno = error as NodeJS.ErrnoException;
  if (typeof errno?.code === 'string')
    return `${errno.code} ${errno.syscall ?? ''} ${errno.path ?? ''}`.trim();
  return describeError(error);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startWebhookTls(options: WebhookTlsOptions): Promise<WebhookTls> {
  const policy: RotationPolicy = { ...defaultRotationPolicy, ...options.policy };
  if (policy.caValidityMs <= 0 || policy.servingValidityMs <= 0 || policy.caOverlapMs < 0) {
    throw new InvalidInputError('webhook TLS: validity periods must be positive', { field: 'policy' });
  }
  const log = options.log;
  const http = createKubeHttp(options.kubeConfig);
  const secretsPath = resourcePath('v1', 'secrets', options.namespace);
  const secretPath = resourcePath('v1', 'secrets', options.namespace, { name: options.secretName });
  const configurationPath = (kind: 'mutating' | 'validating', name: string): string =>
    resourcePath('admissionregistration.k8s.io/v1', `${kind}webhookconfigurations`, undefined, { name });
  const secretWhat = `Secret ${options.namespace}/${options.secretName}`;
  const caName = `smk-webhook-ca ${options.namespace}/${options.serviceName}`;
  const mutating = options.webhookConfigurations.mutating ?? [];
  const validating = options.webhookConfigurations.validating ?? [];
  let bundle = '';

  async function readSecret(): Promise<StoredSecret> {
    let secret: V1Secret;
    try {
      secret = await http.send<V1Secret>({ method: 'GET', path: secretPath });
    } catch (error) {
      if (apiStatus(error) === 404) return undefined;
      throw kubeError(error, secretWhat);
    }
    return { secret, material: readMaterial(secret.data, secret.metadata?.annotations) };
  }

  /** Writes the material; false when another replica changed the Secret first. */
  async function storeMaterial(stored: StoredSecret, material: TlsMaterial): Promise<boolean> {
    const { data, annotations } = writeMaterial(material);
    try {
      if (stored === undefined) {
        await http.send({
          method: 'POST',
          path: secretsPath,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'Opaque',
            metadata: {
              name: options.secretName,
              namespace: options.namespace,
              labels: { 'app.kubernetes.io/managed-by': 'smk', 'app.kubernetes.io/component': 'webhook-tls' },
              annotations,
            },
            data,
          },
        });
      } else {
        const metadata = stored.secret.metadata ?? {};
        const kept = Object.entries(metadata.annotations ?? {}).filter(
          ([key]) => !key.startsWith('smk.dev/ca-'),
        );
        await http.send({
          method: 'PUT',
          path: secretPath,
          body: {
            ...stored.secret,
            // resourceVersion makes this a compare-and-swap: a replica that read older data gets 409.
            metadata: { ...metadata, annotations: { ...Object.fromEntries(kept), ...annotations } },
            data,
          },
        });
      }
      return true;
    } catch (error) {
      if (apiStatus(error) === 409) return false;
      throw kubeError(error, secretWhat);
    }
  }

  /** Reads and, where the plan says so, rotates until the Secret holds material to keep. */
  async function converge(names: ServingNames): Promise<TlsMaterial> {
    for (let round = 0; round < 8; round += 1) {
      const stored = await readSecret();
      const material = stored?.material;
      const action = planTls(material ? materialFacts(material) : undefined, names, Date.now(), policy);
      if (action.kind === 'keep' && material) return material;
      if (action.kind === 'keep') continue;
      const next = await carryOut(action, material, names, policy, caName);
      if (await storeMaterial(stored, next)) {
        rotations.inc({ action: action.kind });
        log.info(
          {
            secret: secretWhat,
            action: action.kind,
            ...('reason' in action ? { reason: action.reason } : {}),
          },
          'webhook TLS material updated',
        );
      } else {
        log.debug(
          { secret: secretWhat },
          'another replica updated the TLS Secret first; taking its material',
        );
      }
    }
    throw new TransientError(`${secretWhat}: TLS material did not settle (replicas disagree?)`, {
      subject: secretWhat,
    });
  }

  async function readConfigurations(): Promise<{
    clientConfigs: AdmissionregistrationV1WebhookClientConfig[];
    patch: (bundleBase64: string) => Promise<number>;
  }> {
    const configs = [
      ...(await Promise.all(
        mutating.map(async (name) => {
          try {
            return {
              kind: 'mutating' as const,
              name,
              object: await http.send<V1MutatingWebhookConfiguration>({
                method: 'GET',
                path: configurationPath('mutating', name),
              }),
            };
          } catch (error) {
            throw kubeError(error, `MutatingWebhookConfiguration ${name}`);
          }
        }),
      )),
      ...(await Promise.all(
        validating.map(async (name) => {
          try {
            return {
              kind: 'validating' as const,
              name,
              object: await http.send<V1ValidatingWebhookConfiguration>({
                method: 'GET',
                path: configurationPath('validating', name),
              }),
            };
          } catch (error) {
            throw kubeError(error, `ValidatingWebhookConfiguration ${name}`);
          }
        }),
      )),
    ];
    const clientConfigs = configs.flatMap((config) =>
      (config.object.webhooks ?? []).map((webhook) => webhook.clientConfig),
    );
    async function patch(bundleBase64: string): Promise<number> {
      let patched = 0;
      for (const config of configs) {
        const stale = (config.object.webhooks ?? []).filter(
          (webhook) => webhook.clientConfig.caBundle !== bundleBase64,
        );
        if (stale.length === 0) continue;
        // Strategic merge by webhook name: only caBundle changes; Helm's fields stay Helm's.
        const body = {
          webhooks: stale.map((webhook) => ({
            name: webhook.name,
            clientConfig: { caBundle: bundleBase64 },
          })),
        };
        const what = `${config.kind === 'mutating' ? 'Mutating' : 'Validating'}WebhookConfiguration ${config.name}`;
        try {
          await http.send({
            method: 'PATCH',
            path: configurationPath(config.kind, config.name),
            contentType: 'application/strategic-merge-patch+json',
            body,
          });
        } catch (error) {
          throw kubeError(error, what);
        }
        patched += stale.length;
        log.info({ configuration: what, webhooks: stale.map((webhook) => webhook.name) }, 'caBundle patched');
      }
      return patched;
    }
    return { clientConfigs, patch };
  }

  async function check(): Promise<void> {
    const configurations = await readConfigurations();
    const names = servingNames(options, urlHosts(configurations.clientConfigs));
    const material = await converge(names);
    const nextBundle = caBundle(material, Date.now());
    // The bundle goes out before the files: a new serving certificate is only served once trusted.
    await configurations.patch(Buffer.from(nextBundle).toString('base64'));
    bundle = nextBundle;
    const keyChanged = await writeFileAtomically(options.keyFile, material.serving.keyPem, 0o600);
    const certChanged = await writeFileAtomically(options.certFile, material.serving.certPem, 0o644);
    const facts = materialFacts(material);
    expiry.set({ certificate: 'serving' }, facts.serving.notAfter / 1000);
    expiry.set({ certificate: 'ca' }, facts.ca.notAfter / 1000);
    if (keyChanged || certChanged) {
      log.info(
        { certFile: options.certFile, notAfter: new Date(facts.serving.notAfter).toISOString() },
        'serving certificate written',
      );
      options.onFilesChanged?.();
    }
  }

  const deadline = Date.now() + (options.startupTimeoutMs ?? 60_000);
  for (let wait = 500; ; wait = Math.min(wait * 2, 5_000)) {
    try {
      await check();
      break;
    } catch (error) {
      // A throttled or overloaded API server's Retry-After is a floor under the backoff.
      const pause = Math.max(wait, retryAfterMsOf(error) ?? 0);
      if (Date.now() + pause > deadline) throw error;
      log.warn({ err: reason(error), retryInMs: pause }, 'webhook TLS not ready yet; retrying');
      await delay(pause);
    }
  }

  const interval = options.checkIntervalMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(
      () => {
        check()
          .catch((error: unknown) => {
            checkFailures.inc();
            log.warn({ err: reason(error) }, 'webhook TLS check failed; keeping the current certificate');
          })
          .finally(schedule);
      },
      interval * (0.9 + Math.random() * 0.2),
    );
    timer.unref();
  }
  schedule();

  return {
    get caBundlePem() {
      return bundle;
    },
    check,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
