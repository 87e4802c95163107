/**
 * The CSI provider under AWS faults (the counting/fault proxy in front of moto): throttling,
 * 5xx, connection resets and a full outage each give a clean Mount error — the sentinel class in
 * the trailer, the gRPC status the driver acts on, a message naming the objects and no value —
 * after a bounded number of calls; once the fault clears the next mount serves the right files.
 * Slow answers within the client's timeout are waited for; one past it is retried.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { MountCallError } from '../../src/csi/client.ts';
import {
  filesAsText,
  type ProviderWorld,
  putSecret,
  startProviderWorld,
  type TestPod,
  uniqueName,
} from '../csi/harness.ts';
import type { Fault } from '../harness/aws-proxy.ts';

const region = 'us-east-1';

interface Objects {
  readonly parameters: Record<string, string>;
  readonly files: Record<string, string>;
  readonly values: string[];
}

/** Fresh secrets (nothing cached): every mount of them must ask AWS. */
async function freshObjects(count = 3): Promise<Objects> {
  const names = Array.from({ length: count }, () => uniqueName('fault'));
  const values = names.map((name) => `value-of-${name}-${uniqueName('v')}`);
  await Promise.all(names.map((name, index) => putSecret(region, name, values[index] ?? '')));
  return {
    parameters: {
      objects: JSON.stringify(names.map((objectName) => ({ objectName, objectType: 'secretsmanager' }))),
      region,
    },
    files: Object.fromEntries(names.map((name, index) => [name, values[index] ?? ''])),
    values,
  };
}

async function refusal(promise: Promise<unknown>): Promise<MountCallError> {
  const error = await promise.then(
    () => assert.fail('the mount should be refused'),
    (failure: unknown) => failure,
  );
  assert.ok(error instanceof MountCallError, String(error));
  return error;
}

const cases: { name: string; fault: Fault; errorCode: string; grpc: status }[] = [
  {
    name: 'throttling',
    fault: { kind: 'throttle' },
    errorCode: 'Throttled',
    grpc: status.RESOURCE_EXHAUSTED,
  },
  {
    name: 'HTTP 500',
    fault: { kind: 'status', status: 500 },
    errorCode: 'Transient',
    grpc: status.UNAVAILABLE,
  },
  {
    name: 'HTTP 503',
    fault: { kind: 'status', status: 503 },
    errorCode: 'Transient',
    grpc: status.UNAVAILABLE,
  },
  { name: 'connection reset', fault: { kind: 'reset' }, errorCode: 'Transient', grpc: status.UNAVAILABLE },
  { name: 'full outage', fault: { kind: 'outage' }, errorCode: 'Transient', grpc: status.UNAVAILABLE },
];

/** SDK attempts per call (AwsClients' default) — the bound on calls a failing read may make. */
const maxAttempts = 3;

