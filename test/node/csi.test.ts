/**
 * CSI with real pods: seed 001's SecretProviderClass and pod, unchanged. The kubelet asks the real
 * Secrets Store CSI driver (a DaemonSet with node-driver-registrar) to mount the volume; the driver
 * calls smk's provider (the chart's DaemonSet) over its socket with the pod's token; the files are
 * in the running container. With the driver's rotation on, a new value reaches the mounted file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { applyExample } from '../examples/examples.ts';
import { connectMoto } from '../harness/moto.ts';
import {
  execInPod,
  installSmk,
  type NodeTestWorld,
  nodeTestWorld,
  recordTiming,
  secondsSince,
  upsertSecret,
  waitFor,
  waitForReadyPod,
} from './harness.ts';

let test: NodeTestWorld;
let euWest1: SecretsManagerClient;

before(async () => {
  test = await nodeTestWorld();
  await installSmk(test);
  // Seed 001's ARNs name eu-west-1; moto keeps each region apart.
  euWest1 = new SecretsManagerClient({
    endpoint: connectMoto().endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
});
after(async () => {
  euWest1.destroy();
  await test.finish();
});

describe('CSI on a real node', () => {
  it('seed 001: the pod starts with dbusername, dbpassword and foobar mounted, and rotation brings a new foobar', async () => {
    const namespace = await test.node.bed.newNamespace('seed-001');
    const suffix = randomBytes(4).toString('hex');
    const username = `user-${suffix}`;
    const password = `pw-${randomBytes(6).toString('hex')}`;
    const whole = `whole-${randomBytes(6).toString('hex')}`;
    // moto finds each ARN's secret by its last segment, the name.
    await upsertSecret(euWest1, 'MySecret-00AACC', JSON.stringify({ user: { username, password } }));
    await upsertSecret(euWest1, 'MySecret2-00AABB', whole);

    const started = performance.now();
    await applyExample(test.kubeConfig, 'csi-ascp', namespace);
    const pod = await waitForReadyPod(test, namespace, '', 180_000);
    recordTiming('seed 001 CSI mount (Pod) apply→Ready', secondsSince(started));
    const name = pod.metadata?.name ?? '';
    assert.equal(name, 'test-secrets');
    const read = (file: string): Promise<string> =>
      execInPod(test, namespace, name, 'busybox', ['cat', `/mnt/secrets-store/${file}`]);
    assert.equal(await read('dbusername'), username);
    assert.equal(await read('dbpassword'), password);
    assert.equal(await read('foobar'), whole);

    const rotated = `rotated-${randomBytes(6).toString('hex')}`;
    const put = performance.now();
    await upsertSecret(euWest1, 'MySecret2-00AABB', rotated);
    await waitFor(
      'the rotated value in the mounted foobar',
      180_000,
      async () => (await read('foobar')) === rotated,
      1_000,
    );
    recordTiming('seed 001 put-secret-value → rotated mounted file', secondsSince(put));
    assert.equal(await read('dbpassword'), password, 'the other files stay');
  });
});
