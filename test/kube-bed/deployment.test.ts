/** The bed's controller manager runs Deployments: ReplicaSets, Pods, rollouts and garbage collection. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AppsV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1ReplicaSet,
} from '@kubernetes/client-node';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { eventually } from './wait.ts';

describe('deployments', () => {
  let bed: TestBed;
  let namespace: string;
  let apps: AppsV1Api;
  let core: CoreV1Api;

  before(async () => {
    bed = await connectTestBed();
    namespace = await bed.newNamespace('deploy');
    apps = bed.kubeConfig.makeApiClient(AppsV1Api);
    core = bed.kubeConfig.makeApiClient(CoreV1Api);
  });

  after(async () => {
    await bed.stop();
  });

  async function replicaSetsOf(deploymentUid: string): Promise<V1ReplicaSet[]> {
    const list = await apps.listNamespacedReplicaSet({ namespace, labelSelector: 'app=web' });
    return list.items.filter((rs) => rs.metadata?.ownerReferences?.some((ref) => ref.uid === deploymentUid));
  }

  async function podsOf(replicaSet: V1ReplicaSet): Promise<V1Pod[]> {
    const list = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
    return list.items.filter((pod) =>
      pod.metadata?.ownerReferences?.some((ref) => ref.uid === replicaSet.metadata?.uid),
    );
  }

  it('yields a ReplicaSet and Pods, a new ReplicaSet when the template changes, and cleans up after delete', async () => {
    const deployment = await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
          },
        },
      },
    });
    const uid = deployment.metadata?.uid ?? '';
    assert.notEqual(uid, '');

    const [first] = await eventually('one ReplicaSet owned by the Deployment', async () => {
      const sets = await replicaSetsOf(uid);
      return sets.length === 1 ? sets : undefined;
    });
    assert.ok(first);
    const pods = await eventually('two Pods owned by the ReplicaSet', async () => {
      const owned = await podsOf(first);
      return owned.length === 2 ? owned : undefined;
    });
    for (const pod of pods) {
      // No kubelet: the Pods stay Pending, as the bed promises.
      assert.equal(pod.status?.phase, 'Pending');
      // The ServiceAccount admission plugin ran: default account and its projected token volume.
      assert.equal(pod.spec?.serviceAccountName, 'default');
      assert.ok(
        pod.spec?.volumes?.some((volume) => volume.name.startsWith('kube-api-access-') && volume.projected),
        `pod ${pod.metadata?.name} has no kube-api-access volume`,
      );
    }

    await apps.patchNamespacedDeployment(
      {
        namespace,
        name: 'web',
        body: { spec: { template: { metadata: { annotations: { 'smk.dev/restartedAt': 'rollout-1' } } } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const sets = await eventually('a second ReplicaSet after the template patch', async () => {
      const owned = await replicaSetsOf(uid);
      return owned.length === 2 ? owned : undefined;
    });
    const rolled = sets.find((rs) => rs.metadata?.uid !== first.metadata?.uid);
    assert.equal(rolled?.spec?.template?.metadata?.annotations?.['smk.dev/restartedAt'], 'rollout-1');
    assert.notEqual(
      rolled?.metadata?.labels?.['pod-template-hash'],
      first.metadata?.labels?.['pod-template-hash'],
    );
    const updated = await eventually('the Deployment to record revision 2', async () => {
      const current = await apps.readNamespacedDeployment({ namespace, name: 'web' });
      return current.metadata?.annotations?.['deployment.kubernetes.io/revision'] === '2'
        ? current
        : undefined;
    });
    assert.equal(updated.metadata?.name, 'web');

    await apps.deleteNamespacedDeployment({ namespace, name: 'web', propagationPolicy: 'Background' });
    await eventually('the garbage collector to delete the ReplicaSets', async () =>
      (await replicaSetsOf(uid)).length === 0 ? true : undefined,
    );
  });
});
