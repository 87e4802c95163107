/**
 * `smk doctor`'s checks. Each returns a verdict (pass / fail / warn / skip) with one line of detail
 * and, for a failure, a hint saying what to do. Checks never throw: an unexpected error becomes a
 * failure naming the object. Nothing here reads or prints a secret value (DescribeSecret only).
 */
import { get as httpsGet } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type V1MutatingWebhook,
  type V1MutatingWebhookConfiguration,
  VersionApi,
} from '@kubernetes/client-node';
import type { AwsClients } from '../../aws/index.ts';
import { createSecretReader, type Identity, readQueueState, SecretCache } from '../../aws/index.ts';
import { parseArn } from '../../core/arn.ts';
import { isSmkError, NotFoundError } from '../../core/errors.ts';
import { currentStage } from '../../core/source.ts';
import { connectProvider } from '../../csi/client.ts';
import { apiStatus, type KubeConfig } from '../../kube/client.ts';
import { createServiceAccounts, type ServiceAccountRef } from '../../kube/service-accounts.ts';
import { describeCliError, systemErrorReason } from '../errors.ts';
import { verifyServingCertificate } from './certificates.ts';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  readonly hint?: string;
}

export interface DoctorOptions {
  /** MutatingWebhookConfiguration name; default: the one whose webhooks are *.smk.dev. */
  readonly webhookConfig?: string;
  /** The Secret holding the serving certificate (service mode); default `<service>-tls`, as the chart names it. */
  readonly webhookTlsSecret?: string;
  readonly serviceAccount?: ServiceAccountRef;
  /** Secret name or ARN the ServiceAccount's role should be able to describe. */
  readonly secret?: string;
  /** Region of `secret` when it is not an ARN. */
  readonly region?: string;
  readonly queueUrl?: string;
  readonly csiSocket?: string;
}

export interface DoctorDeps {
  /** The cluster to check, or why there is none to talk to (the cluster checks then fail and skip). */
  readonly kubeConfig: KubeConfig | { readonly problem: string };
  readonly clients: AwsClients;
  /** Deadline per check (default 10 s). */
  readonly timeoutMs?: number;
}

export const smkCrds = ['secretsyncs.smk.dev', 'secretsrotationmappings.awssecretsoperator.secretoperator'];
export const secretProviderClassCrd = 'secretproviderclasses.secrets-store.csi.x-k8s.io';

const pass = (name: string, detail: string): CheckResult => ({ name, status: 'pass', detail });
const fail = (name: string, detail: string, hint: string): CheckResult => ({
  name,
  status: 'fail',
  detail,
  hint,
});
const warn = (name: string, detail: string, hint: string): CheckResult => ({
  name,
  status: 'warn',
  detail,
  hint,
});
const skip = (name: string, detail: string): CheckResult => ({ name, status: 'skip', detail });

async function withDeadline<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The checks that talk to the cluster, once there is one. */
type ClusterDeps = DoctorDeps & { readonly kubeConfig: KubeConfig };

/** An API failure in a few words, never the server's body (it may echo request content). */
function apiProblem(error: unknown): string {
  const status = apiStatus(error);
  if (status === 403 || status === 401) return `forbidden (HTTP ${status})`;
  if (status !== undefined) return `HTTP ${status}`;
  if (error instanceof Error && /no answer within/.test(error.message)) return error.message;
  // The server is named beside it; the reason says what happened on the way (refused, unknown host, TLS).
  return systemErrorReason(error) ?? describeCliError(error);
}

function forbiddenHint(verb: string): string {
  return `your credentials may not ${verb}; run doctor as a cluster admin, or grant that read (docs/troubleshooting.md: the doctor in the cluster)`;
}

/** Who the API server takes us for (SelfSubjectReview, open to every user), so a 403 below reads in context. */
async function whoAmI(deps: ClusterDeps, ms: number): Promise<string | undefined> {
  try {
    const review = await withDeadline(
      'SelfSubjectReview',
      ms,
      deps.kubeConfig.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      }),
    );
    return review.status?.userInfo?.username;
  } catch {
    // Older API servers and some proxies do not serve it; the check stands without it.
    return undefined;
  }
}

