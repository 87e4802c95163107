import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, type Clock, createWorkQueue } from './queue.ts';

/** A clock whose time moves only when the test says so. */
function manualClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  let timers: Array<{ at: number; callback: () => void; live: boolean }> = [];
  return {
    now: () => now,
    schedule(callback, ms) {
      const timer = { at: now + Math.max(0, ms), callback, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const next = timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        now = next.at;
        next.live = false;
        next.callback();
      }
      timers = timers.filter((t) => t.live);
      now = until;
    },
  };
}

/** A get() that lost the race in takeReady stays pending; the next takeReady reuses it. */
const pendingGets = new WeakMap<object, Promise<string | undefined>>();

/** Takes what is ready now without waiting (get() resolves in a microtask when a key is queued). */
async function takeReady(queue: ReturnType<typeof createWorkQueue>): Promise<string[]> {
  const taken: string[] = [];
  for (;;) {
    const pending = pendingGets.get(queue) ?? queue.get();
    pendingGets.set(queue, pending);
    const marker = Symbol('none');
    const next = await Promise.race([pending, new Promise<symbol>((r) => setImmediate(() => r(marker)))]);
    if (next === marker) break;
    pendingGets.delete(queue);
    if (typeof next !== 'string') break;
    taken.push(next);
  }
  return taken;
}

