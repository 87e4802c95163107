import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLeaderElection, type LeaseRecord, type LeaseStore, microTime } from './lease.ts';
import type { Clock } from './queue.ts';

/** One lease in memory with resourceVersion checks, as the API server does them. */
function memoryStore() {
  let record: LeaseRecord | undefined;
  let version = 0;
  let failing = false;
  const store: LeaseStore = {
    async get() {
      if (failing) throw new Error('unreachable');
      return record;
    },
    async create(next) {
      if (failing) throw new Error('unreachable');
      if (record) return false;
      version += 1;
      record = { ...next, resourceVersion: String(version) };
      return true;
    },
    async update(next) {
      if (failing) throw new Error('unreachable');
      if (record?.resourceVersion !== next.resourceVersion) return false;
      version += 1;
      record = { ...next, resourceVersion: String(version) };
      return true;
    },
  };
  return {
    store,
    get holder() {
      return record?.holderIdentity;
    },
    get transitions() {
      return record?.leaseTransitions;
    },
    setFailing(value: boolean) {
      failing = value;
    },
  };
}

function manualClock(): Clock & { advance(ms: number): Promise<void> } {
  let now = 1_000_000;
  let timers: Array<{ at: number; callback: () => void; live: boolean }> = [];
  const settle = async () => {
    for (let i = 0; i < 5; i += 1) await new Promise((r) => setImmediate(r));
  };
  return {
    now: () => now,
    schedule(callback, ms) {
      const timer = { at: now + ms, callback, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
    async advance(ms) {
      const until = now + ms;
      for (;;) {
        await settle();
        const next = timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        now = next.at;
        next.live = false;
        next.callback();
      }
      timers = timers.filter((t) => t.live);
      now = until;
      await settle();
    },
  };
}

function candidate(store: LeaseStore, clock: Clock, identity: string) {
  const log: string[] = [];
  const election = createLeaderElection(store, {
    identity,
    clock,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    onStartedLeading: () => log.push('start'),
    onStoppedLeading: () => log.push('stop'),
  });
  return { election, log };
}

describe('leader election', () => {
  it('exactly one of two candidates leads; the other waits', async () => {
    const lease = memoryStore();
    const clock = manualClock();
    const a = candidate(lease.store, clock, 'a');
    const b = candidate(lease.store, clock, 'b');
    a.election.start();
    await clock.advance(0);
    b.election.start();
    await clock.advance(60_000);
    assert.equal(a.election.isLeader, true);
    assert.equal(b.election.isLeader, false);
    assert.equal(lease.holder, 'a');
    assert.deepEqual(b.log, []);
    await a.election.stop();
    await b.election.stop();
  });

  it('a released lease is taken over at once', async () => {
    const lease = memoryStore();
    const clock = manualClock();
    const a = candidate(lease.store, clock, 'a');
    const b = candidate(lease.store, clock, 'b');
    a.election.start();
    await clock.advance(0);
    b.election.start();
    await clock.advance(4_000);
    await a.election.stop();
    assert.deepEqual(a.log, ['start', 'stop']);
    await clock.advance(3_000);
    assert.equal(b.election.isLeader, true);
    assert.equal(lease.holder, 'b');
    assert.equal(lease.transitions, 1);
    await b.election.stop();
  });

  it('a leader that cannot renew steps down after the renew deadline', async () => {
    const lease = memoryStore();
    const clock = manualClock();
    const a = candidate(lease.store, clock, 'a');
    a.election.start();
    await clock.advance(0);
    assert.equal(a.election.isLeader, true);
    lease.setFailing(true);
    await clock.advance(8_000);
    assert.equal(a.election.isLeader, true, 'still inside the renew deadline');
    await clock.advance(4_000);
    assert.equal(a.election.isLeader, false);
    assert.deepEqual(a.log, ['start', 'stop']);
    lease.setFailing(false);
    await clock.advance(4_000);
    assert.equal(a.election.isLeader, true, 'takes the lease back: it is still the recorded holder');
    await a.election.stop();
  });

  it('takes over an abandoned lease after seeing it unchanged for the lease duration', async () => {
    const lease = memoryStore();
    const clock = manualClock();
    await lease.store.create({
      holderIdentity: 'gone',
      leaseDurationSeconds: 15,
      leaseTransitions: 3,
      renewTime: new Date(0),
    });
    const b = candidate(lease.store, clock, 'b');
    b.election.start();
    await clock.advance(13_000);
    assert.equal(b.election.isLeader, false, 'the lease has not been seen unchanged for 15 s yet');
    // Attempts come every 2 s plus up to 20% jitter: by 20 s at least one falls after the 15 s
    // mark even when the first observation slipped by a period.
    await clock.advance(7_000);
    assert.equal(b.election.isLeader, true);
    assert.equal(lease.transitions, 4);
    await b.election.stop();
  });
});

describe('microTime', () => {
  it('writes the six fractional digits the API server parses (RFC3339Micro)', () => {
    assert.equal(microTime(new Date('2026-12-07T03:04:05.678Z')), '2026-12-07T03:04:05.678000Z');
  });
});
