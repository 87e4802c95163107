/**
 * Write-through as the chart deploys it: the rendered webhooks have the shape the builder gives
 * (src/webhook/secrets/configuration.ts), and `smk webhook` and `smk controller` run as processes
 * with the rendered args, as the rendered ServiceAccounts with only the chart's RBAC, write a
 * labelled Secret through to moto (the webhook sealing it with the key the controller keeps in the
 * chart's Secret and publishes in its ConfigMap; the webhook has no AWS credentials at all),
 * and carry out its deletion policy. Local changes:
 * the webhook's own certificate files instead of its self-managed TLS flags, free ports, and
 * clientConfig urls instead of the in-cluster Service.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  ApiException,
  CoreV1Api,
  KubernetesObjectApi,
  type V1MutatingWebhook,
} from '@kubernetes/client-node';
import { writeThroughWebhooks } from '../../src/webhook/secrets/configuration.ts';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import { find, helm, objectName, type RenderedObject, renderChart, serverSideApply } from '../deploy/helm.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { renderKubeConfig } from '../testbed/kubeconfig.ts';
import { eventually, secretBody } from './support.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Container {
  args: string[];
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

const comparable = (webhook: V1MutatingWebhook | Record<string, unknown>) => {
  const {
    clientConfig: _clientConfig,
    namespaceSelector: _namespaceSelector,
    ...rest
  } = JSON.parse(JSON.stringify(webhook)) as Record<string, unknown>;
  const conditions = (rest.matchConditions ?? []) as Array<{ name: string; expression: string }>;
  return {
    ...rest,
    timeoutSeconds: undefined,
    failurePolicy: undefined,
    matchConditions: conditions.map((condition) => ({
      ...condition,
      expression: condition.expression.replace(/\s+/g, ' ').trim(),
    })),
  };
};

describe('write-through from the rendered chart', () => {
  let bed: TestBed;
  let release: string;
  let workloads: string;
  let rendered: RenderedObject[];
  let dir = '';
  const name = `wt-${randomBytes(3).toString('hex')}`;
  const run = randomBytes(4).toString('hex');
  const prefix = `smk-chart-${run}/`;
  const cluster = `chart-${run}`;
  const created: RenderedObject[] = [];
  const children: ChildProcess[] = [];
  const output = { webhook: '', controller: '' };

  before(
    async () => {
      await helm();
      bed = await connectTestBed();
      release = await bed.newNamespace('wt-chart');
      workloads = await bed.newNamespace('wt-chart-apps');
      ({ objects: rendered } = await renderChart({
        release: name,
        namespace: release,
        setJson: {
          'webhook.pods.enabled': false,
          'webhook.writeThrough.enabled': true,
          'webhook.writeThrough.prefix': prefix,
          'webhook.writeThrough.clusterName': cluster,
          'webhook.writeThrough.namespaceSelector': {
            matchLabels: { 'kubernetes.io/metadata.name': workloads },
          },
          'webhook.writeThrough.sweepGrace': '0s',
          'controller.namespaces': [workloads],
          'controller.rotation.enabled': false,
        },
      }));
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    const client = bed ? KubernetesObjectApi.makeApiClient(bed.kubeConfig) : undefined;
    const core = bed?.kubeConfig.makeApiClient(CoreV1Api);
    const left = await core?.listNamespacedSecret({ namespace: workloads }).catch(() => undefined);
    for (const secret of left?.items ?? []) {
      if (!secret.metadata?.finalizers?.length) continue;
      await client
        ?.patch(
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: secret.metadata.name, namespace: workloads, finalizers: [] },
          },
          undefined,
          undefined,
          'test',
          undefined,
          'application/merge-patch+json',
        )
        .catch(() => undefined);
    }
    for (const object of created) await client?.delete(object).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
    await bed?.stop();
  });

  test('the rendered write-through webhooks are the builder’s', () => {
    const configuration = find(rendered, 'MutatingWebhookConfiguration');
    const webhooks = configuration.webhooks as Array<Record<string, unknown>>;
    const built = writeThroughWebhooks({ caBundlePem: 'x', target: { url: 'https://127.0.0.1' } });
    assert.deepEqual(webhooks.map(comparable), built.map(comparable));
    assert.deepEqual(
      webhooks.map((webhook) => [webhook.failurePolicy, webhook.timeoutSeconds]),
      built.map((webhook) => [webhook.failurePolicy, webhook.timeoutSeconds]),
    );
  });

  test('smk webhook and smk controller with the rendered args and RBAC write, commit and delete', async () => {
    const moto = connectMoto();
    const admin = new SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint });
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    const needed = rendered.filter(
      (object) =>
        object.kind === 'CustomResourceDefinition' ||
        (['webhook', 'controller'].includes(
          (object.metadata.labels as Record<string, string> | undefined)?.['app.kubernetes.io/component'] ??
            '',
        ) &&
          [
            'ServiceAccount',
            'ClusterRole',
            'ClusterRoleBinding',
            'Role',
            'RoleBinding',
            'Secret',
            'ConfigMap',
            // The admission policies the API server holds both accounts to.
            'ValidatingAdmissionPolicy',
            'ValidatingAdmissionPolicyBinding',
          ].includes(object.kind)),
    );
    for (const object of needed) {
      await serverSideApply(bed.kubeConfig, object, { dryRun: false, fieldManager: 'helm' }).catch(
        (error: unknown) => {
          throw new Error(
            `${objectName(object)}: ${error instanceof ApiException ? String(error.body) : String(error)}`,
          );
        },
      );
      if (!object.metadata.namespace && object.kind !== 'CustomResourceDefinition') created.push(object);
    }

    dir = await mkdtemp(join(tmpdir(), 'smk-write-through-chart-'));
    const ca = await createCertificateAuthority({
      commonName: 'smk-write-through-chart-ca',
      validForDays: 1,
    });
    const serving = await issueServingCertificate(ca, {
      commonName: 'smk-webhook',
      ipAddresses: ['127.0.0.1'],
    });
    await writeFile(join(dir, 'tls.crt'), serving.certPem);
    await writeFile(join(dir, 'tls.key'), serving.keyPem, { mode: 0o600 });

    const start = async (role: 'webhook' | 'controller', replace: (arg: string) => string | undefined) => {
      const deployment = find(rendered, 'Deployment', `${name}-smk-${role}`);
      const pod = (
        deployment.spec as { template: { spec: { serviceAccountName: string; containers: Container[] } } }
      ).template.spec;
      const [container] = pod.containers;
      assert.ok(container);
      const kubeconfig = join(dir, `${role}.kubeconfig`);
      const token = await bed.serviceAccountToken(release, pod.serviceAccountName);
      await writeFile(
        kubeconfig,
        renderKubeConfig({
          server: bed.serverUrl,
          caPem: bed.caPem,
          credentials: { name: `system:serviceaccount:${release}:${pod.serviceAccountName}`, token },
          namespace: release,
        }),
      );
      // Only the controller gets AWS credentials: the webhook makes no AWS call.
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        KUBECONFIG: kubeconfig,
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_REGION: 'us-east-1',
        ...(role === 'controller' ? { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' } : {}),
      };
      for (const variable of container.env) {
        const field = variable.valueFrom?.fieldRef?.fieldPath;
        if (variable.value !== undefined) env[variable.name] = variable.value;
        else if (field === 'metadata.namespace') env[variable.name] = release;
        else if (field === 'metadata.name') env[variable.name] = `${name}-${role}-0`;
      }
      env.AWS_ENDPOINT_URL = moto.endpoint;
      env.AWS_REGION = 'us-east-1';
      const args = container.args.flatMap((arg) => {
        const swapped = replace(arg);
        return swapped === undefined ? [] : [swapped];
      });
      const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      child.stdout?.on('data', (chunk: Buffer) => {
        output[role] += chunk.toString();
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        output[role] += chunk.toString();
      });
      return { child, args };
    };

    const port = await freePort();
    const webhook = await start('webhook', (arg) => {
      if (arg.startsWith('--tls-cert=')) return `--tls-cert=${join(dir, 'tls.crt')}`;
      if (arg.startsWith('--tls-key=')) return `--tls-key=${join(dir, 'tls.key')}`;
      if (arg.startsWith('--tls-')) return undefined;
      if (arg.startsWith('--port=')) return `--port=${port}`;
      if (arg.startsWith('--shutdown-delay=')) return '--shutdown-delay=0';
      return arg;
    });
    const keyFlag = `--write-through-key=${name}-smk-write-through-key`;
    assert.ok(
      ['--write-through', `--write-through-prefix=${prefix}`, `--cluster-name=${cluster}`, keyFlag].every(
        (flag) => webhook.args.includes(flag),
      ),
      'rendered webhook args',
    );
    const healthPort = await freePort();
    const controller = await start('controller', (arg) =>
      arg.startsWith('--health-port=') ? `--health-port=${healthPort}` : arg,
    );
    assert.ok(
      controller.args.includes('--write-through=true') && controller.args.includes(keyFlag),
      'rendered controller args',
    );

    const configuration = structuredClone(find(rendered, 'MutatingWebhookConfiguration'));
    for (const entry of configuration.webhooks as Array<{ clientConfig: Record<string, unknown> }>) {
      const path = (entry.clientConfig.service as { path: string }).path;
      entry.clientConfig = {
        url: `https://127.0.0.1:${port}${path}`,
        caBundle: Buffer.from(ca.certPem).toString('base64'),
      };
    }
    await serverSideApply(bed.kubeConfig, configuration, { dryRun: false, fieldManager: 'helm' });
    created.push(configuration);

    try {
      await eventually(
        'the webhook process to answer through the API server',
        async () => {
          const probe = await core.createNamespacedSecret({
            namespace: workloads,
            dryRun: 'All',
            body: secretBody('probe', { a: 'b' }),
          });
          return probe.metadata?.annotations?.['smk.dev/keys'] === 'a' ? true : undefined;
        },
        60_000,
      );
      const value = `Chart-${randomBytes(6).toString('hex')}-Xq`;
      await core.createNamespacedSecret({
        namespace: workloads,
        body: secretBody('db', { password: value }),
      });
      const sealed = await core.readNamespacedSecret({ namespace: workloads, name: 'db' });
      assert.equal(sealed.data, undefined);
      assert.ok(!JSON.stringify(sealed).includes(value), 'no value in clear in the stored Secret');
      const stored = await eventually(
        'the controller process to write the value through',
        async () => {
          const secret = await core.readNamespacedSecret({ namespace: workloads, name: 'db' });
          const annotations = secret.metadata?.annotations ?? {};
          return annotations['smk.dev/sealed'] === undefined && annotations['smk.dev/aws-version-id']
            ? secret
            : undefined;
        },
        60_000,
      );
      const arn = stored.metadata?.annotations?.['smk.dev/aws-secret-arn'] ?? '';
      assert.ok(arn.includes(`:secret:${prefix}${workloads}/db-`), arn);
      const current = await admin.send(
        new GetSecretValueCommand({ SecretId: arn, VersionStage: 'AWSCURRENT' }),
      );
      assert.ok(
        current.SecretString === JSON.stringify({ password: value }),
        'the value is in Secrets Manager',
      );
      const tags = (await admin.send(new DescribeSecretCommand({ SecretId: arn }))).Tags ?? [];
      assert.ok(
        tags.some(
          (tag) =>
            tag.Key === 'smk.dev/committed-version' &&
            tag.Value === stored.metadata?.annotations?.['smk.dev/aws-version-id'],
        ),
        'committed',
      );
      await core.deleteNamespacedSecret({ namespace: workloads, name: 'db' });
      await eventually('the Secret to be gone and its secret scheduled for deletion', async () => {
        const gone = await core.readNamespacedSecret({ namespace: workloads, name: 'db' }).then(
          () => false,
          () => true,
        );
        const described = await admin.send(new DescribeSecretCommand({ SecretId: arn }));
        return gone && described.DeletedDate ? true : undefined;
      });
    } catch (error) {
      throw new Error(
        `${String(error)}\n--- webhook ---\n${output.webhook.slice(-3000)}\n--- controller ---\n${output.controller.slice(-3000)}`,
      );
    } finally {
      admin.destroy();
    }
    for (const role of ['webhook', 'controller'] as const) {
      assert.doesNotMatch(output[role], /forbidden|HTTP 403/i, `${role}: no API call was refused`);
    }
    for (const child of children) {
      const code = await new Promise<number | null>((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      });
      assert.equal(code, 0, 'clean exit on SIGTERM');
    }
  });
});
