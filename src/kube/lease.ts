/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go does it: the holder renews
 * every `retryPeriodMs`; a candidate takes the lease once it has seen the same record unchanged
 * for `leaseDurationMs` on its own clock (so clock skew between replicas does not matter); a
 * leader that cannot renew within `renewDeadlineMs` steps down before anyone else may take over.
 * Updates carry the resourceVersion, so two candidates never both win.
 */
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import { apiStatus, type KubeConfig, kubeError } from './client.ts';
import { createKubeHttp, resourcePath } from './http.ts';
import { type Clock, systemClock } from './queue.ts';

export interface LeaseRecord {
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime?: Date;
  readonly renewTime?: Date;
  readonly leaseTransitions: number;
  /** Opaque version for optimistic concurrency. */
  readonly resourceVersion?: string;
}

/** Where the lease lives: the API server, or a map in unit tests. */
export interface LeaseStore {
  get(): Promise<LeaseRecord | undefined>;
  /** Creates the lease; false when someone else created it first. */
  create(record: LeaseRecord): Promise<boolean>;
  /** Replaces the lease if it is still at `record.resourceVersion`; false on a conflict. */
  update(record: LeaseRecord): Promise<boolean>;
}

export interface LeaderElectionOptions {
  /** This replica's identity (pod name + a random suffix). */
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

export interface LeaderElection {
  start(): void;
  /** Stops; a leader releases the lease so a successor need not wait for it to expire. */
  stop(): Promise<void>;
  readonly isLeader: boolean;
}

export function createLeaderElection(store: LeaseStore, options: LeaderElectionOptions): LeaderElection {
  const logger = options.logger ?? silentLogger();
  const clock = options.clock ?? systemClock;
  // A standby takes over once it has seen the record unchanged for the lease duration, checking
  // every retry period (+ up to 20% jitter): 12 s + 2.4 s keeps a failover within 15 s.
  const leaseDurationMs = options.leaseDurationMs ?? 12_000;
  const renewDeadlineMs = options.renewDeadlineMs ?? 8_000;
  const retryPeriodMs = options.retryPeriodMs ?? 2_000;
  const leaseSeconds = Math.max(1, Math.ceil(leaseDurationMs / 1000));

  let leader = false;
  let running = false;
  let cancelTick: (() => void) | undefined;
  let lastRenewed = 0;
  let observed: { key: string; at: number } | undefined;
  let current: LeaseRecord | undefined;
  let inFlight: Promise<void> | undefined;

  function recordKey(record: LeaseRecord): string {
    return `${record.holderIdentity}|${record.renewTime?.getTime() ?? 0}|${record.resourceVersion ?? ''}`;
  }

  async function tryAcquireOrRenew(): Promise<boolean> {
    const now = clock.now();
    const existing = await store.get();
    if (existing === undefined) {
      const fresh: LeaseRecord = {
        holderIdentity: options.identity,
        leaseDurationSeconds: leaseSeconds,
        acquireTime: new Date(now),
        renewTime: new Date(now),
        leaseTransitions: 0,
      };
      return store.create(fresh);
    }
    current = existing;
    const key = recordKey(existing);
    if (observed?.key !== key) observed = { key, at: now };
    const holder = existing.holderIdentity;
    const mine = holder === options.identity;
    const expired = holder === '' || now - observed.at >= existing.leaseDurationSeconds * 1000;
    if (!mine && !expired) return false;
    const next: LeaseRecord = {
      holderIdentity: options.identity,
      leaseDurationSeconds: leaseSeconds,
      acquireTime: mine && existing.acquireTime ? existing.acquireTime : new Date(now),
      renewTime: new Date(now),
      leaseTransitions: mine ? existing.leaseTransitions : existing.leaseTransitions + 1,
      ...(existing.resourceVersion ? { resourceVersion: existing.resourceVersion } : {}),
    };
    return store.update(next);
  }

  function setLeader(value: boolean): void {
    if (leader === value) return;
    leader = value;
    logger.info({ identity: options.identity, leader: value }, value ? 'became leader' : 'stopped leading');
    if (value) options.onStartedLeading();
    else options.onStoppedLeading();
  }

  async function tick(): Promise<void> {
    let won = false;
    try {
      won = await tryAcquireOrRenew();
    } catch (error) {
      logger.warn({ identity: options.identity, err: describeError(error) }, 'lease check failed');
    }
    if (!running) return;
    const now = clock.now();
    if (won) {
      lastRenewed = now;
      setLeader(true);
    } else if (leader && now - lastRenewed >= renewDeadlineMs) {
      setLeader(false);
    } else if (leader && current && current.holderIdentity !== options.identity) {
      setLeader(false);
    }
  }

  function schedule(): void {
    if (!running) return;
    const jitter = leader ? 0 : Math.floor(Math.random() * retryPeriodMs * 0.2);
    cancelTick = clock.schedule(() => {
      inFlight = tick().finally(() => {
        inFlight = undefined;
        schedule();
      });
    }, retryPeriodMs + jitter);
  }

  return {
    start() {
      if (running) return;
      running = true;
      inFlight = tick().finally(() => {
        inFlight = undefined;
        schedule();
      });
    },
    async stop() {
      running = false;
      cancelTick?.();
      await inFlight;
      if (!leader) return;
      setLeader(false);
      try {
        const existing = await store.get();
        if (existing?.holderIdentity === options.identity) {
          await store.update({
            ...existing,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: new Date(clock.now()),
          });
        }
      } catch (error) {
        logger.warn({ identity: options.identity, err: describeError(error) }, 'lease not released');
      }
    },
    get isLeader() {
      return leader;
    },
  };
}

function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) return value;
  if (typeof value === 'string' && value !== '') return new Date(value);
  return undefined;
}

