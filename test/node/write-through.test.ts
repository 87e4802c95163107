/**
 * Write-through with real pods: the labelled Secret of examples/write-through is stored in Secrets
 * Manager by smk's webhook (etcd keeps no data); a pod mounting it gets the value in its volume,
 * filled by the injected agent as the pod's own identity; env use of it is refused with a message
 * that says how to consume it instead (by design: docs/write-through.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { applyExample } from '../examples/examples.ts';
import {
  execInPod,
  installSmk,
  type NodeTestWorld,
  nodeTestWorld,
  recordTiming,
  secondsSince,
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

describe('write-through on a real node', () => {
  it('a pod mounting the labelled Secret reads its value; etcd holds none; env use is refused', async () => {
    const namespace = await test.node.bed.newNamespace('write-through');
    await test.core.createNamespacedServiceAccount({
      namespace,
      body: {
        metadata: {
          name: 'payments',
          annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/payments' },
        },
      },
    });
    await applyExample(test.kubeConfig, 'write-through', namespace);
    const stored = await test.core.readNamespacedSecret({ namespace, name: 'payment-api' });
    assert.deepEqual(stored.data ?? {}, {}, 'etcd keeps no data');
    assert.ok(
      stored.metadata?.annotations?.['smk.dev/aws-secret-arn'],
      'the Secret names where its value lives',
    );

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