describe('csi provider under AWS faults', () => {
  let world: ProviderWorld;
  let pod: TestPod;

  before(async () => {
    world = await startProviderWorld({ authorizationWindowMs: 2_000, stageTtlMs: 2_000 });
    pod = await world.pod();
    // One good mount first, so the pod's web identity session exists and faults hit the reads.
    const warm = await freshObjects(1);
    await world.client.mount(world.request(pod, warm.parameters));
  });
  after(() => world.close());

  for (const { name, fault, errorCode, grpc } of cases) {
    it(`${name}: a clean ${errorCode} error naming the objects after at most ${maxAttempts} attempts, then recovery`, async (t) => {
      const objects = await freshObjects();
      world.proxy.resetCounts();
      world.proxy.addFault({ fault });
      const started = performance.now();
      const error = await refusal(world.client.mount(world.request(pod, objects.parameters), 30_000));
      const elapsed = performance.now() - started;
      // During an outage connections are closed on accept: they count as the calls they were.
      const calls = world.proxy.calls().length + world.proxy.refusedConnections();
      world.proxy.clearFaults();

      assert.equal(error.errorCode, errorCode, error.details);
      assert.equal(error.code, grpc, error.details);
      assert.match(error.details, /objects\[0\] \(fault-[0-9a-f]+\)/, 'the message names the object');
      for (const value of objects.values)
        assert.ok(!error.details.includes(value), 'no value in the message');
      // One batched read of the three objects, retried by the SDK: never a call per object per attempt.
      assert.ok(calls >= 1 && calls <= maxAttempts, `${calls} AWS calls for one failed mount`);
      assert.ok(elapsed < 16_000, `the refusal took ${Math.round(elapsed)} ms`);
      t.diagnostic(`${name}: ${calls} AWS calls, refused after ${Math.round(elapsed)} ms`);

      world.proxy.resetCounts();
      const reply = await world.client.mount(world.request(pod, objects.parameters));
      assert.deepEqual(filesAsText(reply.files), objects.files);
    });
  }

  it('a sustained fault keeps the call rate bounded: 10 mounts cost at most 10 × attempts calls', async (t) => {
    const objects = await freshObjects();
    world.proxy.resetCounts();
    world.proxy.addFault({ fault: { kind: 'status', status: 503 } });
    const errors = await Promise.all(
      Array.from({ length: 10 }, () =>
        refusal(world.client.mount(world.request(pod, objects.parameters), 30_000)),
      ),
    );
    const calls = world.proxy.calls().length + world.proxy.refusedConnections();
    world.proxy.clearFaults();
    assert.ok(errors.every((error) => error.errorCode === 'Transient'));
    assert.ok(calls <= 10 * maxAttempts, `${calls} calls for 10 refused mounts`);
    t.diagnostic(`sustained 503: ${calls} AWS calls for 10 concurrent refused mounts`);
    const reply = await world.client.mount(world.request(pod, objects.parameters));
    assert.deepEqual(filesAsText(reply.files), objects.files);
  });

  it('latency under the client timeout is waited for; an answer past it is retried and the mount succeeds', async () => {
    const slow = await freshObjects();
    world.proxy.addFault({ fault: { kind: 'latency', ms: 800 }, api: 'BatchGetSecretValue', times: 1 });
    let started = performance.now();
    let reply = await world.client.mount(world.request(pod, slow.parameters));
    assert.ok(performance.now() - started >= 750, 'the slow answer was waited for');
    assert.deepEqual(filesAsText(reply.files), slow.files);

    const stuck = await freshObjects();
    world.proxy.resetCounts();
    // Past the 5 s socket timeout: the SDK gives up on that attempt and the retry is answered.
    world.proxy.addFault({ fault: { kind: 'latency', ms: 7_000 }, api: 'BatchGetSecretValue', times: 1 });
    started = performance.now();
    reply = await world.client.mount(world.request(pod, stuck.parameters), 30_000);
    const elapsed = performance.now() - started;
    world.proxy.clearFaults();
    assert.deepEqual(filesAsText(reply.files), stuck.files);
    assert.ok(elapsed < 7_000, `the retry did not wait for the stuck answer (${Math.round(elapsed)} ms)`);
    // The proxy notes the abandoned attempt once its delay is over.
    for (
      let waited = 0;
      waited < 4_000 && world.proxy.count({ api: 'BatchGetSecretValue' }) < 2;
      waited += 100
    ) {
      await sleep(100);
    }
    assert.deepEqual(
      world.proxy
        .calls()
        .filter((call) => call.api === 'BatchGetSecretValue')
        .map((call) => call.outcome),
      [200, 'reset'],
    );
  });

  it('during an outage a remount within the authorisation window is served from the cache; after it, a clean error; then recovery', async () => {
    const objects = await freshObjects();
    await world.client.mount(world.request(pod, objects.parameters));
    world.proxy.resetCounts();
    world.proxy.addFault({ fault: { kind: 'outage' } });
    const cached = await world.client.mount(world.request(pod, objects.parameters));
    assert.deepEqual(filesAsText(cached.files), objects.files);
    assert.equal(world.proxy.calls().length, 0, 'served with no AWS call');

    await sleep(2_200);
    const error = await refusal(world.client.mount(world.request(pod, objects.parameters), 30_000));
    assert.equal(error.errorCode, 'Transient', error.details);
    for (const value of objects.values) assert.ok(!error.details.includes(value));

    world.proxy.clearFaults();
    const recovered = await world.client.mount(world.request(pod, objects.parameters));
    assert.deepEqual(filesAsText(recovered.files), objects.files);
  });
});
