import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createEventRecorderWith } from './events.ts';

const object = { apiVersion: 'smk.dev/v1alpha1', kind: 'SecretSync', namespace: 'ns', name: 'db', uid: 'u1' };

describe('event recorder', () => {
  it('records an event about the object with a value-free message', async () => {
    const sent: Array<{ namespace: string; body: Record<string, unknown> }> = [];
    const recorder = createEventRecorderWith(
      async (namespace, body) => {
        sent.push({ namespace, body: body as unknown as Record<string, unknown> });
      },
      { component: 'smk-controller', now: () => 1_000 },
    );
    await recorder.record(object, 'Normal', 'Created', 'Created Secret db');
    assert.equal(sent.length, 1);
    const body = sent[0]?.body as {
      involvedObject: Record<string, string>;
      reason: string;
      type: string;
      message: string;
      source: { component: string };
    };
    assert.equal(sent[0]?.namespace, 'ns');
    assert.deepEqual(body.involvedObject, {
      apiVersion: 'smk.dev/v1alpha1',
      kind: 'SecretSync',
      name: 'db',
      namespace: 'ns',
      uid: 'u1',
    });
    assert.equal(body.reason, 'Created');
    assert.equal(body.type, 'Normal');
    assert.equal(body.source.component, 'smk-controller');
  });

  it('sends the same event once per window, and again after it', async () => {
    let now = 0;
    let count = 0;
    const recorder = createEventRecorderWith(
      async () => {
        count += 1;
      },
      { component: 'c', repeatWindowMs: 1000, now: () => now },
    );
    await recorder.record(object, 'Warning', 'AccessDenied', 'denied');
    await recorder.record(object, 'Warning', 'AccessDenied', 'denied');
    await recorder.record(object, 'Warning', 'AccessDenied', 'other message');
    assert.equal(count, 2);
    now = 1000;
    await recorder.record(object, 'Warning', 'AccessDenied', 'denied');
    assert.equal(count, 3);
  });

  it('never throws, and retries an event whose send failed', async () => {
    let fail = true;
    let count = 0;
    const recorder = createEventRecorderWith(
      async () => {
        count += 1;
        if (fail) throw new Error('API down');
      },
      { component: 'c', now: () => 0 },
    );
    await recorder.record(object, 'Normal', 'Created', 'x');
    fail = false;
    await recorder.record(object, 'Normal', 'Created', 'x');
    assert.equal(count, 2);
  });

  it('writes at most maxInFlight at once, in order, and drops the newest when the queue is full', async () => {
    const started: string[] = [];
    const finish: (() => void)[] = [];
    let inFlight = 0;
    let most = 0;
    const recorder = createEventRecorderWith(
      async (_namespace, body) => {
        started.push(String(body.reason));
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise<void>((resolve) => finish.push(resolve));
        inFlight -= 1;
      },
      { component: 'c', now: () => 0, maxInFlight: 2, maxQueued: 2 },
    );
    const recorded = ['a', 'b', 'c', 'd', 'e'].map((reason) =>
      recorder.record(object, 'Normal', reason, 'm'),
    );
    await recorded[4]; // the fifth finds two writing and two waiting: dropped at once
    assert.deepEqual(started, ['a', 'b']);
    while (finish.length > 0 || started.length < 4) {
      finish.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(recorded);
    assert.deepEqual(started, ['a', 'b', 'c', 'd']);
    assert.equal(most, 2);
    // A dropped event is not remembered as sent: the next occurrence is written.
    const again = recorder.record(object, 'Normal', 'e', 'm');
    await new Promise((resolve) => setImmediate(resolve));
    finish.shift()?.();
    await again;
    assert.deepEqual(started, ['a', 'b', 'c', 'd', 'e']);
  });

  it('writes Warnings first, and holds Normal events while the owner is busy, for at most maxYieldMs', async () => {
    const written: string[] = [];
    let busy = true;
    let now = 0;
    const recorder = createEventRecorderWith(
      async (_namespace, body) => {
        written.push(String(body.reason));
      },
      { component: 'c', now: () => now, yieldWhile: () => busy, maxYieldMs: 60_000, yieldPollMs: 5 },
    );
    const created = recorder.record(object, 'Normal', 'Created', 'm');
    await recorder.record(object, 'Warning', 'SyncFailed', 'm');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(written, ['SyncFailed'], 'the Normal event waits while busy; the Warning does not');
    busy = false;
    await created;
    assert.deepEqual(written, ['SyncFailed', 'Created']);

    busy = true;
    const updated = recorder.record(object, 'Normal', 'Updated', 'm');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(written, ['SyncFailed', 'Created']);
    now = 60_000; // busy for a minute: the event goes anyway
    await updated;
    assert.deepEqual(written, ['SyncFailed', 'Created', 'Updated']);
  });

  it('counts yielding events against the queue bound', async () => {
    const written: string[] = [];
    const recorder = createEventRecorderWith(
      async (_namespace, body) => {
        written.push(String(body.reason));
      },
      { component: 'c', now: () => 0, yieldWhile: () => true, maxQueued: 2, yieldPollMs: 5 },
    );
    const pending = ['a', 'b'].map((reason) => recorder.record(object, 'Normal', reason, 'm'));
    await recorder.record(object, 'Normal', 'c', 'm'); // the third is dropped at once
    await recorder.record(object, 'Warning', 'w', 'm'); // a Warning is still written
    assert.deepEqual(written, ['w']);
    void pending;
  });
});
