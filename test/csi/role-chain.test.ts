/**
 * Role chaining in the CSI provider (ASCP's `assumeRoleArn` parameters): the second role is
 * assumed with the mounting pod's own IRSA credentials, never the provider's. moto does not
 * evaluate trust policies (../shared/notes/moto.md #4), so what is proved is the call itself:
 * AssumeRole with the right RoleArn / ExternalId / Tags, signed by the key STS issued to the
 * pod's own role, and reads signed by the chained role's key. moto does keep one backend per
 * account and serves AssumeRole credentials from the role's account, so the secret lives only in
 * the other account: without the chain it is not found.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MountCallError } from '../../src/csi/client.ts';
import { connectMoto } from '../harness/moto.ts';
import { createSecretInOtherAccount, otherAccountRole } from '../harness/other-account.ts';
import { type StsRecorder, startStsRecorder } from './fakes.ts';
import { filesAsText, type ProviderWorld, startProviderWorld, uniqueName } from './harness.ts';

const sharedRole = otherAccountRole;

describe('csi provider: assumeRoleArn (role chaining)', () => {
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
    secret = uniqueName('smk-csi-chain');
    await createSecretInOtherAccount(connectMoto().endpoint, secret, 'chained-value-5c1e');
  });
  after(async () => {
    await world?.close();
    await recorder?.stop();
  });

  it("assumes the role with the pod's own credentials, with external id and tags, once for repeated mounts", async () => {
    const pod = await world.pod();
    const parameters = {
      objects: `- {objectName: ${secret}, objectType: secretsmanager}`,
      assumeRoleArn: sharedRole,
      assumeRoleExternalId: 'shop-7f3a',
      assumeRoleSessionTags: 'team=shop,env=test',
    };
    world.proxy.resetCounts();
    const chainedBefore = recorder.chained.length;
    const response = await world.client.mount(world.request(pod, parameters));
    assert.deepEqual(filesAsText(response.files), { [secret]: 'chained-value-5c1e' });
    await world.client.mount(world.request(pod, parameters));

    const chained = recorder.chained.slice(chainedBefore);
    assert.equal(
      chained.length,
      1,
      'chained credentials are cached per (pod identity, role, external id, tags)',
    );
    const podKeys = recorder.issued.get(pod.roleArn ?? '') ?? [];
    assert.equal(podKeys.length, 1, "the pod's own role was assumed with its token");
    assert.deepEqual(chained[0], {
      roleArn: sharedRole,
      sessionName: `smk.${pod.namespace}.${pod.serviceAccount}`,
      externalId: 'shop-7f3a',
      tags: { env: 'test', team: 'shop' },
      signedBy: podKeys[0],
    });
    assert.notEqual(chained[0]?.signedBy, process.env.AWS_ACCESS_KEY_ID, "never the provider's own key");
    const [chainedKey] = recorder.issued.get(sharedRole)?.slice(-1) ?? [];
    const readers = new Set(
      world.proxy
        .calls()
        .filter((call) => call.service === 'secretsmanager')
        .map((call) => call.accessKeyId),
    );
    assert.deepEqual([...readers], [chainedKey], 'every read is signed by the chained role');
  });

  it('without the chain the pod reads its own account, where the secret is not', async () => {
    const pod = await world.pod();
    const error = await world.client
      .mount(world.request(pod, { objects: `- {objectName: ${secret}, objectType: secretsmanager}` }))
      .then(
        () => assert.fail('should not be found'),
        (failure: unknown) => failure,
      );
    assert.ok(error instanceof MountCallError);
    assert.equal(error.errorCode, 'NotFound', error.details);
  });

  it('another external id is another session: no credentials shared across chains', async () => {
    const pod = await world.pod();
    const base = {
      objects: `- {objectName: ${secret}, objectType: secretsmanager}`,
      assumeRoleArn: sharedRole,
    };
    const chainedBefore = recorder.chained.length;
    await world.client.mount(world.request(pod, { ...base, assumeRoleExternalId: 'one-id' }));
    await world.client.mount(world.request(pod, { ...base, assumeRoleExternalId: 'two-id' }));
    assert.deepEqual(
      recorder.chained.slice(chainedBefore).map((call) => call.externalId),
      ['one-id', 'two-id'],
    );
  });

  it("a pod without a role of its own is refused: the chain never starts from the provider's identity", async () => {
    const pod = await world.pod({ roleArn: null });
    const chainedBefore = recorder.chained.length;
    const error = await world.client
      .mount(
        world.request(pod, {
          objects: `- {objectName: ${secret}, objectType: secretsmanager}`,
          assumeRoleArn: sharedRole,
        }),
      )
      .then(
        () => assert.fail('should be refused'),
        (failure: unknown) => failure,
      );
    assert.ok(error instanceof MountCallError);
    assert.match(error.details, /eks\.amazonaws\.com\/role-arn/);
    assert.equal(recorder.chained.length, chainedBefore, 'no AssumeRole was sent');
  });

  it('a refused AssumeRole names the parameter and the role, and nothing is served', async () => {
    const pod = await world.pod();
    world.proxy.addFault({ api: 'AssumeRole', fault: { kind: 'deny', xml: true } });
    try {
      const error = await world.client
        .mount(
          world.request(pod, {
            objects: `- {objectName: ${secret}, objectType: secretsmanager}`,
            assumeRoleArn: sharedRole,
            assumeRoleExternalId: 'denied-id',
          }),
        )
        .then(
          () => assert.fail('should be refused'),
          (failure: unknown) => failure,
        );
      assert.ok(error instanceof MountCallError);
      assert.equal(error.errorCode, 'AccessDenied', error.details);
      assert.match(
        error.details,
        new RegExp(`assumeRoleArn: AssumeRole ${sharedRole.replace(/[/.]/g, '\\$&')}`),
      );
      assert.doesNotMatch(error.details, /denied-id/);
    } finally {
      world.proxy.clearFaults();
    }
  });
});