/** A coordination.k8s.io/v1 Lease as JSON on the wire (times are RFC 3339 MicroTime strings). */
interface LeaseJson {
  readonly apiVersion: 'coordination.k8s.io/v1';
  readonly kind: 'Lease';
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
  readonly spec?: {
    readonly holderIdentity?: string;
    readonly leaseDurationSeconds?: number;
    readonly leaseTransitions?: number;
    readonly acquireTime?: string;
    readonly renewTime?: string;
  };
}

/** MicroTime: the API server parses exactly six fractional digits (RFC3339Micro), not JSON's three. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

function fromLease(lease: LeaseJson): LeaseRecord {
  const spec = lease.spec ?? {};
  const acquireTime = toDate(spec.acquireTime);
  const renewTime = toDate(spec.renewTime);
  return {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 12,
    leaseTransitions: spec.leaseTransitions ?? 0,
    ...(acquireTime ? { acquireTime } : {}),
    ...(renewTime ? { renewTime } : {}),
    ...(lease.metadata?.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}),
  };
}

function toLease(namespace: string, name: string, record: LeaseRecord): LeaseJson {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace,
      ...(record.resourceVersion ? { resourceVersion: record.resourceVersion } : {}),
    },
    spec: {
      holderIdentity: record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      leaseTransitions: record.leaseTransitions,
      ...(record.acquireTime ? { acquireTime: microTime(record.acquireTime) } : {}),
      ...(record.renewTime ? { renewTime: microTime(record.renewTime) } : {}),
    },
  };
}

/** The lease `namespace/name` on the API server. */
export function apiLeaseStore(kubeConfig: KubeConfig, namespace: string, name: string): LeaseStore {
  const http = createKubeHttp(kubeConfig);
  const collection = resourcePath('coordination.k8s.io/v1', 'leases', namespace);
  const path = resourcePath('coordination.k8s.io/v1', 'leases', namespace, { name });
  const what = `Lease ${namespace}/${name}`;
  return {
    async get() {
      try {
        return fromLease(await http.send<LeaseJson>({ method: 'GET', path }));
      } catch (error) {
        if (apiStatus(error) === 404) return undefined;
        throw kubeError(error, what);
      }
    },
    async create(record) {
      try {
        await http.send({ method: 'POST', path: collection, body: toLease(namespace, name, record) });
        return true;
      } catch (error) {
        if (apiStatus(error) === 409) return false;
        throw kubeError(error, what);
      }
    },
    async update(record) {
      try {
        // The resourceVersion in the body makes this a compare-and-swap (409 when another won).
        await http.send({ method: 'PUT', path, body: toLease(namespace, name, record) });
        return true;
      } catch (error) {
        if (apiStatus(error) === 409) return false;
        throw kubeError(error, what);
      }
    },
  };
}
