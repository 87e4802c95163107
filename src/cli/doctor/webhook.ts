/**
 * Doctor's webhook checks: the MutatingWebhookConfiguration is there, its caBundle trusts the
 * certificate the webhook serves (from its TLS Secret in service mode, from a live handshake in
 * url mode), and the webhook answers (ready endpoints, or GET /healthz trusting only the caBundle).
 */
import { get as httpsGet } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import type {
  V1EndpointSliceList,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1MutatingWebhookConfigurationList,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import { apiStatus } from '../../kube/client.ts';
import { resourcePath } from '../../kube/http.ts';
import { verifyServingCertificate } from './certificates.ts';
import {
  apiProblem,
  type CheckResult,
  type ClusterDeps,
  type DoctorOptions,
  fail,
  forbiddenHint,
  pass,
  skip,
  withDeadline,
} from './verdict.ts';

const smkWebhookName = /\.smk\.dev$/;

async function findWebhookConfiguration(
  deps: ClusterDeps,
  options: DoctorOptions,
  ms: number,
): Promise<{ result: CheckResult; configuration?: V1MutatingWebhookConfiguration }> {
  const name = 'webhook configuration present';
  const configurations = resourcePath('admissionregistration.k8s.io/v1', 'mutatingwebhookconfigurations');
  try {
    let configuration: V1MutatingWebhookConfiguration;
    if (options.webhookConfig) {
      configuration = await withDeadline(
        name,
        ms,
        deps.http.send<V1MutatingWebhookConfiguration>({
          method: 'GET',
          path: `${configurations}/${encodeURIComponent(options.webhookConfig)}`,
        }),
      );
    } else {
      const list = await withDeadline(
        name,
        ms,
        deps.http.send<V1MutatingWebhookConfigurationList>({ method: 'GET', path: configurations }),
      );
      const ours = list.items.filter((item) =>
        item.webhooks?.some((webhook) => smkWebhookName.test(webhook.name)),
      );
      if (ours.length !== 1) {
        const names = ours.map((item) => item.metadata?.name).join(', ');
        return {
          result: fail(
            name,
            ours.length === 0
              ? 'no MutatingWebhookConfiguration has a *.smk.dev webhook'
              : `several have *.smk.dev webhooks: ${names}`,
            ours.length === 0
              ? 'install the chart with webhook.enabled=true (the default)'
              : 'name the one to check with --webhook-config NAME',
          ),
        };
      }
      configuration = ours[0] as V1MutatingWebhookConfiguration;
    }
    const webhooks = configuration.webhooks ?? [];
    return {
      configuration,
      result: pass(
        name,
        `${configuration.metadata?.name}: ${webhooks
          .map((webhook) => `${webhook.name} (failurePolicy ${webhook.failurePolicy ?? 'Fail'})`)
          .join(', ')}`,
      ),
    };
  } catch (error) {
    const missing = apiStatus(error) === 404;
    return {
      result: fail(
        name,
        missing ? `MutatingWebhookConfiguration ${options.webhookConfig} not found` : apiProblem(error),
        missing
          ? 'kubectl get mutatingwebhookconfigurations lists them; the chart names it <release>-smk-webhook (or <release>-webhook when the release name contains smk)'
          : forbiddenHint('get mutatingwebhookconfigurations'),
      ),
    };
  }
}

/** The leaf and its issuers as PEM, as the server presented them (verification is ours, below). */
function presentedChain(host: string, port: number, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port,
      rejectUnauthorized: false,
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
    });
    const timer = setTimeout(
      () => socket.destroy(new Error(`TLS handshake with ${host}:${port} timed out`)),
      ms,
    );
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const pems: string[] = [];
      let certificate = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      while (certificate?.raw && !seen.has(certificate.fingerprint256)) {
        seen.add(certificate.fingerprint256);
        const base64 = certificate.raw.toString('base64').replace(/(.{64})/g, '$1\n');
        pems.push(`-----BEGIN CERTIFICATE-----\n${base64.trimEnd()}\n-----END CERTIFICATE-----\n`);
        certificate = certificate.issuerCertificate;
      }
      socket.end();
      resolve(pems.join(''));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function httpsStatus(url: URL, caPem: string, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpsGet(url, { ca: caPem, timeout: ms }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url.href} timed out`)));
    request.on('error', reject);
  });
}

async function checkWebhookUrl(
  webhook: V1MutatingWebhook,
  caPem: string,
  ms: number,
): Promise<CheckResult[]> {
  const url = new URL(webhook.clientConfig.url ?? '');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 443);
  const results: CheckResult[] = [];
  try {
    const chain = await presentedChain(host, port, ms);
    const verdict = verifyServingCertificate(caPem, chain, host);
    results.push(
      verdict.ok
        ? pass('caBundle matches the serving certificate', `${url.host}: ${verdict.detail}`)
        : fail(
            'caBundle matches the serving certificate',
            `${url.host}: ${verdict.detail}`,
            'the API server refuses to call the webhook: with self-managed TLS the webhook re-patches the caBundle within its --tls-check-interval; check its log',
          ),
    );
  } catch (error) {
    results.push(
      fail(
        'caBundle matches the serving certificate',
        `${url.host}: ${error instanceof Error ? error.message : String(error)}`,
        'nothing answers TLS there: is smk webhook running and listening on that address?',
      ),
    );
    return results;
  }
  const health = new URL('/healthz', url);
  try {
    const status = await httpsStatus(health, caPem, ms);
    results.push(
      status === 200
        ? pass('webhook service reachable', `GET ${health.href} → 200 (trusting only the caBundle)`)
        : fail(
            'webhook service reachable',
            `GET ${health.href} → HTTP ${status}`,
            'the webhook answers but is not healthy; check its log',
          ),
    );
  } catch (error) {
    results.push(
      fail(
        'webhook service reachable',
        `GET ${health.href}: ${error instanceof Error ? error.message : String(error)}`,
        'check that smk webhook is running and reachable from the API server',
      ),
    );
  }
  return results;
}

async function checkWebhookService(
  deps: ClusterDeps,
  options: DoctorOptions,
  webhook: V1MutatingWebhook,
  caPem: string,
  ms: number,
): Promise<CheckResult[]> {
  const service = webhook.clientConfig.service;
  if (!service) return [];
  const where = `${service.namespace}/${service.name}`;
  const results: CheckResult[] = [];
  const secretName = options.webhookTlsSecret ?? `${service.name}-tls`;
  const dnsName = `${service.name}.${service.namespace}.svc`;
  try {
    const secret = await withDeadline(
      'TLS Secret',
      ms,
      deps.http.send<V1Secret>({
        method: 'GET',
        path: resourcePath('v1', 'secrets', service.namespace, { name: secretName }),
      }),
    );
    const servingPem = Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
    const verdict = verifyServingCertificate(caPem, servingPem, dnsName);
    results.push(
      verdict.ok
        ? pass(
            'caBundle matches the serving certificate',
            `Secret ${service.namespace}/${secretName}: ${verdict.detail}`,
          )
        : fail(
            'caBundle matches the serving certificate',
            `Secret ${service.namespace}/${secretName}: ${verdict.detail}`,
            servingPem === ''
              ? 'the Secret has no tls.crt yet: the webhook fills it at its first start; is it running?'
              : 'the API server refuses to call the webhook: self-managed TLS re-patches the caBundle within --tls-check-interval (check the webhook log); with cert-manager, check its CA injector',
          ),
    );
  } catch (error) {
    results.push(
      fail(
        'caBundle matches the serving certificate',
        `Secret ${service.namespace}/${secretName}: ${apiStatus(error) === 404 ? 'not found' : apiProblem(error)}`,
        apiStatus(error) === 404
          ? 'name the Secret holding tls.crt with --webhook-tls-secret NAME'
          : forbiddenHint(`get secrets in ${service.namespace}`),
      ),
    );
  }
  try {
    const found = await withDeadline(
      'Service',
      ms,
      deps.http.send<V1Service>({
        method: 'GET',
        path: resourcePath('v1', 'services', service.namespace, { name: service.name }),
      }),
    );
    const port = service.port ?? 443;
    if (!found.spec?.ports?.some((candidate) => candidate.port === port)) {
      results.push(
        fail(
          'webhook service reachable',
          `Service ${where} has no port ${port}`,
          'the configuration and the Service disagree; re-apply the chart',
        ),
      );
      return results;
    }
    const slices = await withDeadline(
      'EndpointSlices',
      ms,
      deps.http.send<V1EndpointSliceList>({
        method: 'GET',
        path: resourcePath('discovery.k8s.io/v1', 'endpointslices', service.namespace),
        query: { labelSelector: `kubernetes.io/service-name=${service.name}` },
      }),
    );
    const ready = slices.items
      .flatMap((slice) => slice.endpoints ?? [])
      .filter((endpoint) => endpoint.conditions?.ready !== false);
    results.push(
      ready.length > 0
        ? pass('webhook service reachable', `Service ${where}:${port} has ${ready.length} ready endpoint(s)`)
        : fail(
            'webhook service reachable',
            `Service ${where}:${port} has no ready endpoints`,
            `no webhook pod is ready: kubectl -n ${service.namespace} get pods -l app.kubernetes.io/component=webhook; until one is, pods that ask for secrets are refused (failurePolicy Fail)`,
          ),
    );
  } catch (error) {
    results.push(
      fail(
        'webhook service reachable',
        `Service ${where}: ${apiStatus(error) === 404 ? 'not found' : apiProblem(error)}`,
        apiStatus(error) === 404
          ? 're-apply the chart: the configuration points at a Service that does not exist'
          : forbiddenHint('get services and endpointslices'),
      ),
    );
  }
  return results;
}

export async function checkWebhook(
  deps: ClusterDeps,
  options: DoctorOptions,
  ms: number,
): Promise<CheckResult[]> {
  const found = await findWebhookConfiguration(deps, options, ms);
  if (!found.configuration) {
    return [
      found.result,
      skip('caBundle matches the serving certificate', 'no webhook configuration'),
      skip('webhook service reachable', 'no webhook configuration'),
    ];
  }
  const webhooks = found.configuration.webhooks ?? [];
  const [first] = webhooks;
  const bundles = new Set(webhooks.map((webhook) => webhook.clientConfig.caBundle ?? ''));
  if (!first || bundles.has('')) {
    return [
      found.result,
      fail(
        'caBundle matches the serving certificate',
        `${found.configuration.metadata?.name}: ${webhooks
          .filter((webhook) => !webhook.clientConfig.caBundle)
          .map((webhook) => webhook.name)
          .join(', ')} without a caBundle`,
        'self-managed TLS patches it at the webhook’s first start: is smk webhook running (check its log)? With cert-manager, is its CA injector running?',
      ),
      skip('webhook service reachable', 'no caBundle to trust'),
    ];
  }
  if (bundles.size > 1) {
    return [
      found.result,
      fail(
        'caBundle matches the serving certificate',
        'the webhooks of the configuration carry different caBundles',
        'the webhook patches every webhook of its configuration; one was edited by hand or by another tool',
      ),
      skip('webhook service reachable', 'caBundles disagree'),
    ];
  }
  const caPem = Buffer.from(first.clientConfig.caBundle ?? '', 'base64').toString('utf8');
  const checks = first.clientConfig.url
    ? await checkWebhookUrl(first, caPem, ms)
    : await checkWebhookService(deps, options, first, caPem, ms);
  return [found.result, ...checks];
}
