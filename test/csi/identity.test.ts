/**
 * Each mount reads as its pod: IRSA assumes the role in the pod's ServiceAccount annotation (read
 * through the API) with the pod's own sts.amazonaws.com token from the driver; Pod Identity sends
 * the pod's pods.eks.amazonaws.com token to the agent. The region falls back to the node label.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { MountCallError } from '../../src/csi/client.ts';
import { type PodIdentityAgent, type StsRecorder, startPodIdentityAgent, startStsRecorder } from './fakes.ts';
import { filesAsText, type ProviderWorld, putSecret, startProviderWorld, uniqueName } from './harness.ts';

describe('csi provider: IRSA', () => {
  let recorder: StsRecorder;
  let world: ProviderWorld;
  let secret: string;

  before(async () => {
    recorder = await startStsRecorder();
    world = await startProviderWorld({
      inFront: (proxyEndpoint) => {
        recorder.target = proxyEndpoint;
        return recorder.endpoint;
      },
    });
    secret = uniqueName('smk-csi-irsa');
    await putSecret('us-east-1', secret, 'irsa-value');
  });
  after(async () => {
    await world?.close();
    await recorder?.stop();
  });

  it("assumes the ServiceAccount's role with the pod's own token, once for repeated mounts", async () => {
    const pod = await world.pod();
    const objects = `- {objectName: ${secret}, objectType: secretsmanager}`;
    const before = recorder.assumed.length;
    const response = await world.client.mount(world.request(pod, { objects }));
    assert.deepEqual(filesAsText(response.files), { [secret]: 'irsa-value' });
    await world.client.mount(world.request(pod, { objects }));
    const assumed = recorder.assumed.slice(before);
    assert.equal(assumed.length, 1, 'credentials are cached per identity');
    assert.deepEqual(assumed[0], {
      roleArn: pod.roleArn,
      sessionName: `smk.${pod.namespace}.${pod.serviceAccount}`,
      token: pod.tokens['sts.amazonaws.com'],
    });
  });

  it('assumes a different role for a ServiceAccount with a different annotation', async () => {
    const first = await world.pod();
    const second = await world.pod();
    assert.notEqual(first.roleArn, second.roleArn);
    const objects = `- {objectName: ${secret}, objectType: secretsmanager}`;
    const before = recorder.assumed.length;
    await world.client.mount(world.request(first, { objects }));
    await world.client.mount(world.request(second, { objects }));
    const roles = recorder.assumed.slice(before).map((call) => call.roleArn);
    assert.deepEqual(roles, [first.roleArn, second.roleArn]);
  });
});

describe('csi provider: Pod Identity', () => {
  let agent: PodIdentityAgent;
  let world: ProviderWorld;

  before(async () => {
    agent = await startPodIdentityAgent('ASIAPODIDENTITYTEST1');
    world = await startProviderWorld({ podIdentityEndpoint: agent.endpoint });
  });
  after(async () => {
    await world?.close();
    await agent?.stop();
  });

  it("reads with the agent's credentials for the pod's pods.eks.amazonaws.com token, no STS call", async () => {
    const pod = await world.pod({ roleArn: null, audiences: ['pods.eks.amazonaws.com'] });
    const token = pod.tokens['pods.eks.amazonaws.com'] ?? '';
    agent.allow(token);
    const secret = uniqueName('smk-csi-podid');
    await putSecret('us-east-1', secret, 'pod-identity-value');
    world.proxy.resetCounts();
    const response = await world.client.mount(
      world.request(pod, {
        objects: `- {objectName: ${secret}, objectType: secretsmanager}`,
        usePodIdentity: 'true',
      }),
    );
    assert.deepEqual(filesAsText(response.files), { [secret]: 'pod-identity-value' });
    assert.deepEqual(agent.tokens, [token]);
    assert.equal(world.proxy.count({ service: 'sts' }), 0);
    assert.deepEqual(Object.keys(world.proxy.countsByAccessKey()), ['ASIAPODIDENTITYTEST1']);
  });

  it('refuses when the agent refuses the token', async () => {
    const pod = await world.pod({ roleArn: null, audiences: ['pods.eks.amazonaws.com'] });
    const error = await world.client
      .mount(
        world.request(pod, {
          objects: '- {objectName: x, objectType: secretsmanager}',
          usePodIdentity: 'True',
        }),
      )
      .then(
        () => assert.fail('should be refused'),
        (failure: unknown) => failure,
      );
    assert.ok(error instanceof MountCallError);
    assert.equal(error.errorCode, 'AccessDenied');
    assert.match(error.details, /Pod Identity credentials: token refused/);
  });
});

describe('csi provider: region', () => {
  let world: ProviderWorld;
  const nodeName = uniqueName('node');

  before(async () => {
    world = await startProviderWorld({ environmentRegion: undefined, nodeName });
  });
  after(async () => {
    await world.bed.kubeConfig
      .makeApiClient(CoreV1Api)
      .deleteNode({ name: nodeName })
      .catch(() => undefined);
    await world?.close();
  });

  it('refuses with a clear message when the node cannot be read', async () => {
    const pod = await world.pod();
    const error = await world.client
      .mount(world.request(pod, { objects: '- {objectName: x, objectType: secretsmanager}' }))
      .then(
        () => assert.fail('should be refused'),
        (failure: unknown) => failure,
      );
    assert.ok(error instanceof MountCallError);
    assert.equal(error.errorCode, 'NotFound', error.details);
    assert.match(error.details, /no AWS region \(set parameters\.region/);
    assert.match(
      error.details,
      new RegExp(`the node's label could not be read: Node ${nodeName}: not found`),
    );
  });

  it('refuses with a clear message when the node has no region label', async () => {
    await world.bed.kubeConfig
      .makeApiClient(CoreV1Api)
      .createNode({ body: { metadata: { name: nodeName, labels: { 'kubernetes.io/os': 'linux' } } } });
    const pod = await world.pod();
    const error = await world.client
      .mount(world.request(pod, { objects: '- {objectName: x, objectType: secretsmanager}' }))
      .then(
        () => assert.fail('should be refused'),
        (failure: unknown) => failure,
      );
    assert.ok(error instanceof MountCallError);
    assert.equal(error.errorCode, 'InvalidInput', error.details);
    assert.match(error.details, /no AWS region: set parameters\.region/);
  });

  it("takes the node's topology.kubernetes.io/region label when the class and the provider name none", async () => {
    await world.bed.kubeConfig.makeApiClient(CoreV1Api).patchNode(
      {
        name: nodeName,
        body: { metadata: { labels: { 'topology.kubernetes.io/region': 'eu-west-1' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const secret = uniqueName('smk-csi-node-region');
    await putSecret('eu-west-1', secret, 'from eu-west-1');
    const pod = await world.pod();
    const response = await world.client.mount(
      world.request(pod, { objects: `- {objectName: ${secret}, objectType: secretsmanager}` }),
    );
    assert.deepEqual(filesAsText(response.files), { [secret]: 'from eu-west-1' });
  });

  it('reads an ARN in its own region without any default region', async () => {
    const bare = await startProviderWorld({ environmentRegion: undefined });
    try {
      const secret = uniqueName('smk-csi-arn-region');
      const { arn } = await putSecret('ap-southeast-2', secret, 'arn-region');
      const pod = await bare.pod();
      const response = await bare.client.mount(
        bare.request(pod, { objects: `- {objectName: "${arn}", objectAlias: a}` }),
      );
      assert.deepEqual(filesAsText(response.files), { a: 'arn-region' });

      const error = await bare.client
        .mount(bare.request(pod, { objects: `- {objectName: ${secret}, objectType: secretsmanager}` }))
        .then(
          () => assert.fail('should be refused'),
          (failure: unknown) => failure,
        );
      assert.ok(error instanceof MountCallError);
      assert.equal(error.errorCode, 'InvalidInput');
      assert.match(
        error.details,
        /no AWS region: set parameters\.region.*AWS_REGION.*topology\.kubernetes\.io\/region/,
      );
    } finally {
      await bare.close();
    }
  });
});
