/**
 * The one cache of secret values, shared by every reader of a process.
 *
 * Three kinds of record:
 * - values, keyed by (region, ARN, version id): immutable, shared, LRU-bounded by bytes;
 * - resolutions, per identity: what an id at a selector (stage, label, version) pointed at,
 *   kept `stageTtlMs` for moving pointers and `authTtlMs` for pinned versions;
 * - authorisations, per (identity, ARN): set only when that identity itself read the value
 *   from AWS (GetSecretValue / BatchGetSecretValue / GetParameters). A value is handed out
 *   only while the asking identity's authorisation is fresh. DescribeSecret alone never
 *   authorises: it needs neither `GetSecretValue` nor `kms:Decrypt`.
 *
 * Single-flight: concurrent asks for the same (identity, object, selector) share one call.
 */
import type { ObjectType } from '../core/source.ts';
import { WeightedLru } from './lru.ts';
import { cacheBytes } from './metrics.ts';

export interface CachedSecret {
  readonly arn: string;
  readonly name: string;
  readonly versionId: string;
  readonly bytes: Uint8Array;
  readonly binary: boolean;
}

/** Where one request lands in the cache. */
export interface CacheSlot {
  readonly identityKey: string;
  readonly objectType: ObjectType;
  readonly region: string;
  /** The id as the user wrote it (name, ARN or partial ARN). */
  readonly id: string;
  /** `version:ID`, `stage:NAME`, `label:NAME` or `latest`. */
  readonly selector: string;
  /** True for an explicit version: it never moves, so its resolution lives as long as authorisation. */
  readonly pinned: boolean;
}

export interface SecretCacheOptions {
  /** Budget for cached values (default 32 MiB). */
  readonly maxBytes?: number;
  /** How long a successful read authorises an identity for a secret (default 5 min). */
  readonly authTtlMs?: number;
  /** How long a stage/label/latest resolution is trusted (default 15 s). */
  readonly stageTtlMs?: number;
  /** Bound on resolution and authorisation records (default 100 000 each). */
  readonly maxRecords?: number;
  readonly now?: () => number;
}

interface Resolution {
  readonly arn: string;
  readonly versionId: string;
  readonly expiresAt: number;
  /** When it was recorded: a resolution from before its secret's stages moved is stale. */
  readonly at: number;
}

/** Bookkeeping bytes counted per value on top of the secret itself. */
const valueOverhead = 256;

export class SecretCache {
  readonly authTtlMs: number;
  readonly stageTtlMs: number;
  readonly #now: () => number;
  readonly #values: WeightedLru<string, CachedSecret>;
  readonly #resolutions: WeightedLru<string, Resolution>;
  readonly #authorisations: WeightedLru<string, number>;
  /** (region, ARN) → when its stages were last seen to move (rotation's change detector). */
  readonly #moved: WeightedLru<string, number>;
  readonly #flights = new Map<string, Promise<unknown>>();

