/**
 * Write-through with real pods: the labelled Secret of examples/write-through is sealed by smk's
 * webhook and stored in Secrets Manager by smk's controller (etcd never keeps the value); a pod mounting it gets the value in its volume,
 * filled by the injected agent as the pod's own identity; env use of it is refused with a message
 * that says how to consume it instead (by design: docs/write-through.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiException, type V1Secret, Watch } from '@kubernetes/client-node';
import { applyExample } from '../examples/examples.ts';
import {
  createIrsaServiceAccount,
  execInPod,
  installSmk,
  type NodeTestWorld,
  nodeTestWorld,
  recordTiming,
  secondsSince,
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

/** The value examples/write-through/secret.yaml stores. */
const exampleValue = 'example-not-a-real-key';

/** True when `secret` shows the example's value in clear or base64 (without printing either). */
function showsValue(secret: V1Secret): boolean {
  const text = JSON.stringify(secret);
  return text.includes(exampleValue) || text.includes(Buffer.from(exampleValue).toString('base64'));
}

/** Every state of the namespace's Secrets a client could watch, from now on. */
async function watchSecrets(namespace: string): Promise<{ seen: V1Secret[]; stop(): void }> {
  const seen: V1Secret[] = [];
  const list = await test.core.listNamespacedSecret({ namespace });
  const abort = await new Watch(test.kubeConfig).watch(
    `/api/v1/namespaces/${namespace}/secrets`,
    { resourceVersion: list.metadata?.resourceVersion },
    (_phase: string, secret: V1Secret) => {
      seen.push(secret);
    },
    () => undefined,
  );
  return { seen, stop: () => abort.abort() };
}

describe('write-through on a real node', () => {
  it('a pod mounting the labelled Secret reads its value; etcd holds none; env use is refused', async () => {
    const namespace = await test.node.bed.newNamespace('write-through');
    await createIrsaServiceAccount(test, namespace, 'payments', 'arn:aws:iam::123456789012:role/payments');
    const watch = await watchSecrets(namespace);
    try {
      await applyExample(test.kubeConfig, 'write-through', namespace);
      const right = await test.core.readNamespacedSecret({ namespace, name: 'payment-api' });
      assert.deepEqual(right.data ?? {}, {}, 'etcd keeps no data');
      assert.ok(!showsValue(right), 'the Secret read right after the create does not show the value');
      // The controller writes the sealed value to Secrets Manager after the API server stored the
      // Secret, then replaces the sealed copy by where the value lives.
      const stored = await waitFor(
        'the controller to write the Secret through (smk.dev/aws-secret-arn, no smk.dev/sealed)',
        120_000,
        async () => {
          const secret = await test.core.readNamespacedSecret({ namespace, name: 'payment-api' });
          const annotations = secret.metadata?.annotations ?? {};
          return annotations['smk.dev/aws-secret-arn'] && annotations['smk.dev/sealed'] === undefined
            ? secret
            : undefined;
        },
        250,
      );
      assert.deepEqual(stored.data ?? {}, {}, 'etcd keeps no data once written');
      assert.match(
        stored.metadata?.annotations?.['smk.dev/aws-secret-arn'] ?? '',
        /^arn:aws:secretsmanager:/,
      );
      const states = watch.seen.filter((secret) => secret.metadata?.name === 'payment-api');
      assert.ok(states.length > 0, 'the watch saw the Secret');
      for (const state of states) {
        assert.deepEqual(state.data ?? {}, {}, `state ${state.metadata?.resourceVersion} keeps no data`);
        assert.ok(
          !showsValue(state),
          `state ${state.metadata?.resourceVersion} does not show the value (only sealed, or where it lives)`,
        );
      }
    } finally {
      watch.stop();
    }

    const started = performance.now();
    await test.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'reader', labels: { app: 'reader' } },
        spec: {
          serviceAccountName: 'payments',
          containers: [
            {
              name: 'app',
              image: 'busybox:1.28',
              command: ['sh', '-c', 'sleep 3600'],
              volumeMounts: [{ name: 'payment', mountPath: '/etc/payment', readOnly: true }],
            },
          ],
          volumes: [{ name: 'payment', secret: { secretName: 'payment-api' } }],
        },
      },
    });
    await waitForReadyPod(test, namespace, 'app=reader');
    recordTiming('write-through Secret volume (Pod) apply→Ready', secondsSince(started));
    assert.equal(
      await execInPod(test, namespace, 'reader', 'app', ['cat', '/etc/payment/api-key']),
      exampleValue,
    );

    await assert.rejects(
      test.core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: 'env-reader' },
          spec: {
            serviceAccountName: 'payments',
            containers: [
              {
                name: 'app',
                image: 'busybox:1.28',
                command: ['sh', '-c', 'sleep 3600'],
                env: [
                  { name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'payment-api', key: 'api-key' } } },
                ],
              },
            ],
          },
        },
      }),
      (error: unknown) => {
        assert.ok(error instanceof ApiException);
        const body = String(error.body);
        assert.match(body, /payment-api/);
        assert.match(body, /volume|SecretSync/);
        return true;
      },
    );
  });
});
