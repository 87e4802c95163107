/**
 * A work queue of string keys, in the spirit of client-go's workqueue: a key is queued at most
 * once, never processed by two workers at once (a key added while it is processed runs again
 * after), failures back off per key (exponential with jitter), a token bucket caps how fast keys
 * start, and `addAfter` schedules a key later (refresh) without holding a timer per key.
 * With `laneOf` (a key's namespace), queued keys wait in one lane per namespace and the lanes take
 * turns: one tenant's backlog of thousands of keys delays another tenant's next key by one turn,
 * not by the backlog (the shared controller serves every namespace; see docs/security.md).
 * A turn may hand out several keys of one lane (`laneTurn`): the sync controller's reads of one
 * namespace are batched only when its reconciles run side by side, so one key per turn cost it
 * the batching (10,000 syncs: 207 batch calls + 4,577 single reads instead of ~230 + ~140).
 */

export interface Clock {
  now(): number;
  /** Calls `callback` after `ms`; returns a function that cancels it. */
  schedule(callback: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(callback, ms) {
    const timer = setTimeout(callback, Math.max(0, ms));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
  /** Fraction of the delay added at random (0.2 → up to +20 %), so failing keys do not retry in step. */
  readonly jitter: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 1000, maxMs: 5 * 60 * 1000, jitter: 0.2 };

/** The delay before retry number `failures` (1-based): base·2^(failures-1), capped, plus jitter. */
export function backoffDelay(failures: number, options: BackoffOptions, random: () => number): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const plain = Math.min(options.baseMs * 2 ** exponent, options.maxMs);
  return Math.round(plain * (1 + options.jitter * random()));
}

export interface RateLimit {
  /** Keys started per second on average. */
  readonly perSecond: number;
  /** Keys that may start at once after a quiet spell. */
  readonly burst: number;
}

export interface WorkQueueOptions {
  readonly backoff?: BackoffOptions;
  readonly rateLimit?: RateLimit;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** The lane a key waits in (e.g. its namespace); lanes are served in turn. Default: one lane. */
  readonly laneOf?: (key: string) => string;
  /**
   * Keys a lane hands out in a row before the next lane's turn (default 1). Another lane's key
   * waits at most (lanes - 1) × laneTurn hand-outs.
   */
  readonly laneTurn?: number;
}

export interface WorkQueue {
  /** Queue `key` now (no-op when already queued; re-run after the current run when processing). */
  add(key: string): void;
  /** Queue `key` after `ms`, unless an earlier run is already due; replaces a later schedule. */
  addAfter(key: string, ms: number): void;
  /**
   * Queue `key` after its per-key backoff, or after `atLeastMs` when that is longer (the server's
   * Retry-After); returns the delay chosen.
   */
  addRateLimited(key: string, atLeastMs?: number): number;
  /** Forget the key's failure count (after a success). */
  forget(key: string): void;
  /** Drop any pending schedule and queued run of `key` (the object is gone). */
  remove(key: string): void;
  /** The next key to process, waiting for one; undefined once the queue is shut down. */
  get(): Promise<string | undefined>;
  /** Must be called when processing of a key from get() ends. */
  done(key: string): void;
  /**
   * The next keys `lane` will hand out, in order (queued now: not delayed, not processing), at
   * most `limit`; a look, not a take (the sync's read-ahead batches their reads with this one's).
   */
  peek(lane: string, limit: number): string[];
  /** Keys queued now (not delayed, not processing). */
  readonly depth: number;
  /** Keys scheduled for later. */
  readonly scheduled: number;
  shutDown(): void;
}

interface Waiter {
  resolve(key: string | undefined): void;
}

export function createWorkQueue(options: WorkQueueOptions = {}): WorkQueue {
  const backoff = options.backoff ?? defaultBackoff;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const rate = options.rateLimit;

  const lanes = new Lanes(options.laneOf ?? (() => ''), options.laneTurn ?? 1);
  const queued = new Set<string>();
  const processing = new Set<string>();
  const dirty = new Set<string>();
  const failures = new Map<string, number>();
  const waiters: Waiter[] = [];
  let closed = false;

  // Delayed keys: due time per key, a min-heap of (due, key) with lazy deletion, and one timer.
  const dueAt = new Map<string, number>();
  const heap = new DueHeap();
  let timerAt = Number.POSITIVE_INFINITY;
  let cancelTimer: (() => void) | undefined;

  // Token bucket for starts.
  let tokens = rate?.burst ?? 0;
  let refilledAt = clock.now();
  let cancelRefill: (() => void) | undefined;

  function enqueue(key: string): void {
    if (closed) return;
    if (processing.has(key)) {
      dirty.add(key);
      return;
    }
    if (queued.has(key)) return;
    queued.add(key);
    lanes.push(key);
    dispatch();
  }

  function takeToken(): boolean {
    if (!rate) return true;
    const now = clock.now();
    tokens = Math.min(rate.burst, tokens + ((now - refilledAt) / 1000) * rate.perSecond);
    refilledAt = now;
    if (tokens >= 1) {
      tokens -= 1;
      return true;
    }
    if (!cancelRefill) {
      const waitMs = Math.ceil(((1 - tokens) / rate.perSecond) * 1000);
      cancelRefill = clock.schedule(() => {
        cancelRefill = undefined;
        dispatch();
      }, waitMs);
    }
    return false;
  }

  /** The next queued key; entries of keys removed meanwhile are dropped on the way. */
  const pop = (): string | undefined => lanes.shift((key) => queued.delete(key));

  function dispatch(): void {
    while (waiters.length > 0 && queued.size > 0) {
      if (!takeToken()) return;
      const key = pop();
      const waiter = waiters.shift();
      if (key === undefined || waiter === undefined) return;
      processing.add(key);
      waiter.resolve(key);
    }
  }

  function earliestDue(): number {
    for (;;) {
      const top = heap.peek();
      if (top === undefined) return Number.POSITIVE_INFINITY;
      if (dueAt.get(top.key) === top.at) return top.at;
      heap.pop();
    }
  }

  function armTimer(): void {
    const earliest = earliestDue();
    if (earliest === timerAt) return;
    cancelTimer?.();
    cancelTimer = undefined;
    timerAt = earliest;
    if (earliest === Number.POSITIVE_INFINITY || closed) return;
    cancelTimer = clock.schedule(fire, earliest - clock.now());
  }

  function fire(): void {
    cancelTimer = undefined;
    timerAt = Number.POSITIVE_INFINITY;
    const now = clock.now();
    for (let top = heap.peek(); top !== undefined && top.at <= now; top = heap.peek()) {
      heap.pop();
      if (dueAt.get(top.key) !== top.at) continue;
      dueAt.delete(top.key);
      enqueue(top.key);
    }
    armTimer();
  }

  return {
    add: enqueue,
    addAfter(key, ms) {
      if (closed) return;
      if (ms <= 0) {
        dueAt.delete(key);
        enqueue(key);
        armTimer();
        return;
      }
      const at = clock.now() + ms;
      const current = dueAt.get(key);
      if (current !== undefined && current <= at) return;
      dueAt.set(key, at);
      heap.push({ at, key });
      if (at < timerAt) armTimer();
    },
    addRateLimited(key, atLeastMs = 0) {
      const count = (failures.get(key) ?? 0) + 1;
      failures.set(key, count);
      const delay = Math.max(backoffDelay(count, backoff, random), atLeastMs);
      dueAt.delete(key);
      this.addAfter(key, delay);
      return delay;
    },
    forget(key) {
      failures.delete(key);
    },
    remove(key) {
      failures.delete(key);
      dirty.delete(key);
      queued.delete(key);
      dueAt.delete(key);
    },
    get() {
      if (closed) return Promise.resolve(undefined);
      return new Promise<string | undefined>((resolve) => {
        waiters.push({ resolve });
        dispatch();
      });
    },
    done(key) {
      processing.delete(key);
      if (dirty.delete(key)) enqueue(key);
      else dispatch();
    },
    peek(lane, limit) {
      return lanes.peek(lane, limit, (key) => queued.has(key));
    },
    get depth() {
      return queued.size;
    },
    get scheduled() {
      return dueAt.size;
    },
    shutDown() {
      closed = true;
      cancelTimer?.();
      cancelRefill?.();
      dueAt.clear();
      for (const waiter of waiters.splice(0)) waiter.resolve(undefined);
    },
  };
}

interface Lane {
  readonly items: string[];
  head: number;
}

/** FIFO lanes served in turn: each shift takes from the lane at the front of the round, which goes to the back when its turn ends. */
class Lanes {
  /**
   * Insertion order is the round: the first lane has the turn; a lane whose turn ends goes to the
   * back, an empty one is dropped.
   */
  private readonly lanes = new Map<string, Lane>();

