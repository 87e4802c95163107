/**
 * Sync and rotation with real pods: seed 004's Deployment gets its env from the Secret smk's
 * controller (a pod of the chart) keeps in step with Secrets Manager, and seed 003's mapping rolls
 * the labelled Deployment when the secret changes — the new pods see the new value, not the old.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { applyExample } from '../examples/examples.ts';
import {
  describePods,
  installSmk,
  type NodeTestWorld,
  nodeTestWorld,
  podEnv,
  readyPods,
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

describe('sync and rotation on a real node', () => {
  it('seed 004: every replica sees SECRET_API_KEY from the Secret smk synced', async () => {
    const namespace = await test.node.bed.newNamespace('seed-004');
    const value = `api-key-${randomBytes(6).toString('hex')}`;
    await upsertSecret(test.secretsManager, 'CSI-driver-test-secret', value);
    const started = performance.now();
    await applyExample(test.kubeConfig, 'sync-secretproviderclass', namespace);
    const pods = await waitFor(
      '3 Ready replicas',
      240_000,
      async () => {
        const ready = await readyPods(test, namespace, 'app=nginx');
        return ready.length === 3 ? ready : undefined;
      },
      500,
    ).catch(async (error: unknown) => {
      await waitForReadyPod(test, namespace, 'app=nginx', 1); // fails with the pods' states and events
      throw error;
    });
    recordTiming('seed 004 sync env (Deployment, 3 replicas) apply→Ready', secondsSince(started));
    for (const pod of pods)
      assert.equal(await podEnv(test, namespace, pod, 'nginx', 'SECRET_API_KEY'), value);
  });

  it('seed 003: a new value rolls the labelled Deployment and the new pods see it', async () => {
    const namespace = await test.node.bed.newNamespace('seed-003');
    const secretName = 'eks-controller-test-secret';
    const first = `first-${randomBytes(6).toString('hex')}`;
    const second = `second-${randomBytes(6).toString('hex')}`;
    const { versionId: firstVersion } = await upsertSecret(test.secretsManager, secretName, first);
    const started = performance.now();
    await applyExample(test.kubeConfig, 'rotation-mapping', namespace);
    await waitForReadyPod(test, namespace, 'app=operatortest', 240_000);
    recordTiming('seed 003 first rollout (Deployment) apply→Ready', secondsSince(started));
    // The secret is shared with earlier runs: its first version here may itself be a change the
    // controller rolls for. Rotate only once the Deployment carries that version and has settled.
    const before = await waitFor(
      'the Deployment to settle on the first version',
      240_000,
      async () => {
        const deployment = await test.apps.readNamespacedDeployment({ namespace, name: 'operatortest' });
        const rolled = deployment.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '';
        const settled =
          rolled.includes(firstVersion) &&
          deployment.status?.observedGeneration === deployment.metadata?.generation &&
          deployment.status?.updatedReplicas === 1 &&
          deployment.status?.replicas === 1 &&
          deployment.status?.availableReplicas === 1;
        if (!settled) return undefined;
        const ready = await readyPods(test, namespace, 'app=operatortest');
        return ready.length === 1 ? ready[0] : undefined;
      },
      500,
    );
    assert.equal(await podEnv(test, namespace, before, 'nginx', 'VALUE'), first);

    const rotated = performance.now();
    await upsertSecret(test.secretsManager, secretName, second);
    const after = await waitFor(
      'a new Ready pod of the rolled Deployment',
      240_000,
      async () => {
        const ready = await readyPods(test, namespace, 'app=operatortest');
        return ready.find((pod) => pod.metadata?.uid !== before.metadata?.uid);
      },
      500,
    ).catch(async (error: unknown) => {
      // Say where it stopped: the Deployment's record and rollout state, the pods and the events.
      const deployment = await test.apps.readNamespacedDeployment({ namespace, name: 'operatortest' });
      const state = JSON.stringify({
        annotations: deployment.metadata?.annotations,
        template: deployment.spec?.template?.metadata?.annotations,
        status: deployment.status,
      });
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}
Deployment operatortest: ${state}
${await describePods(test, namespace)}`,
        { cause: error },
      );
    });
    recordTiming('seed 003 put-secret-value → new pod Ready', secondsSince(rotated));
    assert.equal(
      await podEnv(test, namespace, after, 'nginx', 'VALUE'),
      second,
      'the new pod has the new value',
    );
    await waitFor(
      'the old pod to be gone',
      120_000,
      async () => {
        const pods = await test.core.listNamespacedPod({ namespace, labelSelector: 'app=operatortest' });
        return !pods.items.some((pod) => pod.metadata?.uid === before.metadata?.uid);
      },
      500,
    );
  });
});
