/**
 * Injection with real pods: seed 002's Deployment, unchanged, starts because smk's webhook (a pod
 * of the chart) injected the agent (the smk image), which fetched the secret with the pod's own
 * projected token through STS; a pod whose secret cannot be read does not start and says why; the
 * refresh sidecar swaps the file in a running pod and the app container sees the new value.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { applyExample } from '../examples/examples.ts';
import {
  createIrsaServiceAccount,
  execInPod,
  installSmk,
  type NodeTestWorld,
  nodeTestWorld,
  podLog,
  recordTiming,
  secondsSince,
  upsertSecret,
  waitFor,
  waitForReadyPod,
} from './harness.ts';

let test: NodeTestWorld;

before(async () => {
  test = await nodeTestWorld();
  await installSmk(test);
});
after(async () => {
  await test.finish();
});

/** The secret seed 002's annotation names (moto finds an ARN's secret by its last segment). */
const seedSecretName = 'database-password-hlRvvF';

describe('injection on a real node', () => {
  it('seed 002: the Deployment, unchanged, runs and its app prints the secret the injected init container wrote', async () => {
    const namespace = await test.node.bed.newNamespace('seed-002');
    const value = JSON.stringify({ username: 'admin', password: `pw-${randomBytes(6).toString('hex')}` });
    await upsertSecret(test.secretsManager, seedSecretName, value);
    const started = performance.now();
    await applyExample(test.kubeConfig, 'injection-sidecar-injector', namespace);
    const pod = await waitForReadyPod(test, namespace, 'run=webserver');
    recordTiming('seed 002 injection (Deployment) apply→Ready', secondsSince(started));

    const name = pod.metadata?.name ?? '';
    const init = pod.spec?.initContainers?.[0];
    assert.equal(
      init?.image,
      `${test.node.smkImage.repository}:${test.node.smkImage.tag}`,
      'the agent is the smk image',
    );
    assert.deepEqual(init?.command?.slice(-2), ['agent', 'init']);
    // The pod's own identity: the EKS-style web identity env, copied into the agent.
    assert.ok(init?.env?.some((variable) => variable.name === 'AWS_ROLE_ARN'));
    const initState = pod.status?.initContainerStatuses?.[0]?.state?.terminated;
    assert.equal(initState?.exitCode, 0);
    const log = await waitFor('the app to print the secret', 30_000, async () => {
      const text = await podLog(test, namespace, name, 'webserver');
      return text.trim() === '' ? undefined : text;
    });
    assert.equal(log.trim(), value, 'the app printed exactly the secret value');
  });

  it('a pod whose secret cannot be read does not start, and its status says which secret and why', async () => {
    const namespace = await test.node.bed.newNamespace('seed-002-missing');
    const missing = `arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-${randomBytes(3).toString('hex')}`;
    // Seed 002's Deployment with its ARN pointed at a secret that does not exist.
    await applyExample(test.kubeConfig, 'injection-sidecar-injector', namespace);
    await test.apps.patchNamespacedDeployment(
      {
        namespace,
        name: 'webserver',
        body: {
          spec: { template: { metadata: { annotations: { 'secrets.k8s.aws/secret-arn': missing } } } },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const failed = await waitFor('the agent of the new pod to fail', 120_000, async () => {
      const pods = await test.core.listNamespacedPod({ namespace, labelSelector: 'run=webserver' });
      return pods.items.find((pod) => {
        const annotations = pod.metadata?.annotations ?? {};
        const status = pod.status?.initContainerStatuses?.[0];
        const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
        return (
          annotations['secrets.k8s.aws/secret-arn'] === missing &&
          terminated !== undefined &&
          terminated.exitCode !== 0
        );
      });
    });
    const status = failed.status?.initContainerStatuses?.[0];
    const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
    assert.notEqual(terminated?.exitCode, 0);
    assert.match(terminated?.message ?? '', /no-such-secret/, 'the termination message names the secret');
    assert.ok(!(failed.status?.containerStatuses ?? []).some((container) => container.state?.running));
    assert.notEqual(failed.status?.phase, 'Running');
  });

  it('the refresh sidecar puts a new value into the running pod, and the app reads it without a restart', async () => {
    const namespace = await test.node.bed.newNamespace('refresh');
    const secretName = `node-refresh-${randomBytes(4).toString('hex')}`;
    const first = `first-${randomBytes(6).toString('hex')}`;
    const second = `second-${randomBytes(6).toString('hex')}`;
    await upsertSecret(test.secretsManager, secretName, JSON.stringify({ password: first }));
    await createIrsaServiceAccount(test, namespace, 'app', 'arn:aws:iam::123456789012:role/app');
    const started = performance.now();
    await test.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'app' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'refresh' } },
          template: {
            metadata: {
              labels: { app: 'refresh' },
              annotations: {
                'smk.dev/inject': 'true',
                'smk.dev/refresh-interval': '10s',
                'smk.dev/objects': `- objectName: ${secretName}\n  objectType: secretsmanager\n  jmesPath:\n    - path: password\n      objectAlias: password\n`,
              },
            },
            spec: {
              serviceAccountName: 'app',
              containers: [{ name: 'app', image: 'busybox:1.28', command: ['sh', '-c', 'sleep 3600'] }],
            },
          },
        },
      },
    });
    const pod = await waitForReadyPod(test, namespace, 'app=refresh');
    recordTiming('refresh sidecar (Deployment) apply→Ready', secondsSince(started));
    const name = pod.metadata?.name ?? '';
    const read = (): Promise<string> =>
      execInPod(test, namespace, name, 'app', ['cat', '/var/run/secrets/smk/password']);
    assert.equal(await read(), first);

    const put = performance.now();
    await upsertSecret(test.secretsManager, secretName, JSON.stringify({ password: second }));
    await waitFor(
      'the new value in the running app container',
      120_000,
      async () => (await read()) === second,
      1_000,
    );
    recordTiming('refresh sidecar put-secret-value → new file in the app container', secondsSince(put));
    const now = await test.core.readNamespacedPod({ namespace, name });
    assert.equal(now.metadata?.uid, pod.metadata?.uid, 'the same pod');
    assert.equal(now.status?.containerStatuses?.find((status) => status.name === 'app')?.restartCount, 0);
  });
  it('extractKeys, discover and a Liquid template through the injected agent: the app reads the rendered DSN and every discovered secret', async () => {
    const namespace = await test.node.bed.newNamespace('data');
    const suffix = randomBytes(4).toString('hex');
    const settingsName = `node-settings-${suffix}`;
    const prefix = `node-found-${suffix}/`;
    const settings = {
      host: 'db.internal',
      username: 'app',
      password: `p@ss:${randomBytes(4).toString('hex')}`,
    };
    const found = {
      alpha: `a-${randomBytes(4).toString('hex')}`,
      beta: `b-${randomBytes(4).toString('hex')}`,
    };
    await upsertSecret(test.secretsManager, settingsName, JSON.stringify(settings));
    for (const [name, value] of Object.entries(found)) {
      await upsertSecret(test.secretsManager, `${prefix}${name}`, value);
    }
    await createIrsaServiceAccount(test, namespace, 'app', 'arn:aws:iam::123456789012:role/app');
    await test.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'app' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'data' } },
          template: {
            metadata: {
              labels: { app: 'data' },
              annotations: {
                'smk.dev/inject': 'true',
                'smk.dev/objects': [
                  `- objectName: ${settingsName}`,
                  '  objectType: secretsmanager',
                  '  extractKeys: true',
                  '  keyPrefix: db_',
                  '- objectType: secretsmanager',
                  '  discover:',
                  `    namePrefix: ${prefix}`,
                  '    stripPrefix: true',
                  '',
                ].join('\n'),
                'smk.dev/template-dsn':
                  'postgres://{{ db_username }}:{{ db_password | url_encode }}@{{ db_host }}/app',
              },
            },
            spec: {
              serviceAccountName: 'app',
              containers: [{ name: 'app', image: 'busybox:1.28', command: ['sh', '-c', 'sleep 3600'] }],
            },
          },
        },
      },
    });
    const pod = await waitForReadyPod(test, namespace, 'app=data');
    const name = pod.metadata?.name ?? '';
    const read = (file: string): Promise<string> =>
      execInPod(test, namespace, name, 'app', ['cat', `/var/run/secrets/smk/${file}`]);
    assert.equal(
      await read('dsn'),
      `postgres://${settings.username}:${encodeURIComponent(settings.password).replaceAll('%20', '+')}@${settings.host}/app`,
    );
    assert.equal(await read('db_password'), settings.password);
    assert.equal(await read('alpha'), found.alpha);
    assert.equal(await read('beta'), found.beta);
  });
});