async function checkCluster(deps: ClusterDeps, ms: number): Promise<CheckResult> {
  const name = 'cluster reachable';
  const server = deps.kubeConfig.getCurrentCluster()?.server ?? '(no server in the kubeconfig)';
  try {
    const version = await withDeadline(name, ms, deps.kubeConfig.makeApiClient(VersionApi).getCode());
    const user = await whoAmI(deps, ms);
    return pass(name, `Kubernetes ${version.gitVersion} at ${server}${user ? `, as ${user}` : ''}`);
  } catch (error) {
    return fail(
      name,
      `${server}: ${apiProblem(error)}`,
      'check KUBECONFIG and the current context (kubectl config current-context; kubectl version)',
    );
  }
}

async function crdEstablished(
  extensions: ApiextensionsV1Api,
  name: string,
): Promise<'established' | 'pending' | 'missing'> {
  try {
    const crd = await extensions.readCustomResourceDefinition({ name });
    const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    return established ? 'established' : 'pending';
  } catch (error) {
    if (apiStatus(error) === 404) return 'missing';
    throw error;
  }
}

async function checkCrds(deps: ClusterDeps, ms: number): Promise<CheckResult[]> {
  const extensions = deps.kubeConfig.makeApiClient(ApiextensionsV1Api);
  const name = 'CRDs installed';
  const results: CheckResult[] = [];
  try {
    const states = await withDeadline(
      name,
      ms,
      Promise.all(smkCrds.map(async (crd) => [crd, await crdEstablished(extensions, crd)] as const)),
    );
    const missing = states.filter(([, state]) => state === 'missing').map(([crd]) => crd);
    const pending = states.filter(([, state]) => state === 'pending').map(([crd]) => crd);
    if (missing.length > 0) {
      results.push(
        fail(
          name,
          `missing: ${missing.join(', ')}`,
          'install them with the chart (crds.install=true, the default) or kubectl apply -f deploy/crds/',
        ),
      );
    } else if (pending.length > 0) {
      results.push(
        fail(
          name,
          `not Established yet: ${pending.join(', ')}`,
          'kubectl get crd NAME -o yaml shows why (conditions)',
        ),
      );
    } else {
      results.push(pass(name, `${smkCrds.join(', ')} (Established)`));
    }
    const spc = await withDeadline(name, ms, crdEstablished(extensions, secretProviderClassCrd));
    results.push(
      spc === 'established'
        ? pass(
            'SecretProviderClass CRD',
            `${secretProviderClassCrd} (the Secrets Store CSI driver is installed)`,
          )
        : warn(
            'SecretProviderClass CRD',
            `${secretProviderClassCrd} ${spc === 'missing' ? 'is not installed' : 'is not Established'}`,
            'only CSI mounts and the SecretProviderClass sync drop-in need it: install the Secrets Store CSI driver',
          ),
    );
  } catch (error) {
    results.push(fail(name, apiProblem(error), forbiddenHint('get customresourcedefinitions')));
  }
  return results;
}

const smkWebhookName = /\.smk\.dev$/;

