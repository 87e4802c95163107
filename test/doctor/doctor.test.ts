/**
 * `smk doctor` as a process against the test bed and moto, each check both passing and failing:
 * a webhook configuration in service mode (TLS Secret + EndpointSlice) and in url mode (a live TLS
 * server), caBundles that do and do not match, a ServiceAccount with and without its IRSA role and a
 * secret that does and does not exist, a queue that does and does not exist, the CSI provider's
 * socket and a dead one, an unreachable cluster and a user who may not read CRDs.
 * The webhook configurations made here select no object (a label nothing carries), so the API
 * server never calls them for other tests' pods.
 * And the doctor in the cluster, as docs/troubleshooting.md tells it: in-cluster configuration (the
 * ServiceAccount token mounted where a pod has it, in a private mount namespace of the process) as
 * the chart's controller ServiceAccount with the chart's RBAC and admission policies, then with the
 * doc's extra reads.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  KubernetesObjectApi,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { CheckResult } from '../../src/cli/doctor/checks.ts';
import { silentLogger } from '../../src/core/log.ts';
import { type CsiProvider, startCsiProvider } from '../../src/csi/provider.ts';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueServingCertificate,
} from '../../src/webhook/tls/pki.ts';
import { controllerAccess, helm, type RenderedObject, renderChart, serverSideApply } from '../deploy/helm.ts';
import { connectMoto } from '../harness/moto.ts';
import { runCommand } from '../harness/run.ts';
import { installCrds } from '../rotation/harness.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { renderKubeConfig } from '../testbed/kubeconfig.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const moto = connectMoto();
const id = randomBytes(3).toString('hex');
const aws = {
  endpoint: moto.endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
};

let bed: TestBed;
let namespace: string;
let work: string;
let ca: CertificateAuthority;
let server: Server;
let provider: CsiProvider;
const configurations: string[] = [];

async function doctor(
  args: readonly string[],
  kubeconfig = bed.kubeConfigPath,
): Promise<{ code: number; results: CheckResult[]; stderr: string }> {
  const result = await runCommand(process.execPath, [cli, 'doctor', '--json', '--timeout=8s', ...args], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
  });
  let results: CheckResult[] = [];
  try {
    results = JSON.parse(result.stdout) as CheckResult[];
  } catch {
    assert.fail(`smk doctor printed no JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`);
  }
  return { code: result.code, results, stderr: result.stderr };
}

function check(results: readonly CheckResult[], name: string): CheckResult {
  const found = results.find((result) => result.name === name);
  assert.ok(found, `no check named ${name} in ${results.map((result) => result.name).join(', ')}`);
  return found;
}

/** A configuration that selects nothing: the API server never calls it. */
function configuration(name: string, clientConfig: Record<string, unknown>): V1MutatingWebhookConfiguration {
  const never = { matchLabels: { 'smk-doctor-test': `never-${id}` } };
  return {
    metadata: { name },
    webhooks: [
      {
        name: 'inject.smk.dev',
        clientConfig,
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        namespaceSelector: never,
        objectSelector: never,
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        failurePolicy: 'Ignore',
      },
    ],
  };
}

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
  namespace = await bed.newNamespace('doctor');
  work = await mkdtemp(join(tmpdir(), 'smk-doctor-test-'));
  ca = await createCertificateAuthority({ commonName: 'doctor-test-ca', validForDays: 1 });
  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  const admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);

  // Service mode, as the chart renders it: Service + <service>-tls Secret + a ready endpoint.
  const service = `smk-webhook-${id}`;
  const serving = await issueServingCertificate(ca, {
    commonName: `${service}.${namespace}.svc`,
    dnsNames: [`${service}.${namespace}.svc`],
  });
  await core.createNamespacedService({
    namespace,
    body: { metadata: { name: service }, spec: { ports: [{ name: 'https', port: 443, targetPort: 8443 }] } },
  });
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: `${service}-tls` },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': serving.certPem, 'tls.key': serving.keyPem, 'ca.crt': ca.certPem },
    },
  });
  // A Service without a selector: its EndpointSlices are ours to write, as a webhook pod's would be.
  await bed.kubeConfig.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
    namespace,
    body: {
      metadata: { name: `${service}-1`, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      ports: [{ name: 'https', port: 8443 }],
      endpoints: [{ addresses: ['10.0.0.7'], conditions: { ready: true } }],
    },
  });
  const serviceRef = { namespace, name: service, path: '/mutate/pods', port: 443 };
  const caBundle = Buffer.from(ca.certPem).toString('base64');
  const otherCa = await createCertificateAuthority({ commonName: 'not-the-webhook-ca', validForDays: 1 });
  const configs: Array<[string, Record<string, unknown>]> = [
    [`doctor-svc-${id}`, { service: serviceRef, caBundle }],
    [
      `doctor-svc-stale-${id}`,
      { service: serviceRef, caBundle: Buffer.from(otherCa.certPem).toString('base64') },
    ],
    [`doctor-svc-nobundle-${id}`, { service: serviceRef }],
    [`doctor-svc-noendpoints-${id}`, { service: { ...serviceRef, name: `${service}-tls-only` }, caBundle }],
  ];

  // Url mode (how the bed runs webhooks): a live TLS server with a certificate for 127.0.0.1.
  const local = await issueServingCertificate(ca, {
    commonName: 'smk-webhook-local',
    ipAddresses: ['127.0.0.1'],
  });
  server = createServer({ cert: local.certPem, key: local.keyPem }, (request, response) => {
    response.statusCode = request.url === '/healthz' ? 200 : 404;
    response.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/mutate/pods`;
  configs.push([`doctor-url-${id}`, { url, caBundle }]);
  configs.push([
    `doctor-url-stale-${id}`,
    { url, caBundle: Buffer.from(otherCa.certPem).toString('base64') },
  ]);
  configs.push([`doctor-url-down-${id}`, { url: 'https://127.0.0.1:1/mutate/pods', caBundle }]);
  for (const [name, clientConfig] of configs) {
    await admission.createMutatingWebhookConfiguration({ body: configuration(name, clientConfig) });
    configurations.push(name);
  }
  // The "tls-only" Service exists with its Secret but has no endpoints.
  await core.createNamespacedService({
    namespace,
    body: {
      metadata: { name: `${service}-tls-only` },
      spec: { ports: [{ name: 'https', port: 443, targetPort: 8443 }] },
    },
  });
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: `${service}-tls-only-tls` }, stringData: { 'tls.crt': serving.certPem } },
  });

  // Identities, the secret and the queue in moto.
  await core.createNamespacedServiceAccount({
    namespace,
    body: {
      metadata: {
        name: 'web',
        annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/doctor-web' },
      },
    },
  });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'no-role' } } });
  const secrets = new SecretsManagerClient(aws);
  await secrets.send(new CreateSecretCommand({ Name: `doctor/${id}/db`, SecretString: 'doctor-test-value' }));
  secrets.destroy();
  const sqs = new SQSClient(aws);
  await sqs.send(new CreateQueueCommand({ QueueName: `doctor-${id}` }));
  sqs.destroy();

  provider = await startCsiProvider({
    providerVolume: join(work, 'providers'),
    providerName: 'aws',
    kubeConfig: bed.kubeConfig,
    awsEndpoint: moto.endpoint,
    environmentRegion: 'us-east-1',
    logger: silentLogger(),
  });
});

after(async () => {
  const admission = bed?.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  for (const name of configurations)
    await admission?.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
  await provider?.close(1000);
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await bed?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const queueUrl = `https://sqs.us-east-1.amazonaws.com/123456789012/doctor-${id}`;

describe('smk doctor', () => {
  it('everything in order (service mode): every check passes, exit 0', async () => {
    const { code, results } = await doctor([
      `--webhook-config=doctor-svc-${id}`,
      `--service-account=${namespace}/web`,
      `--secret=doctor/${id}/db`,
      '--region=us-east-1',
      `--queue-url=${queueUrl}`,
      `--csi-socket=${provider.socketPath}`,
    ]);
    for (const result of results) assert.equal(result.status, 'pass', `${result.name}: ${result.detail}`);
    assert.equal(code, 0);
    assert.equal(results.length, 10);
    assert.match(
      check(results, 'caBundle matches the serving certificate').detail,
      new RegExp(`Secret ${namespace}/smk-webhook-${id}-tls: .*signed by CA "doctor-test-ca"`),
    );
    assert.match(check(results, 'webhook service reachable').detail, /has 1 ready endpoint/);
    assert.match(
      check(results, 'role can describe the secret').detail,
      new RegExp(`DescribeSecret doctor/${id}/db in us-east-1 → 1 version`),
    );
    assert.match(check(results, 'CSI provider socket answers Version').detail, /smk-csi-provider/);
    assert.doesNotMatch(JSON.stringify(results), /doctor-test-value/, 'no secret value in the output');
  });

  it('url mode: the live handshake is checked against the caBundle, then /healthz', async () => {
    const { code, results } = await doctor([`--webhook-config=doctor-url-${id}`]);
    assert.equal(code, 0, JSON.stringify(results, null, 2));
    assert.match(
      check(results, 'caBundle matches the serving certificate').detail,
      /names 127\.0\.0\.1\) is signed by CA "doctor-test-ca"/,
    );
    assert.match(check(results, 'webhook service reachable').detail, /\/healthz → 200/);
    for (const name of [
      'ServiceAccount IAM role',
      'role can describe the secret',
      'rotation queue reachable',
      'CSI provider socket answers Version',
    ]) {
      assert.equal(check(results, name).status, 'skip', name);
    }
  });

  it('a stale caBundle fails in both modes, with a hint', async () => {
    for (const name of [`doctor-svc-stale-${id}`, `doctor-url-stale-${id}`]) {
      const { code, results } = await doctor([`--webhook-config=${name}`]);
      const tls = check(results, 'caBundle matches the serving certificate');
      assert.equal(tls.status, 'fail', name);
      assert.match(tls.detail, /is not signed by any of the 1 CA certificate\(s\) in the caBundle/);
      assert.ok(tls.hint);
      assert.equal(code, 1);
    }
  });

  it('no caBundle, no endpoints, nothing listening, no such configuration: each fails with a hint', async () => {
    const missingBundle = check(
      (await doctor([`--webhook-config=doctor-svc-nobundle-${id}`])).results,
      'caBundle matches the serving certificate',
    );
    assert.equal(missingBundle.status, 'fail');
    assert.match(missingBundle.detail, /inject\.smk\.dev without a caBundle/);

    const noEndpoints = check(
      (await doctor([`--webhook-config=doctor-svc-noendpoints-${id}`])).results,
      'webhook service reachable',
    );
    assert.equal(noEndpoints.status, 'fail');
    assert.match(noEndpoints.detail, /has no ready endpoints/);
    assert.match(noEndpoints.hint ?? '', /failurePolicy Fail/);

    const down = check(
      (await doctor([`--webhook-config=doctor-url-down-${id}`])).results,
      'caBundle matches the serving certificate',
    );
    assert.equal(down.status, 'fail');
    assert.match(down.hint ?? '', /nothing answers TLS/);

    const absent = await doctor([`--webhook-config=doctor-absent-${id}`]);
    assert.equal(check(absent.results, 'webhook configuration present').status, 'fail');
    assert.equal(check(absent.results, 'caBundle matches the serving certificate').status, 'skip');
    assert.equal(absent.code, 1);
  });

  it('a ServiceAccount without a role, a secret that does not exist, a queue that does not exist, a dead socket', async () => {
    const { code, results } = await doctor([
      `--webhook-config=doctor-url-${id}`,
      `--service-account=${namespace}/no-role`,
      `--secret=doctor/${id}/db`,
      `--queue-url=https://sqs.us-east-1.amazonaws.com/123456789012/doctor-missing-${id}`,
      `--csi-socket=${join(work, 'nothing.sock')}`,
    ]);
    assert.equal(code, 1);
    const role = check(results, 'ServiceAccount IAM role');
    assert.equal(role.status, 'fail');
    assert.match(role.detail, /has no eks\.amazonaws\.com\/role-arn annotation/);
    assert.match(
      role.hint ?? '',
      /kubectl -n .* annotate serviceaccount no-role eks\.amazonaws\.com\/role-arn=/,
    );
    assert.equal(check(results, 'role can describe the secret').status, 'skip');
    const queue = check(results, 'rotation queue reachable');
    assert.equal(queue.status, 'fail');
    assert.match(queue.hint ?? '', /deploy\/aws\/rotation\.yaml creates it/);
    const socket = check(results, 'CSI provider socket answers Version');
    assert.equal(socket.status, 'fail');
    assert.match(socket.hint ?? '', /smk csi-provider running on this node/);

    const missing = check(
      (
        await doctor([
          `--webhook-config=doctor-url-${id}`,
          `--service-account=${namespace}/web`,
          `--secret=doctor/${id}/absent`,
          '--region=us-east-1',
        ])
      ).results,
      'role can describe the secret',
    );
    assert.equal(missing.status, 'fail');
    assert.match(missing.detail, /not found/);
    assert.match(missing.hint ?? '', new RegExp(`no secret doctor/${id}/absent in us-east-1`));
  });

  it('an unreachable cluster fails first and skips what needs it; a user who may not read CRDs is told so', async () => {
    const unreachable = join(work, 'unreachable.kubeconfig');
    await writeFile(
      unreachable,
      renderKubeConfig({
        server: 'https://127.0.0.1:1',
        caPem: bed.caPem,
        credentials: { name: 'nobody', token: 'x' },
      }),
    );
    const down = await doctor([], unreachable);
    assert.equal(down.code, 1);
    assert.equal(check(down.results, 'cluster reachable').status, 'fail');
    assert.match(check(down.results, 'cluster reachable').hint ?? '', /KUBECONFIG/);
    assert.equal(check(down.results, 'CRDs installed').status, 'skip');
    assert.equal(check(down.results, 'webhook configuration present').status, 'skip');

    const nobody = join(work, 'nobody.kubeconfig');
    await writeFile(nobody, (await bed.kubeConfigFor(`doctor-nobody-${id}`)).exportConfig());
    const forbidden = await doctor([`--webhook-config=doctor-url-${id}`], nobody);
    assert.equal(check(forbidden.results, 'cluster reachable').status, 'pass');
    const crds = check(forbidden.results, 'CRDs installed');
    assert.equal(crds.status, 'fail');
    assert.match(crds.detail, /forbidden \(HTTP 403\)/);
    assert.match(crds.hint ?? '', /get customresourcedefinitions/);
  });

  it('refuses a malformed flag with a clear message', async () => {
    const result = await runCommand(process.execPath, [cli, 'doctor', '--service-account=just-a-name'], {
      env: { ...process.env, KUBECONFIG: bed.kubeConfigPath },
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--service-account: expected NAMESPACE\/NAME/);
  });
});

describe("smk doctor in the cluster (docs/troubleshooting.md), as the chart's controller ServiceAccount", () => {
  const release = `doc-${id}`;
  const clusterObjects: RenderedObject[] = [];
  let smkNamespace: string;
  let account: string;
  let mountDir: string;

  before(
    async () => {
      await helm();
      smkNamespace = await bed.newNamespace('doctor-smk');
      const { objects } = await renderChart({
        release,
        namespace: smkNamespace,
        setJson: { 'webhook.enabled': false },
      });
      // Its RBAC, and the admission policies that hold its TokenRequests to the AWS audiences (they
      // match this release's controller alone, so other tests on the bed are not affected).
      const policies = objects.filter(
        (object) =>
          object.kind.startsWith('ValidatingAdmissionPolicy') &&
          (object.metadata.labels as Record<string, string> | undefined)?.['app.kubernetes.io/component'] ===
            'controller',
      );
      assert.ok(policies.length > 0, 'the chart renders the controller admission policies');
      for (const object of [...controllerAccess(objects), ...policies]) {
        await serverSideApply(bed.kubeConfig, object, { dryRun: false, fieldManager: 'helm' });
        if (!object.metadata.namespace) clusterObjects.push(object);
      }
      const serviceAccount = controllerAccess(objects).find((object) => object.kind === 'ServiceAccount');
      assert.ok(serviceAccount, 'the chart renders the controller ServiceAccount');
      account = serviceAccount.metadata.name;
      // What the kubelet mounts into the controller's pod.
      mountDir = join(work, 'serviceaccount');
      await mkdir(mountDir);
      await writeFile(join(mountDir, 'token'), await bed.serviceAccountToken(smkNamespace, account));
      await writeFile(join(mountDir, 'ca.crt'), bed.caPem);
      await writeFile(join(mountDir, 'namespace'), smkNamespace);
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    const client = KubernetesObjectApi.makeApiClient(bed.kubeConfig);
    for (const object of clusterObjects) await client.delete(object).catch(() => undefined);
  });

  /**
   * The doctor as `kubectl exec deploy/smk-controller -- smk doctor` runs it: no KUBECONFIG, no
   * ~/.kube/config, the token at /var/run/secrets/kubernetes.io/serviceaccount and the API server in
   * KUBERNETES_SERVICE_HOST/PORT. The mount is private to this process (unshare), not the machine's.
   */
  async function doctorInCluster(args: readonly string[]): Promise<{ code: number; results: CheckResult[] }> {
    const home = await mkdtemp(join(work, 'home-'));
    const { KUBECONFIG: _notInAPod, ...env } = process.env;
    const inPod =
      'mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount' +
      ' && mount --bind "$1" /run/secrets/kubernetes.io/serviceaccount && shift && exec "$@"';
    const result = await runCommand(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        inPod,
        'sh',
        mountDir,
        process.execPath,
        cli,
        'doctor',
        '--json',
        '--timeout=8s',
        ...args,
      ],
      {
        env: {
          ...env,
          HOME: home,
          KUBERNETES_SERVICE_HOST: '127.0.0.1',
          KUBERNETES_SERVICE_PORT: new URL(bed.serverUrl).port,
        },
      },
    );
    try {
      return { code: result.code, results: JSON.parse(result.stdout) as CheckResult[] };
    } catch {
      return assert.fail(
        `smk doctor printed no JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`,
      );
    }
  }

  const everything = (): string[] => [
    `--webhook-config=doctor-svc-${id}`,
    `--service-account=${namespace}/web`,
    `--secret=doctor/${id}/db`,
    '--region=us-east-1',
    `--queue-url=${queueUrl}`,
  ];

  it("with the chart's RBAC: identity, role, secret, TLS Secret and queue are checked; the rest is forbidden and says where the reads are", async () => {
    const { code, results } = await doctorInCluster(everything());
    assert.equal(code, 1);
    const cluster = check(results, 'cluster reachable');
    assert.equal(cluster.status, 'pass', cluster.detail);
    assert.match(cluster.detail, new RegExp(`as system:serviceaccount:${smkNamespace}:${account}$`));
    for (const name of [
      'ServiceAccount IAM role',
      'role can describe the secret',
      'rotation queue reachable',
    ]) {
      assert.equal(check(results, name).status, 'pass', `${name}: ${check(results, name).detail}`);
    }
    for (const name of ['CRDs installed', 'webhook configuration present']) {
      const forbidden = check(results, name);
      assert.equal(forbidden.status, 'fail', name);
      assert.match(forbidden.detail, /forbidden \(HTTP 403\)/);
      assert.match(forbidden.hint ?? '', /docs\/troubleshooting\.md: the doctor in the cluster/);
    }
  });

  it('with the read-only ClusterRole of docs/troubleshooting.md bound to it: every check passes', async () => {
    const doc = await readFile(new URL('../../docs/troubleshooting.md', import.meta.url), 'utf8');
    const block =
      /<!-- test\/doctor\/doctor\.test\.ts applies this block[^>]*-->\n```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(block, "docs/troubleshooting.md has the doctor's RBAC block");
    const documents = parseAllDocuments(block).map((document) => document.toJS() as RenderedObject);
    assert.deepEqual(
      documents.map((object) => object.kind),
      ['ClusterRole', 'ClusterRoleBinding'],
    );
    const [role, binding] = documents as [
      RenderedObject,
      RenderedObject & { roleRef: { name: string }; subjects: { name: string; namespace: string }[] },
    ];
    // The doc's names are a release called smk in smk-system; here they are this test's.
    role.metadata.name = `smk-doctor-${id}`;
    binding.metadata.name = `smk-doctor-${id}`;
    binding.roleRef.name = role.metadata.name;
    assert.equal(binding.subjects.length, 1);
    binding.subjects[0] = { ...binding.subjects[0], name: account, namespace: smkNamespace } as {
      name: string;
      namespace: string;
    };
    for (const object of [role, binding]) {
      await serverSideApply(bed.kubeConfig, object, { dryRun: false });
      clusterObjects.push(object);
    }
    const { code, results } = await doctorInCluster(everything());
    for (const result of results) {
      if (result.name === 'CSI provider socket answers Version') assert.equal(result.status, 'skip');
      else assert.equal(result.status, 'pass', `${result.name}: ${result.detail}`);
    }
    assert.equal(code, 0);
  });
});
