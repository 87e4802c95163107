/**
 * One cache for the node: a remount or a second pod of the same ServiceAccount costs no AWS
 * call, but a value is only served to an identity AWS itself let read it within the window.
 * AWS calls are counted (and refused per access key) by a proxy in front of moto; moto does not
 * evaluate resource-scoped policies, so the proxy's refusal stands in for an IAM deny.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MountCallError } from '../../src/csi/client.ts';
import {
  filesAsText,
  type ProviderWorld,
  putSecret,
  putSecretVersion,
  startProviderWorld,
  type TestPod,
  uniqueName,
} from './harness.ts';

const valueReads = ['GetSecretValue', 'BatchGetSecretValue', 'GetParameter', 'GetParameters'];

function reads(world: ProviderWorld, accessKeyId?: string): number {
  return valueReads.reduce(
    (sum, api) => sum + world.proxy.count({ api, ...(accessKeyId ? { accessKeyId } : {}) }),
    0,
  );
}

/** The access key ids that read secret values since the last reset. */
function readerKeys(world: ProviderWorld): Set<string> {
  return new Set(
    world.proxy
      .calls()
      .filter((call) => call.api !== undefined && valueReads.includes(call.api) && call.accessKeyId)
      .map((call) => call.accessKeyId ?? ''),
  );
}

async function refusal(promise: Promise<unknown>): Promise<MountCallError> {
  const error = await promise.then(
    () => assert.fail('the mount should be refused'),
    (failure: unknown) => failure,
  );
  assert.ok(error instanceof MountCallError, String(error));
  return error;
}

describe('csi provider: one cache for the node', () => {
  const windowMs = 1500;
  let world: ProviderWorld;
  let podA: TestPod;
  let names: string[];
  let objects: string;

  before(async () => {
    world = await startProviderWorld({ authorizationWindowMs: windowMs, stageTtlMs: 60_000 });
    podA = await world.pod();
    names = [];
    for (let i = 0; i < 5; i++) {
      const name = uniqueName(`smk-csi-cache-${i}`);
      await putSecret('us-east-1', name, `{"v":"value-${i}"}`);
      names.push(name);
    }
    objects = names
      .map((name, i) => `- {objectName: ${name}, objectType: secretsmanager, objectAlias: s${i}}`)
      .join('\n');
  });
  after(async () => {
    await world?.close();
  });

  it('reads five objects of one mount together, then remounts them with no AWS call', async () => {
    world.proxy.resetCounts();
    const first = await world.client.mount(world.request(podA, { objects }));
    assert.equal(first.files.length, 5);
    assert.equal(world.proxy.count({ api: 'GetSecretValue' }), 0, JSON.stringify(world.proxy.countsByApi()));
    assert.equal(
      world.proxy.count({ api: 'BatchGetSecretValue' }),
      1,
      JSON.stringify(world.proxy.countsByApi()),
    );

    world.proxy.resetCounts();
    const again = await world.client.mount(world.request(podA, { objects }));
    assert.deepEqual(filesAsText(again.files), filesAsText(first.files));
    assert.equal(world.proxy.count(), 0, `remount made calls: ${JSON.stringify(world.proxy.countsByApi())}`);
  });

  it('serves a second pod of the same ServiceAccount from the cache', async () => {
    const sibling: TestPod = { ...podA, name: uniqueName('pod') };
    world.proxy.resetCounts();
    const response = await world.client.mount(world.request(sibling, { objects }));
    assert.equal(response.files.length, 5);
    assert.equal(reads(world), 0, JSON.stringify(world.proxy.countsByApi()));
  });

  it('does not serve a cached value to another identity that AWS refuses', async () => {
    const podB = await world.pod();
    // B's own secret shows which access key B's assumed role signs with.
    const own = uniqueName('smk-csi-own');
    await putSecret('us-east-1', own, 'b-only');
    world.proxy.resetCounts();
    await world.client.mount(
      world.request(podB, { objects: `- {objectName: ${own}, objectType: secretsmanager}` }),
    );
    const keys = readerKeys(world);
    assert.equal(keys.size, 1);
    const [keyB] = [...keys];
    assert.ok(keyB);

    world.proxy.refuseAccessKey(keyB);
    world.proxy.resetCounts();
    const error = await refusal(world.client.mount(world.request(podB, { objects })));
    assert.equal(error.errorCode, 'AccessDenied');
    assert.match(error.details, /objects\[0\]/);
    assert.ok(reads(world, keyB) >= 1, 'B must have asked AWS, not the cache');

    // A, still within its window, keeps being served.
    world.proxy.resetCounts();
    const forA = await world.client.mount(world.request(podA, { objects }));
    assert.equal(forA.files.length, 5);
    assert.equal(reads(world), 0);
  });

  it('asks AWS again once the authorisation window has passed, and honours a refusal then', async () => {
    world.proxy.resetCounts();
    const podC = await world.pod();
    const secret = uniqueName('smk-csi-window');
    await putSecret('us-east-1', secret, 'c-value');
    const one = `- {objectName: ${secret}, objectType: secretsmanager}`;
    await world.client.mount(world.request(podC, { objects: one }));
    const [keyC] = [...readerKeys(world)];
    assert.ok(keyC);

    world.proxy.resetCounts();
    await world.client.mount(world.request(podC, { objects: one }));
    assert.equal(reads(world), 0, 'within the window: served from the cache');

    await sleep(windowMs + 200);
    world.proxy.refuseAccessKey(keyC);
    world.proxy.resetCounts();
    const error = await refusal(world.client.mount(world.request(podC, { objects: one })));
    assert.equal(error.errorCode, 'AccessDenied');
    assert.equal(reads(world, keyC), 1);
    world.proxy.allowAccessKey(keyC);

    world.proxy.resetCounts();
    const back = await world.client.mount(world.request(podC, { objects: one }));
    assert.deepEqual(filesAsText(back.files), { [secret]: 'c-value' });
    assert.equal(reads(world, keyC), 1, 'allowed again: one read re-authorises');
  });
});

describe('csi provider: changed secrets', () => {
  let world: ProviderWorld;
  let pod: TestPod;

  before(async () => {
    world = await startProviderWorld({ stageTtlMs: 300 });
    pod = await world.pod();
  });
  after(async () => {
    await world?.close();
  });

  it('serves a new AWSCURRENT once the stage is no longer trusted, and the new version id', async () => {
    const name = uniqueName('smk-csi-rotate');
    const { versionId: v1 } = await putSecret('us-east-1', name, 'old');
    const objects = `- {objectName: ${name}, objectType: secretsmanager, objectAlias: s}`;
    const first = await world.client.mount(world.request(pod, { objects }));
    assert.deepEqual(first.object_version, [{ id: 's', version: v1 }]);

    const v2 = await putSecretVersion('us-east-1', name, 'new');
    await sleep(400);
    const second = await world.client.mount(world.request(pod, { objects }));
    assert.deepEqual(filesAsText(second.files), { s: 'new' });
    assert.deepEqual(second.object_version, [{ id: 's', version: v2 }]);
  });
});