async function findWebhookConfiguration(
  deps: ClusterDeps,
  options: DoctorOptions,
  ms: number,
): Promise<{ result: CheckResult; configuration?: V1MutatingWebhookConfiguration }> {
  const name = 'webhook configuration present';
  const admission = deps.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  try {
    let configuration: V1MutatingWebhookConfiguration;
    if (options.webhookConfig) {
      configuration = await withDeadline(
        name,
        ms,
        admission.readMutatingWebhookConfiguration({ name: options.webhookConfig }),
      );
    } else {
      const list = await withDeadline(name, ms, admission.listMutatingWebhookConfiguration());
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
  const core = deps.kubeConfig.makeApiClient(CoreV1Api);
  const where = `${service.namespace}/${service.name}`;
  const results: CheckResult[] = [];
  const secretName = options.webhookTlsSecret ?? `${service.name}-tls`;
  const dnsName = `${service.name}.${service.namespace}.svc`;
  try {
    const secret = await withDeadline(
      'TLS Secret',
      ms,
      core.readNamespacedSecret({ namespace: service.namespace, name: secretName }),
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
      core.readNamespacedService({ namespace: service.namespace, name: service.name }),
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
      deps.kubeConfig.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
        namespace: service.namespace,
        labelSelector: `kubernetes.io/service-name=${service.name}`,
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

async function checkWebhook(deps: ClusterDeps, options: DoctorOptions, ms: number): Promise<CheckResult[]> {
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

async function checkIdentity(deps: ClusterDeps, options: DoctorOptions, ms: number): Promise<CheckResult[]> {
  const roleName = 'ServiceAccount IAM role';
  const readName = 'role can describe the secret';
  const ref = options.serviceAccount;
  if (!ref) {
    return [
      skip(roleName, 'give --service-account NAMESPACE/NAME'),
      skip(readName, 'give --service-account NAMESPACE/NAME and --secret NAME|ARN'),
    ];
  }
  const account = `ServiceAccount ${ref.namespace}/${ref.name}`;
  const serviceAccounts = createServiceAccounts(deps.kubeConfig);
  let roleArn: string;
  try {
    roleArn = await withDeadline(roleName, ms, serviceAccounts.roleArn(ref));
  } catch (error) {
    return [
      fail(
        roleName,
        error instanceof NotFoundError ? `${account} not found` : describeCliError(error),
        error instanceof NotFoundError
          ? `kubectl -n ${ref.namespace} create serviceaccount ${ref.name}, then annotate it`
          : `kubectl -n ${ref.namespace} annotate serviceaccount ${ref.name} eks.amazonaws.com/role-arn=arn:aws:iam::ACCOUNT:role/ROLE (docs/iam.md); doctor checks IRSA only`,
      ),
      skip(readName, 'no role to assume'),
    ];
  }
  const results = [pass(roleName, `${account} → ${roleArn}`)];
  if (!options.secret) return [...results, skip(readName, 'give --secret NAME|ARN')];
  const arn = parseArn(options.secret);
  const region = arn?.service === 'secretsmanager' && arn.region !== '' ? arn.region : options.region;
  if (!region) {
    return [
      ...results,
      fail(
        readName,
        `no region for ${options.secret}`,
        'give --region REGION or set AWS_REGION, or pass the ARN',
      ),
    ];
  }
  const identity: Identity = {
    kind: 'webIdentity',
    roleArn,
    subject: `${ref.namespace}/${ref.name}`,
    sessionName: `smk-doctor.${ref.namespace}.${ref.name}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64),
    token: async () => (await serviceAccounts.token(ref)).token,
  };
  const reader = createSecretReader(identity, { cache: new SecretCache(), clients: deps.clients });
  try {
    const versions = await withDeadline(
      readName,
      ms * 2,
      reader.describe({ objectType: 'secretsmanager', id: options.secret, region }),
    );
    const current = [...versions.versionsToStages].find(([, stages]) => stages.includes(currentStage))?.[0];
    return [
      ...results,
      pass(
        readName,
        `as ${account}: DescribeSecret ${versions.name} in ${region} → ${versions.versionsToStages.size} version(s), AWSCURRENT ${current ?? 'none'}`,
      ),
    ];
  } catch (error) {
    const kind = isSmkError(error) ? error.kind : undefined;
    const hint =
      kind === 'NotFound'
        ? `no secret ${options.secret} in ${region}: check the name, or pass its ARN (the ARN picks its own region)`
        : kind === 'AccessDenied'
          ? `allow secretsmanager:DescribeSecret and secretsmanager:GetSecretValue on this secret in the role's policy, and let the role's trust policy accept system:serviceaccount:${ref.namespace}:${ref.name} from the cluster's OIDC provider (docs/iam.md)`
          : 'STS or Secrets Manager could not be reached: check the region, AWS_ENDPOINT_URL and the network';
    return [...results, fail(readName, `as ${account} (${roleArn}): ${describeCliError(error)}`, hint)];
  }
}

async function checkQueue(deps: DoctorDeps, options: DoctorOptions, ms: number): Promise<CheckResult> {
  const name = 'rotation queue reachable';
  if (!options.queueUrl) return skip(name, 'give --queue-url URL (the controller’s --rotation-queue-url)');
  const region = /sqs\.([a-z0-9-]+)\.amazonaws/.exec(options.queueUrl)?.[1] ?? options.region;
  if (!region)
    return fail(name, `no region for ${options.queueUrl}`, 'give --region REGION or set AWS_REGION');
  try {
    const state = await withDeadline(
      name,
      ms * 2,
      readQueueState({ kind: 'default' }, deps, options.queueUrl, region),
    );
    return pass(
      name,
      `${options.queueUrl}: ${state.visible} waiting, ${state.inFlight} in flight${state.deadLetterQueueArn ? `, dead letters to ${state.deadLetterQueueArn}` : ', no dead-letter queue'} (as your own AWS credentials)`,
    );
  } catch (error) {
    const kind = isSmkError(error) ? error.kind : undefined;
    return fail(
      name,
      `${options.queueUrl}: ${describeCliError(error)}`,
      kind === 'NotFound'
        ? 'no such queue: deploy/aws/rotation.yaml creates it; pass its QueueUrl output'
        : kind === 'AccessDenied'
          ? 'your credentials may not sqs:GetQueueAttributes on it (the controller itself needs sqs:ReceiveMessage and sqs:DeleteMessage)'
          : 'SQS could not be reached: check the region and the network',
    );
  }
}

async function checkCsiSocket(options: DoctorOptions, ms: number): Promise<CheckResult> {
  const name = 'CSI provider socket answers Version';
  if (!options.csiSocket)
    return skip(name, 'give --csi-socket PATH (on a node: /var/run/secrets-store-csi-providers/aws.sock)');
  const client = connectProvider(options.csiSocket);
  try {
    const version = await withDeadline(name, ms, client.version());
    return pass(
      name,
      `${options.csiSocket}: ${version.runtime_name} ${version.runtime_version} (protocol ${version.version})`,
    );
  } catch (error) {
    return fail(
      name,
      `${options.csiSocket}: ${error instanceof Error ? error.message : String(error)}`,
      'is smk csi-provider running on this node (the chart’s DaemonSet, csiProvider.enabled=true)? The socket is <providers dir>/<provider name>.sock, where the driver looks',
    );
  } finally {
    client.close();
  }
}

/** Every check, in the order a person would fix things. */
export async function runChecks(options: DoctorOptions, deps: DoctorDeps): Promise<CheckResult[]> {
  const ms = deps.timeoutMs ?? 10_000;
  const results: CheckResult[] = [];
  const { kubeConfig } = deps;
  const cluster =
    'problem' in kubeConfig
      ? fail(
          'cluster reachable',
          kubeConfig.problem,
          'doctor uses KUBECONFIG, else ~/.kube/config, else the pod it runs in',
        )
      : await checkCluster({ ...deps, kubeConfig }, ms);
  results.push(cluster);
  if (cluster.status === 'pass' && !('problem' in kubeConfig)) {
    const clusterDeps = { ...deps, kubeConfig };
    results.push(...(await checkCrds(clusterDeps, ms)));
    results.push(...(await checkWebhook(clusterDeps, options, ms)));
    results.push(...(await checkIdentity(clusterDeps, options, ms)));
  } else {
    for (const name of [
      'CRDs installed',
      'webhook configuration present',
      'caBundle matches the serving certificate',
      'webhook service reachable',
      'ServiceAccount IAM role',
      'role can describe the secret',
    ]) {
      results.push(skip(name, 'cluster not reachable'));
    }
  }
  results.push(await checkQueue(deps, options, ms));
  results.push(await checkCsiSocket(options, ms));
  return results;
}