  constructor(options: SecretCacheOptions = {}) {
    this.authTtlMs = options.authTtlMs ?? 5 * 60_000;
    this.stageTtlMs = options.stageTtlMs ?? 15_000;
    this.#now = options.now ?? Date.now;
    const maxRecords = options.maxRecords ?? 100_000;
    this.#values = new WeightedLru(
      options.maxBytes ?? 32 * 1024 * 1024,
      (value) => value.bytes.byteLength + value.arn.length + value.name.length + valueOverhead,
    );
    this.#resolutions = new WeightedLru(maxRecords);
    this.#authorisations = new WeightedLru(maxRecords);
    this.#moved = new WeightedLru(maxRecords);
  }

  /** Bytes of values held. */
  get bytes(): number {
    return this.#values.weight;
  }

  /** The value for this slot when the identity may have it without asking AWS; else undefined. */
  get(slot: CacheSlot): CachedSecret | undefined {
    const now = this.#now();
    const resolution = this.#resolutions.get(slotKey(slot));
    if (!resolution || resolution.expiresAt <= now) return undefined;
    if (!slot.pinned) {
      const moved = this.#moved.get(valueKey(slot.region, resolution.arn, ''));
      if (moved !== undefined && resolution.at <= moved) return undefined;
    }
    if (!this.isAuthorised(slot.identityKey, resolution.arn)) return undefined;
    return this.#values.get(valueKey(slot.region, resolution.arn, resolution.versionId));
  }

  /** True while the identity's last successful read of this ARN is within the authorisation window. */
  isAuthorised(identityKey: string, arn: string): boolean {
    const expiresAt = this.#authorisations.get(authKey(identityKey, arn));
    return expiresAt !== undefined && expiresAt > this.#now();
  }

  /** Record a value the slot's identity has just read from AWS: value, resolution, authorisation. */
  store(slot: CacheSlot, secret: CachedSecret): void {
    const now = this.#now();
    this.#values.set(valueKey(slot.region, secret.arn, secret.versionId), secret);
    cacheBytes.set(this.#values.weight);
    this.#resolutions.set(slotKey(slot), {
      arn: secret.arn,
      versionId: secret.versionId,
      expiresAt: now + (slot.pinned ? this.authTtlMs : this.stageTtlMs),
      at: now,
    });
    this.#authorisations.set(authKey(slot.identityKey, secret.arn), now + this.authTtlMs);
  }

  /**
   * Record where selectors point now (from DescribeSecret or parameter history, made by this
   * identity). Grants no authorisation: a later read is served from cache only if the identity
   * already read the value itself within the window.
   */
  learn(
    slot: Omit<CacheSlot, 'selector' | 'pinned'>,
    arn: string,
    pointers: Iterable<readonly [selector: string, versionId: string]>,
  ): void {
    const at = this.#now();
    const expiresAt = at + this.stageTtlMs;
    for (const [selector, versionId] of pointers) {
      this.#resolutions.set(slotKey({ ...slot, selector, pinned: false }), { arn, versionId, expiresAt, at });
    }
  }

  /**
   * The stages or labels of this secret moved (a change the rotation detector confirmed): every
   * identity's stage and label resolutions recorded until now are stale, so the re-sync that
   * follows reads the new version instead of the one cached a few seconds ago.
   */
  stagesMoved(region: string, arn: string): void {
    this.#moved.set(valueKey(region, arn, ''), this.#now());
  }

  /** Drop what this identity was trusted with for this slot (after NotFound or AccessDenied). */
  forget(slot: CacheSlot): void {
    const key = slotKey(slot);
    const resolution = this.#resolutions.get(key);
    this.#resolutions.delete(key);
    if (resolution) this.#authorisations.delete(authKey(slot.identityKey, resolution.arn));
    if (slot.id.startsWith('arn:')) this.#authorisations.delete(authKey(slot.identityKey, slot.id));
  }

  /** A flag with an expiry, per identity (e.g. "BatchGetSecretValue is denied to this identity"). */
  setNote(identityKey: string, note: string, ttlMs: number): void {
    this.#authorisations.set(`note\0${identityKey}\0${note}`, this.#now() + ttlMs);
  }

  hasNote(identityKey: string, note: string): boolean {
    const expiresAt = this.#authorisations.get(`note\0${identityKey}\0${note}`);
    return expiresAt !== undefined && expiresAt > this.#now();
  }

  /** Run `work` unless the same key is already in flight; then share that call's result. */
  flight<T>(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.#flights.get(key);
    if (running) return running as Promise<T>;
    const started = work().finally(() => this.#flights.delete(key));
    this.#flights.set(key, started);
    return started;
  }

  /** True when a call for this key is running now. */
  inFlight(key: string): boolean {
    return this.#flights.has(key);
  }

  clear(): void {
    this.#values.clear();
    this.#resolutions.clear();
    this.#authorisations.clear();
    this.#moved.clear();
    cacheBytes.set(0);
  }
}

export function slotKey(slot: CacheSlot): string {
  return [slot.identityKey, slot.objectType, slot.region, slot.id, slot.selector].join('\0');
}

function valueKey(region: string, arn: string, versionId: string): string {
  return `${region}\0${arn}\0${versionId}`;
}

function authKey(identityKey: string, arn: string): string {
  return `${identityKey}\0${arn}`;
}
