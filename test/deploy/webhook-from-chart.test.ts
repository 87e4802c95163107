/**
 * The webhook run from the rendered chart against the test bed: the chart's ServiceAccount, RBAC,
 * empty TLS Secret and MutatingWebhookConfiguration are applied for real; `smk webhook` runs as
 * local processes (one per rendered replica) with the rendered Deployment's args and env, as the
 * rendered ServiceAccount. The one change to the configuration: clientConfig.service becomes a url
 * (the bed's Services have no routable endpoints); everything else — rules, matchConditions,
 * selectors, failurePolicy, timeouts — is the rendered object. Running locally also needs the
 * args' file paths moved to a temp dir, the port made free and the host 127.0.0.1.
 * Then: the webhook bootstraps its TLS with only the chart's rights, the seed 002 Deployment's pod is
 * injected, a pod that did not ask is never sent, and with the webhook down an annotated pod is
 * refused while other pods (and the release namespace) are not blocked.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../harness/ports.ts';
import { eventually } from '../harness/wait.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { renderKubeConfig } from '../testbed/kubeconfig.ts';
import { find, helm, objectName, type RenderedObject, renderChart, serverSideApply } from './helm.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const seedDeployment = new URL('../../src/webhook/fixtures/seed-002-deployment.in.yaml', import.meta.url);
const seedArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:database-password-hlRvvF';
const agentEndpoint = 'http://aws.smk.test:4566';

interface Container {
  name: string;
  args: string[];
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
}

/** GET over HTTPS trusting only `caPem` (as the API server does), or undefined while refused. */
function httpsGet(
  port: number,
  path: string,
  caPem: string,
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const request = get({ host: '127.0.0.1', port, path, ca: caPem }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', () => resolve(undefined));
    request.setTimeout(2_000, () => request.destroy());
  });
}

