/**
 * `createSecretReader(identity, deps)`: the core's SecretReader port, implemented against AWS
 * with the process's one cache. A read serves what the identity may have from cache, shares
 * calls already in flight for the same (identity, object, version), and fetches the rest grouped
 * by object type and region, batched.
 */
import {
  AccessDeniedError,
  isSmkError,
  NotFoundError,
  type SmkError,
  TransientError,
} from '../core/errors.ts';
import type {
  DiscoveredObject,
  DiscoveryQuery,
  ReadResult,
  SecretReader,
  SecretRequest,
  SecretValue,
  SecretVersions,
} from '../core/source.ts';
import { type CachedSecret, type SecretCache, slotKey } from './cache.ts';
import type { AwsClients } from './clients.ts';
import { type Identity, identityKey } from './identity.ts';
import { cacheHits, cacheMisses } from './metrics.ts';
import { objectTypes, targetFor } from './object-types.ts';
import {
  type ListSecretVersionsOptions,
  listSecretVersions,
  type SecretsManagerContext,
} from './secrets-manager.ts';
import type { Outcome, Target } from './targets.ts';

export interface SecretReaderDeps {
  /** The process's one cache. */
  readonly cache: SecretCache;
  /** The process's client factory. */
  readonly clients: AwsClients;
  /** Parallel single-secret calls at most per read (default 8). */
  readonly concurrency?: number;
}

export interface AwsSecretReader extends SecretReader {
  readonly identity: Identity;
  /** The cache key of the identity this reader acts as. */
  readonly identityKey: string;
  /** ListSecrets with versions and stages (rotation uses this to see what changed). */
  listSecretVersions(region: string, options?: ListSecretVersionsOptions): Promise<SecretVersions[]>;
}

interface Owned {
  readonly target: Target;
  readonly settle: (outcome: Outcome) => void;
}

export function createSecretReader(identity: Identity, deps: SecretReaderDeps): AwsSecretReader {
  const key = identityKey(identity);
  const { cache, clients } = deps;
  const context: SecretsManagerContext = {
    identity,
    identityKey: key,
    clients,
    cache,
    concurrency: deps.concurrency ?? 8,
  };
  // Register the identity's token function with the factory now (the latest one given is used).
  clients.credentials(identity);

  const settle = (owned: Owned, outcome: Outcome): void => {
    if (outcome.ok) cache.store(owned.target.slot, outcome.secret);
    else if (outcome.error instanceof NotFoundError || outcome.error instanceof AccessDeniedError) {
      cache.forget(owned.target.slot);
    }
    owned.settle(outcome);
  };

  /** Fetch what this read owns, grouped by (object type, region); every owned item is settled. */
  const fetchOwned = async (owned: readonly Owned[]): Promise<void> => {
    const groups = new Map<string, Owned[]>();
    for (const item of owned) {
      const group = `${item.target.objectType}\0${item.target.region}`;
      groups.set(group, [...(groups.get(group) ?? []), item]);
    }
    await Promise.all(
      [...groups.values()].map(async (items) => {
        const first = items[0];
        if (!first) return;
        const targets = items.map((item) => item.target);
        let outcomes: Map<Target, Outcome> = new Map();
        try {
          outcomes = await objectTypes[first.target.objectType].read(context, first.target.region, targets);
        } catch {
          // Reads settle per item and never reject; anything unforeseen leaves the items unsettled below.
        }
        for (const item of items) {
          const outcome = outcomes.get(item.target) ?? {
            ok: false,
            error: new TransientError(`${item.target.id} in ${item.target.region}: read did not complete`, {
              subject: item.target.id,
            }),
          };
          settle(item, outcome);
        }
      }),
    );
  };

  const toResult = (request: SecretRequest, outcome: Outcome): ReadResult =>
    outcome.ok ? { ok: true, value: valueFor(request, outcome.secret) } : outcome;

  return {
    identity,
    identityKey: key,

    async read(requests: readonly SecretRequest[]): Promise<ReadResult[]> {
      const results: ReadResult[] = new Array(requests.length);
      const wanted = new Map<string, { target: Target; indices: number[] }>();
      requests.forEach((request, index) => {
        const target = targetFor(key, request);
        if (isSmkError(target)) {
          results[index] = { ok: false, error: target };
          return;
        }
        const slot = slotKey(target.slot);
        const entry = wanted.get(slot);
        if (entry) entry.indices.push(index);
        else wanted.set(slot, { target, indices: [index] });
      });

      const owned: Owned[] = [];
      const waits: Promise<void>[] = [];
      for (const [slot, { target, indices }] of wanted) {
        const hit = cache.get(target.slot);
        if (hit) {
          cacheHits.inc({ object_type: target.objectType });
          for (const index of indices)
            results[index] = toResult(requests[index] as SecretRequest, { ok: true, secret: hit });
          continue;
        }
        cacheMisses.inc({ object_type: target.objectType });
        const holder: { settle?: (outcome: Outcome) => void } = {};
        const flight = cache.flight(
          slot,
          () =>
            new Promise<Outcome>((resolve) => {
              holder.settle = resolve;
            }),
        );
        if (holder.settle) owned.push({ target, settle: holder.settle });
        waits.push(
          flight.then((outcome) => {
            for (const index of indices) results[index] = toResult(requests[index] as SecretRequest, outcome);
          }),
        );
      }
      await fetchOwned(owned);
      await Promise.all(waits);
      return results;
    },

    held(request: SecretRequest): boolean {
      const target = targetFor(key, request);
      if (isSmkError(target)) return true;
      return cache.get(target.slot) !== undefined || cache.inFlight(slotKey(target.slot));
    },

    async describe(request: SecretRequest): Promise<SecretVersions> {
      const target = targetFor(key, request);
      if (isSmkError(target)) throw target;
      try {
        return await objectTypes[target.objectType].describe(context, target);
      } catch (error) {
        if (error instanceof NotFoundError || error instanceof AccessDeniedError) cache.forget(target.slot);
        throw error as SmkError;
      }
    },

    listSecretVersions(region: string, options?: ListSecretVersionsOptions): Promise<SecretVersions[]> {
      return listSecretVersions(context, region, options);
    },

    discover(query: DiscoveryQuery): Promise<DiscoveredObject[]> {
      return objectTypes[query.objectType].discover(context, query);
    },
  };
}

/** A copy per caller: cached bytes are shared and must not be changed (or wiped) through a result. */
function valueFor(request: SecretRequest, secret: CachedSecret): SecretValue {
  return {
    request,
    arn: secret.arn,
    name: secret.name,
    versionId: secret.versionId,
    bytes: secret.bytes.slice(),
    binary: secret.binary,
  };
}