  private readonly laneOf: (key: string) => string;

  private readonly turn: number;

  /** Keys the lane in turn has handed out in this turn. */
  private servedInTurn = 0;

  constructor(laneOf: (key: string) => string, turn: number) {
    if (!Number.isInteger(turn) || turn < 1)
      throw new RangeError(`laneTurn must be a whole number ≥ 1, got ${turn}`);
    this.laneOf = laneOf;
    this.turn = turn;
  }

  push(key: string): void {
    const name = this.laneOf(key);
    let lane = this.lanes.get(name);
    if (!lane) {
      lane = { items: [], head: 0 };
      this.lanes.set(name, lane);
    }
    lane.items.push(key);
  }

  /** Up to `limit` entries of lane `name` from its head that `live` accepts, without taking them. */
  peek(name: string, limit: number, live: (key: string) => boolean): string[] {
    const lane = this.lanes.get(name);
    const keys: string[] = [];
    if (!lane) return keys;
    for (let at = lane.head; at < lane.items.length && keys.length < limit; at += 1) {
      const key = lane.items[at];
      if (key !== undefined && live(key)) keys.push(key);
    }
    return keys;
  }

  /** The first entry, in turn, that `take` accepts (entries it refuses are stale and dropped). */
  shift(take: (key: string) => boolean): string | undefined {
    for (const [name, lane] of this.lanes) {
      while (lane.head < lane.items.length) {
        const key = lane.items[lane.head];
        lane.head += 1;
        if (key === undefined || !take(key)) continue;
        this.servedInTurn += 1;
        if (lane.head >= lane.items.length) {
          this.endTurn(name);
        } else {
          if (lane.head > 1024 && lane.head * 2 > lane.items.length) {
            lane.items.splice(0, lane.head);
            lane.head = 0;
          }
          if (this.servedInTurn >= this.turn) {
            this.endTurn(name);
            this.lanes.set(name, lane);
          }
        }
        return key;
      }
      this.endTurn(name);
    }
    return undefined;
  }

  private endTurn(name: string): void {
    this.lanes.delete(name);
    this.servedInTurn = 0;
  }
}

interface DueEntry {
  readonly at: number;
  readonly key: string;
}

/** A binary min-heap on `at`. */
class DueHeap {
  private readonly items: DueEntry[] = [];

  peek(): DueEntry | undefined {
    return this.items[0];
  }

  push(entry: DueEntry): void {
    const items = this.items;
    items.push(entry);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const above = items[parent];
      if (above === undefined || above.at <= entry.at) break;
      items[index] = above;
      index = parent;
    }
    items[index] = entry;
  }

  pop(): DueEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const leftItem = items[left];
      const rightItem = items[right];
      const child =
        rightItem !== undefined && leftItem !== undefined && rightItem.at < leftItem.at ? right : left;
      const childItem = items[child];
      if (childItem === undefined || childItem.at >= last.at) break;
      items[index] = childItem;
      index = child;
    }
    items[index] = last;
    return top;
  }
}
