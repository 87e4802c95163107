/**
 * The webhook's TLS bootstrap against the real API server: replicas starting together agree on one
 * CA through the shared Secret; every webhook of the named configurations gets the caBundle; a
 * chart-made empty Secret is filled with no more rights than the chart grants; and the API server
 * keeps admitting through serving-certificate and CA rotations (every call must pass TLS: the
 * configuration fails closed).
 */
import assert from 'node:assert/strict';
import { constants, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { silentLogger } from '../../src/core/log.ts';
import { startWebhookTls, type WebhookTls, type WebhookTlsOptions } from '../../src/webhook/tls/bootstrap.ts';
import { freePort } from '../harness/ports.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';

const suffix = (): string => Math.random().toString(36).slice(2, 8);

function certificates(bundlePem: string): X509Certificate[] {
  return bundlePem
    .split(/(?<=-----END CERTIFICATE-----\n?)/)
    .filter((pem) => pem.includes('BEGIN CERTIFICATE'))
    .map((pem) => new X509Certificate(pem));
}

/** The serving certificate verifies against one of the bundle's CAs, as the API server checks it. */
function trusted(servingPem: string, bundlePem: string): boolean {
  const serving = new X509Certificate(servingPem);
  return certificates(bundlePem).some((ca) => serving.checkIssued(ca) && serving.verify(ca.publicKey));
}

/**
 * An admission endpoint that makes the API server verify our certificate on every call: each
 * response closes the connection and TLS session tickets are off, so no call rides on an earlier
 * handshake (the real server keeps connections alive; the chart test runs that one). Reloads the
 * files like the real server.
 */
async function startHandshakeServer(
  certFile: string,
  keyFile: string,
  port: number,
): Promise<{ reload(): Promise<void>; close(): Promise<void>; handshakes(): number }> {
  const secureOptions = constants.SSL_OP_NO_TICKET;
  const read = async () => ({ cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') });
  let handshakes = 0;
  const server = createHttpsServer({ ...(await read()), secureOptions }, (request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on('end', () => {
      const uid = (JSON.parse(body) as { request: { uid: string } }).request.uid;
      response.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      response.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid, allowed: true },
        }),
      );
    });
  });
  server.on('secureConnection', () => {
    handshakes += 1;
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    async reload() {
      server.setSecureContext({ ...(await read()), secureOptions });
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    handshakes: () => handshakes,
  };
}

function decodeBundle(caBundle: string | undefined): string {
  return Buffer.from(caBundle ?? '', 'base64').toString('utf8');
}

describe('webhook TLS bootstrap on the API server', () => {
  let bed: TestBed;
  let admission: AdmissionregistrationV1Api;
  let core: CoreV1Api;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    bed = await connectTestBed();
    admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    core = bed.kubeConfig.makeApiClient(CoreV1Api);
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await bed?.stop();
  });

  async function createConfigurations(
    namespace: string,
    url: string,
  ): Promise<{ mutating: string; validating: string }> {
    const mutating = `smk-tls-test-${suffix()}`;
    const validating = `smk-tls-test-${suffix()}`;
    const only = { matchLabels: { 'kubernetes.io/metadata.name': namespace } };
    const rules = [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ];
    const webhook = (name: string) => ({
      name,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      timeoutSeconds: 5,
      namespaceSelector: only,
      rules,
    });
    const mutatingBody: V1MutatingWebhookConfiguration = {
      metadata: { name: mutating },
      webhooks: [
        { ...webhook('pods.smk.dev'), clientConfig: { url: `${url}/mutate/pods` } },
        // a service-mode entry: patched too, never called (the Service has no endpoints here)
        {
          ...webhook('other.smk.dev'),
          clientConfig: { service: { namespace, name: 'smk-webhook', path: '/mutate/pods' } },
          objectSelector: { matchLabels: { 'never-set': 'x' } },
        },
      ],
    };
    const validatingBody: V1ValidatingWebhookConfiguration = {
      metadata: { name: validating },
      webhooks: [
        {
          ...webhook('validate.smk.dev'),
          clientConfig: { url: `${url}/never-called` },
          objectSelector: { matchLabels: { 'never-set': 'x' } },
        },
      ],
    };
    await admission.createMutatingWebhookConfiguration({ body: mutatingBody });
    cleanups.push(() => admission.deleteMutatingWebhookConfiguration({ name: mutating }));
    await admission.createValidatingWebhookConfiguration({ body: validatingBody });
    cleanups.push(() => admission.deleteValidatingWebhookConfiguration({ name: validating }));
    return { mutating, validating };
  }

  async function caBundles(names: { mutating: string; validating: string }): Promise<string[]> {
    const m = await admission.readMutatingWebhookConfiguration({ name: names.mutating });
    const v = await admission.readValidatingWebhookConfiguration({ name: names.validating });
    return [...(m.webhooks ?? []), ...(v.webhooks ?? [])].map((w) => decodeBundle(w.clientConfig.caBundle));
  }

  function baseOptions(
    namespace: string,
    names: { mutating: string; validating: string },
    dir: string,
  ): WebhookTlsOptions {
    return {
      kubeConfig: bed.kubeConfig,
      namespace,
      secretName: 'smk-webhook-tls',
      serviceName: 'smk-webhook',
      webhookConfigurations: { mutating: [names.mutating], validating: [names.validating] },
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      log: silentLogger(),
      checkIntervalMs: 60_000,
      startupTimeoutMs: 20_000,
    };
  }

  test('two replicas starting together agree on one CA; every webhook gets the bundle; url hosts join the names', async () => {
    const namespace = await bed.newNamespace('tls-race');
    const names = await createConfigurations(namespace, 'https://127.0.0.1:1');
    const dirs = [await mkdtemp(join(tmpdir(), 'smk-tls-a-')), await mkdtemp(join(tmpdir(), 'smk-tls-b-'))];
    cleanups.push(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));
    const replicas = await Promise.all(
      dirs.map((dir) => startWebhookTls(baseOptions(namespace, names, dir))),
    );
    for (const replica of replicas) replica.stop();

    const [a, b] = await Promise.all(dirs.map((dir) => readFile(join(dir, 'tls.crt'), 'utf8')));
    assert.ok(a && b);
    assert.equal(a, b, 'both replicas serve the same certificate');
    assert.equal(replicas[0]?.caBundlePem, replicas[1]?.caBundlePem);
    const bundle = replicas[0]?.caBundlePem ?? '';
    assert.equal(certificates(bundle).length, 1);
    assert.ok(trusted(a, bundle));

    const serving = new X509Certificate(a);
    assert.equal(
      serving.subjectAltName,
      `DNS:smk-webhook.${namespace}.svc, DNS:smk-webhook.${namespace}.svc.cluster.local, IP Address:127.0.0.1`,
    );
    assert.deepEqual(await caBundles(names), [bundle, bundle, bundle]);

    const secret = await core.readNamespacedSecret({ name: 'smk-webhook-tls', namespace });
    assert.equal(Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64').toString('utf8'), a);
    assert.equal(((await stat(join(dirs[0] ?? '', 'tls.key'))).mode & 0o777).toString(8), '600');
  });

  test('a chart-made empty Secret is filled with only the rights the chart grants (get/update by name)', async () => {
    const namespace = await bed.newNamespace('tls-rbac');
    const names = await createConfigurations(namespace, 'https://127.0.0.1:1');
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'smk-webhook-tls', labels: { chart: 'made' } }, type: 'Opaque' },
    });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'smk-webhook' } } });
    const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    const role = `smk-tls-test-${suffix()}`;
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'smk-webhook-tls' },
        rules: [
          {
            apiGroups: [''],
            resources: ['secrets'],
            resourceNames: ['smk-webhook-tls'],
            verbs: ['get', 'update'],
          },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'smk-webhook-tls' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'smk-webhook-tls' },
        subjects: [{ kind: 'ServiceAccount', name: 'smk-webhook', namespace }],
      },
    });
    await rbac.createClusterRole({
      body: {
        metadata: { name: role },
        rules: [
          {
            apiGroups: ['admissionregistration.k8s.io'],
            resources: ['mutatingwebhookconfigurations'],
            resourceNames: [names.mutating],
            verbs: ['get', 'patch'],
          },
          {
            apiGroups: ['admissionregistration.k8s.io'],
            resources: ['validatingwebhookconfigurations'],
            resourceNames: [names.validating],
            verbs: ['get', 'patch'],
          },
        ],
      },
    });
    cleanups.push(() => rbac.deleteClusterRole({ name: role }));
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: role },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: 'smk-webhook', namespace }],
      },
    });
    cleanups.push(() => rbac.deleteClusterRoleBinding({ name: role }));

    const dir = await mkdtemp(join(tmpdir(), 'smk-tls-sa-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const tls = await startWebhookTls({
      ...baseOptions(namespace, names, dir),
      kubeConfig: await bed.kubeConfigForServiceAccount(namespace, 'smk-webhook'),
    });
    tls.stop();
    const secret = await core.readNamespacedSecret({ name: 'smk-webhook-tls', namespace });
    assert.equal(secret.metadata?.labels?.chart, 'made', 'the chart-made Secret was updated, not replaced');
    assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    assert.ok(trusted(await readFile(join(dir, 'tls.crt'), 'utf8'), tls.caBundlePem));
    assert.deepEqual(await caBundles(names), [tls.caBundlePem, tls.caBundlePem, tls.caBundlePem]);

    // Without the Secret, the same rights cannot create one: a clear error, no partial start.
    await core.deleteNamespacedSecret({ name: 'smk-webhook-tls', namespace });
    await assert.rejects(
      startWebhookTls({
        ...baseOptions(namespace, names, dir),
        kubeConfig: await bed.kubeConfigForServiceAccount(namespace, 'smk-webhook'),
        startupTimeoutMs: 0,
      }),
      (error: Error) =>
        error.name === 'AccessDeniedError' &&
        error.message === `Secret ${namespace}/smk-webhook-tls: forbidden (HTTP 403)`,
    );
  });

  test('the API server keeps admitting through serving-certificate and CA rotations', async () => {
    const namespace = await bed.newNamespace('tls-rotate');
    const dirs = [await mkdtemp(join(tmpdir(), 'smk-tls-r1-')), await mkdtemp(join(tmpdir(), 'smk-tls-r2-'))];
    cleanups.push(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));
    // Two replicas share the Secret; the configuration calls the first one's HTTPS server.
    const port = await freePort();
    const names = await createConfigurations(namespace, `https://127.0.0.1:${port}`);
    const replicas: Array<{ tls: WebhookTls; close: () => Promise<void> }> = [];
    let handshakes = (): number => 0;
    cleanups.push(async () => {
      for (const replica of replicas) {
        replica.tls.stop();
        await replica.close();
      }
    });
    for (const [index, dir] of dirs.entries()) {
      let reload: (() => void) | undefined;
      const tls = await startWebhookTls({
        ...baseOptions(namespace, names, dir),
        policy: { caValidityMs: 15_000, servingValidityMs: 15_000, caOverlapMs: 1_500 },
        checkIntervalMs: 300,
        onFilesChanged: () => reload?.(),
      });
      if (index > 0) {
        replicas.push({ tls, close: async () => undefined });
        continue;
      }
      const server = await startHandshakeServer(join(dir, 'tls.crt'), join(dir, 'tls.key'), port);
      reload = () => void server.reload();
      handshakes = server.handshakes;
      replicas.push({ tls, close: () => server.close() });
    }

    const seenCas = new Set<string>();
    const seenServing = new Set<string>();
    let admitted = 0;
    const failures: string[] = [];
    const until = Date.now() + 26_000;
    while (Date.now() < until) {
      try {
        await core.createNamespacedPod({
          namespace,
          dryRun: 'All',
          body: {
            metadata: { generateName: 'tls-' },
            spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
          },
        });
        admitted += 1;
      } catch (error) {
        failures.push(error instanceof Error ? error.message.slice(0, 200) : String(error));
      }
      const cert = await readFile(join(dirs[0] ?? '', 'tls.crt'), 'utf8');
      seenServing.add(new X509Certificate(cert).serialNumber);
      for (const ca of certificates(replicas[0]?.tls.caBundlePem ?? '')) seenCas.add(ca.serialNumber);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    assert.deepEqual(failures, [], 'every admission call passed TLS');
    assert.ok(admitted > 20, `admitted ${admitted}`);
    assert.ok(
      handshakes() >= admitted,
      `every call was a new TLS handshake (${handshakes()} for ${admitted})`,
    );
    assert.ok(seenCas.size >= 2, `the CA rotated at least once (saw ${seenCas.size})`);
    assert.ok(seenServing.size >= 2, `the serving certificate rotated (saw ${seenServing.size})`);

    // Both replicas end on the same material, and the configuration trusts it.
    await Promise.all(replicas.map((replica) => replica.tls.check()));
    const [first, second] = await Promise.all(dirs.map((dir) => readFile(join(dir, 'tls.crt'), 'utf8')));
    assert.equal(first, second);
    const [bundle] = await caBundles(names);
    assert.ok(trusted(first ?? '', bundle ?? ''));
  });
});
