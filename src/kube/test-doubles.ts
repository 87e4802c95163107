/**
 * In-memory stand-ins for the manager's unit tests and the controllers' on a manager (never
 * imported by src outside tests): a Lease with the API server's compare-and-swap, and a clock the
 * test advances.
 */
import type { LeaseRecord, LeaseStore } from './lease.ts';
import type { Clock } from './queue.ts';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

/** One Lease in memory, compare-and-swap on its resourceVersion like the API server. */
export function memoryLease(initial?: LeaseRecord) {
  let record = initial;
  let version = initial ? 1 : 0;
  const log: string[] = [];
  const store: LeaseStore = {
    get: async () => record,
    async create(next) {
      if (record) return false;
      version += 1;
      record = { ...next, resourceVersion: String(version) };
      return true;
    },
    async update(next) {
      if (record?.resourceVersion !== next.resourceVersion) return false;
      if (next.holderIdentity === '') log.push('lease released');
      version += 1;
      record = { ...next, resourceVersion: String(version) };
      return true;
    },
  };
  return {
    store,
    log,
    get holder() {
      return record?.holderIdentity;
    },
  };
}

export function manualClock(): Clock & { advance(ms: number): Promise<void> } {
  let now = 1_000_000;
  const timers: Array<{ at: number; callback: () => void; live: boolean }> = [];
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
        const next = timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        now = next.at;
        next.live = false;
        next.callback();
        await settle();
      }
      now = until;
    },
  };
}