describe('work queue', () => {
  it('queues a key once however often it is added', async () => {
    const queue = createWorkQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    assert.equal(queue.depth, 2);
    assert.deepEqual(await takeReady(queue), ['a', 'b']);
    queue.shutDown();
  });

  it('never hands out a key being processed; re-runs it once after done', async () => {
    const queue = createWorkQueue();
    queue.add('a');
    const first = await queue.get();
    assert.equal(first, 'a');
    queue.add('a');
    queue.add('a');
    assert.deepEqual(await takeReady(queue), []);
    queue.done('a');
    assert.deepEqual(await takeReady(queue), ['a']);
    queue.done('a');
    assert.deepEqual(await takeReady(queue), []);
    queue.shutDown();
  });

  it('runs a delayed key when due, and an earlier schedule wins over a later one', async () => {
    const clock = manualClock();
    const queue = createWorkQueue({ clock });
    queue.addAfter('a', 1000);
    queue.addAfter('a', 5000);
    queue.addAfter('b', 3000);
    assert.equal(queue.scheduled, 2);
    clock.advance(999);
    assert.deepEqual(await takeReady(queue), []);
    clock.advance(1);
    assert.deepEqual(await takeReady(queue), ['a']);
    queue.done('a');
    clock.advance(2000);
    assert.deepEqual(await takeReady(queue), ['b']);
    assert.equal(queue.scheduled, 0);
    queue.shutDown();
  });

  it('an earlier addAfter replaces a later one', async () => {
    const clock = manualClock();
    const queue = createWorkQueue({ clock });
    queue.addAfter('a', 5000);
    queue.addAfter('a', 100);
    clock.advance(100);
    assert.deepEqual(await takeReady(queue), ['a']);
    queue.done('a');
    clock.advance(10_000);
    assert.deepEqual(await takeReady(queue), [], 'the replaced schedule must not fire again');
    queue.shutDown();
  });

  it('backs off per key exponentially, capped, and forget() resets it', async () => {
    const clock = manualClock();
    const queue = createWorkQueue({
      clock,
      random: () => 0,
      backoff: { baseMs: 100, maxMs: 1000, jitter: 0.5 },
    });
    assert.equal(queue.addRateLimited('a'), 100);
    assert.equal(queue.addRateLimited('a'), 200);
    assert.equal(queue.addRateLimited('a'), 400);
    assert.equal(queue.addRateLimited('a'), 800);
    assert.equal(queue.addRateLimited('a'), 1000);
    assert.equal(queue.addRateLimited('b'), 100, 'another key has its own count');
    queue.forget('a');
    assert.equal(queue.addRateLimited('a'), 100);
    clock.advance(100);
    assert.deepEqual((await takeReady(queue)).sort(), ['a', 'b']);
    queue.shutDown();
  });

  it("waits at least the server's Retry-After, even when the backoff is shorter", async () => {
    const clock = manualClock();
    const queue = createWorkQueue({
      clock,
      random: () => 0,
      backoff: { baseMs: 100, maxMs: 1000, jitter: 0 },
    });
    assert.equal(queue.addRateLimited('a', 5000), 5000);
    clock.advance(4999);
    assert.deepEqual(await takeReady(queue), [], 'not before Retry-After');
    clock.advance(1);
    assert.deepEqual(await takeReady(queue), ['a']);
    queue.shutDown();
  });

  it('adds jitter to the backoff', () => {
    const options = { baseMs: 1000, maxMs: 60_000, jitter: 0.2 };
    assert.equal(
      backoffDelay(1, options, () => 0),
      1000,
    );
    assert.equal(
      backoffDelay(1, options, () => 0.99),
      1198,
    );
    assert.equal(
      backoffDelay(3, options, () => 0.5),
      4400,
    );
    assert.equal(
      backoffDelay(100, options, () => 0),
      60_000,
    );
  });

  it('starts no more keys than the rate limit allows', async () => {
    const clock = manualClock();
    const queue = createWorkQueue({ clock, rateLimit: { perSecond: 10, burst: 3 } });
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f']) queue.add(key);
    const burst = await takeReady(queue);
    assert.deepEqual(burst, ['a', 'b', 'c']);
    for (const key of burst) queue.done(key);
    clock.advance(100);
    assert.deepEqual(await takeReady(queue), ['d']);
    clock.advance(200);
    assert.deepEqual(await takeReady(queue), ['e', 'f']);
    queue.shutDown();
  });

  it('remove() drops a queued and a scheduled key', async () => {
    const clock = manualClock();
    const queue = createWorkQueue({ clock });
    queue.add('a');
    queue.addAfter('b', 10);
    queue.remove('a');
    queue.remove('b');
    clock.advance(100);
    assert.deepEqual(await takeReady(queue), []);
    queue.shutDown();
  });

  it('keeps many schedules in due order', async () => {
    const clock = manualClock();
    const queue = createWorkQueue({ clock });
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const shuffled = keys.map((key, i) => ({ key, ms: ((i * 7919) % 200) + 1 }));
    for (const { key, ms } of shuffled) queue.addAfter(key, ms);
    const order: string[] = [];
    for (let t = 1; t <= 200; t += 1) {
      clock.advance(1);
      for (const key of await takeReady(queue)) {
        order.push(key);
        queue.done(key);
      }
    }
    const expected = [...shuffled].sort((a, b) => a.ms - b.ms).map((entry) => entry.key);
    assert.deepEqual(order, expected);
    queue.shutDown();
  });

  it("with lanes, one namespace's backlog waits its turn: another's key is next after one of the backlog", async () => {
    const queue = createWorkQueue({ laneOf: (key) => key.split('/')[0] ?? '' });
    for (let i = 0; i < 1000; i++) queue.add(`noisy/${i}`);
    queue.add('quiet/a');
    queue.add('other/a');
    queue.add('quiet/b');
    const order = await takeReady(queue);
    assert.equal(order.length, 1003);
    assert.deepEqual(order.slice(0, 6), ['noisy/0', 'quiet/a', 'other/a', 'noisy/1', 'quiet/b', 'noisy/2']);
    assert.deepEqual(
      order.filter((key) => key.startsWith('noisy/')),
      Array.from({ length: 1000 }, (_, i) => `noisy/${i}`),
      'each lane keeps its own order',
    );
    queue.shutDown();
  });

  it('with laneTurn, a lane hands out that many keys in a row, then the others take their turn', async () => {
    const queue = createWorkQueue({ laneOf: (key) => key.split('/')[0] ?? '', laneTurn: 3 });
    for (let i = 0; i < 7; i++) queue.add(`noisy/${i}`);
    queue.add('quiet/a');
    queue.add('quiet/b');
    queue.add('other/a');
    const order = await takeReady(queue);
    assert.deepEqual(order, [
      'noisy/0',
      'noisy/1',
      'noisy/2',
      'quiet/a',
      'quiet/b',
      'other/a',
      'noisy/3',
      'noisy/4',
      'noisy/5',
      'noisy/6',
    ]);
    assert.throws(() => createWorkQueue({ laneTurn: 0 }), /laneTurn must be a whole number ≥ 1, got 0/);
    queue.shutDown();
  });

  it('with lanes, a removed key is skipped and a re-added one is handed out once', async () => {
    const queue = createWorkQueue({ laneOf: (key) => key.split('/')[0] ?? '' });
    queue.add('a/1');
    queue.add('a/2');
    queue.add('b/1');
    queue.remove('a/2');
    queue.remove('a/1');
    queue.add('a/1');
    assert.equal(queue.depth, 2);
    const taken = await takeReady(queue);
    assert.deepEqual(taken.sort(), ['a/1', 'b/1'], 'a/2 skipped, a/1 once');
    queue.shutDown();
  });

  it('peek shows the keys a lane will hand out next, in order, without taking them', async () => {
    const queue = createWorkQueue({ laneOf: (key) => key.split('/')[0] ?? '', clock: manualClock() });
    for (const key of ['a/1', 'b/1', 'a/2', 'a/3', 'a/4']) queue.add(key);
    queue.remove('a/3');
    queue.addAfter('a/5', 1_000);
    assert.deepEqual(queue.peek('a', 10), ['a/1', 'a/2', 'a/4'], 'removed and delayed keys are not shown');
    assert.deepEqual(queue.peek('a', 2), ['a/1', 'a/2']);
    assert.deepEqual(queue.peek('none', 5), []);
    assert.equal(queue.depth, 4, 'nothing taken');
    const first = await queue.get();
    assert.equal(first, 'a/1');
    assert.deepEqual(queue.peek('a', 10), ['a/2', 'a/4'], 'a key being processed is not shown');
    queue.shutDown();
  });

  it('shutDown releases waiting workers', async () => {
    const queue = createWorkQueue();
    const waiting = queue.get();
    queue.shutDown();
    assert.equal(await waiting, undefined);
    assert.equal(await queue.get(), undefined);
  });
});