function admittedRequests(metrics: string): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith('smk_webhook_admission_requests_total{'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

describe('the webhook run from the rendered chart on the API server', () => {
  let bed: TestBed;
  let core: CoreV1Api;
  const id = Math.random().toString(36).slice(2, 8);
  const release = `run-${id}`;
  let namespace: string;
  let appNamespace: string;
  let rendered: RenderedObject[];
  let applied: RenderedObject[] = [];
  let configurationName: string;
  const processes: ChildProcess[] = [];
  const ports: number[] = [];
  const dirs: string[] = [];
  let output = '';

  before(
    async () => {
      await helm();
      bed = await connectTestBed();
      core = bed.kubeConfig.makeApiClient(CoreV1Api);
      namespace = await bed.newNamespace('chart-run');
      appNamespace = await bed.newNamespace('chart-app');
      // Scope this test's configuration to its own app namespace (other tests share the bed), through
      // the chart's own value for it.
      await core.patchNamespace(
        { name: appNamespace, body: { metadata: { labels: { 'smk-test.dev/scope': id } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      ({ objects: rendered } = await renderChart({
        release,
        namespace,
        setJson: {
          'webhook.pods.namespaceSelector': { matchLabels: { 'smk-test.dev/scope': id } },
          // A local image and endpoint (docs/image.md): the injected agent must carry both.
          'image.repository': 'smk.local/smk',
          'image.tag': 'dev',
          'image.pullPolicy': 'Never',
          'aws.endpointUrl': agentEndpoint,
        },
      }));
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    for (const child of processes) if (child.exitCode === null) child.kill('SIGKILL');
    const client = bed ? KubernetesObjectApi.makeApiClient(bed.kubeConfig) : undefined;
    for (const object of applied)
      if (!object.metadata.namespace) await client?.delete(object).catch(() => undefined);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    await bed?.stop();
  });

  test('the chart’s webhook objects apply for real; the configuration differs only in clientConfig', async () => {
    const deployment = find(rendered, 'Deployment', `${release}-smk-webhook`);
    configurationName = find(rendered, 'MutatingWebhookConfiguration').metadata.name;
    const webhookObjects = rendered.filter(
      (object) =>
        (object.metadata.labels as Record<string, string> | undefined)?.['app.kubernetes.io/component'] ===
          'webhook' && object !== deployment,
    );
    assert.deepEqual(webhookObjects.map((object) => object.kind).sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'MutatingWebhookConfiguration',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Secret',
      'Service',
      'ServiceAccount',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]);
    const replicas = (deployment.spec as { replicas: number }).replicas;
    for (let i = 0; i < replicas; i += 1) ports.push(await freePort());
    applied = webhookObjects.map((object) => {
      if (object.kind !== 'MutatingWebhookConfiguration') return object;
      const copy = structuredClone(object);
      for (const webhook of copy.webhooks as Array<{
        clientConfig: { service?: { path: string }; url?: string };
      }>) {
        const path = webhook.clientConfig.service?.path;
        assert.ok(path, 'rendered in service mode');
        webhook.clientConfig = { url: `https://127.0.0.1:${ports[0]}${path}` };
      }
      return copy;
    });
    for (const object of applied) {
      await serverSideApply(bed.kubeConfig, object, { dryRun: false, fieldManager: 'helm' }).catch(
        (error: unknown) => {
          throw new Error(
            `${objectName(object)}: ${error instanceof ApiException ? String(error.body) : String(error)}`,
          );
        },
      );
    }
  });

  test('smk webhook with the rendered args, as the rendered ServiceAccount: TLS bootstrapped, caBundle patched', async () => {
    const deployment = find(rendered, 'Deployment', `${release}-smk-webhook`);
    const pod = (
      deployment.spec as { template: { spec: { serviceAccountName: string; containers: Container[] } } }
    ).template.spec;
    const [container] = pod.containers;
    assert.ok(container);
    const tlsMount = container.volumeMounts.find((mount) => mount.name === 'tls')?.mountPath;
    assert.ok(tlsMount);
    const token = await bed.serviceAccountToken(namespace, pod.serviceAccountName);
    const kubeconfigDir = await mkdtemp(join(tmpdir(), 'smk-chart-run-'));
    dirs.push(kubeconfigDir);
    const kubeconfig = join(kubeconfigDir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      renderKubeConfig({
        server: bed.serverUrl,
        caPem: bed.caPem,
        credentials: { name: `system:serviceaccount:${namespace}:${pod.serviceAccountName}`, token },
        namespace,
      }),
    );
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, KUBECONFIG: kubeconfig };
    for (const variable of container.env) {
      if (variable.value !== undefined) env[variable.name] = variable.value;
      else if (variable.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace')
        env[variable.name] = namespace;
      else assert.fail(`unexpected env source for ${variable.name}`);
    }
    for (const port of ports) {
      const dir = await mkdtemp(join(tmpdir(), 'smk-chart-tls-'));
      dirs.push(dir);
      const args = container.args.map((arg) =>
        arg.startsWith('--port=') ? `--port=${port}` : arg.replace(`=${tlsMount}/`, `=${dir}/`),
      );
      const child = spawn(process.execPath, [cli, ...args, '--host=127.0.0.1'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      processes.push(child);
    }

    const admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const caPem = await eventually('the caBundle patched into the rendered configuration', async () => {
      const configuration = await admission.readMutatingWebhookConfiguration({ name: configurationName });
      const bundle = configuration.webhooks?.[0]?.clientConfig.caBundle;
      return bundle ? Buffer.from(bundle, 'base64').toString('utf8') : undefined;
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\n--- webhook output ---\n${output}`);
    });
    for (const port of ports) {
      await eventually(`replica on ${port} ready`, async () =>
        (await httpsGet(port, '/readyz', caPem))?.status === 200 ? true : undefined,
      );
    }
    const secret = await core.readNamespacedSecret({ name: `${release}-smk-webhook-tls`, namespace });
    assert.equal(
      Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64')
        .toString('utf8')
        .trim(),
      caPem.trim(),
    );
    const serving = new X509Certificate(Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64'));
    const service = `${release}-smk-webhook.${namespace}.svc`;
    assert.equal(
      serving.subjectAltName,
      `DNS:${service}, DNS:${service}.cluster.local, IP Address:127.0.0.1`,
    );
    assert.doesNotMatch(output, /BEGIN|PRIVATE KEY/, 'no key material in the logs');
  });

  test('the seed 002 Deployment: its pod is injected by the chart-configured webhook, with the chart’s image, pullPolicy and AWS endpoint', async () => {
    const deployment = parseYaml(await readFile(seedDeployment, 'utf8')) as V1Deployment;
    await core.createNamespacedServiceAccount({
      namespace: appNamespace,
      body: { metadata: { name: deployment.spec?.template.spec?.serviceAccountName ?? 'default' } },
    });
    await bed.kubeConfig
      .makeApiClient(AppsV1Api)
      .createNamespacedDeployment({ namespace: appNamespace, body: deployment });
    const pod = await eventually('the Deployment’s pod', async () => {
      const pods = await core.listNamespacedPod({ namespace: appNamespace, labelSelector: 'run=webserver' });
      return pods.items[0];
    });
    const init = pod.spec?.initContainers?.find((container) => container.name === 'smk-agent-init');
    assert.ok(init, 'init container injected');
    const agentImage = find(rendered, 'Deployment', `${release}-smk-webhook`);
    assert.ok(JSON.stringify(agentImage).includes(`--agent-image=${init.image}`), 'the rendered agent image');
    assert.ok(JSON.stringify(init.env).includes(seedArn));
    assert.equal(init.image, 'smk.local/smk:dev');
    assert.equal(init.imagePullPolicy, 'Never');
    assert.ok(
      init.env?.some((variable) => variable.name === 'AWS_ENDPOINT_URL' && variable.value === agentEndpoint),
    );
  });

  test('a pod that did not ask is never sent to the webhook (matchConditions)', async () => {
    const caPem = Buffer.from(
      (await core.readNamespacedSecret({ name: `${release}-smk-webhook-tls`, namespace })).data?.['ca.crt'] ??
        '',
      'base64',
    ).toString('utf8');
    const count = async (): Promise<number> =>
      (
        await Promise.all(
          ports.map(async (port) => admittedRequests((await httpsGet(port, '/metrics', caPem))?.body ?? '')),
        )
      ).reduce((a, b) => a + b, 0);
    const before = await count();
    await core.createNamespacedPod({
      namespace: appNamespace,
      body: {
        metadata: { name: 'plain' },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    assert.equal(await count(), before, 'the plain pod was admitted without a call to smk');
    await core.createNamespacedPod({
      namespace: appNamespace,
      dryRun: 'All',
      body: {
        metadata: {
          name: 'asks',
          annotations: {
            'secrets.k8s.aws/sidecarInjectorWebhook': 'enabled',
            'secrets.k8s.aws/secret-arn': seedArn,
          },
        },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    // More than once is possible: reinvocationPolicy IfNeeded.
    assert.ok((await count()) > before, 'the pod that asked reached the webhook (so the counter can tell)');
  });

  test('helm upgrade (server-side apply of the same manifest) leaves the patched caBundle alone', async () => {
    const admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const before = await admission.readMutatingWebhookConfiguration({ name: configurationName });
    const configuration = applied.find((object) => object.kind === 'MutatingWebhookConfiguration');
    assert.ok(configuration);
    await serverSideApply(bed.kubeConfig, configuration, { dryRun: false, fieldManager: 'helm' });
    const afterApply = await admission.readMutatingWebhookConfiguration({ name: configurationName });
    assert.ok(before.webhooks?.[0]?.clientConfig.caBundle);
    assert.equal(
      afterApply.webhooks?.[0]?.clientConfig.caBundle,
      before.webhooks?.[0]?.clientConfig.caBundle,
    );
  });

  test('webhook down: an annotated pod is refused (Fail); other pods and the release namespace are not blocked', async () => {
    await Promise.all(
      processes.map(
        (child) =>
          new Promise<void>((resolve) => {
            child.once('exit', (code) => {
              assert.equal(code, 0, 'clean exit on SIGTERM');
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    const annotated = (name: string): V1Pod => ({
      metadata: { name, annotations: { 'smk.dev/inject': 'true', 'smk.dev/objects': '- objectName: db' } },
      spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
    });
    await assert.rejects(
      core.createNamespacedPod({ namespace: appNamespace, body: annotated('refused') }),
      (error: unknown) => {
        assert.ok(error instanceof ApiException);
        const { message } = JSON.parse(String(error.body)) as { message: string };
        assert.match(message, /failed calling webhook "inject\.smk\.dev"/);
        return true;
      },
    );
    await core.createNamespacedPod({
      namespace: appNamespace,
      body: {
        metadata: { name: 'plain-while-down' },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    const own = await core.createNamespacedPod({ namespace, body: annotated('in-release-namespace') });
    assert.equal(own.spec?.initContainers, undefined, 'the release namespace is never sent');
  });
});
