/**
 * From a SecretRequest to what is asked of AWS and where it lives in the cache: region (the
 * ARN's wins), id, explicit version or stage/label, one builder per object type (the table in
 * object-types.ts picks it). Pure; plus the small batching helpers.
 */
import { InvalidInputError, type SmkError } from '../core/errors.ts';
// Every Secrets Manager read names the stage explicitly when none is asked for (moto.md #1).
import { type ObjectType, requestedStage, type SecretRequest } from '../core/source.ts';
import { effectiveRegion, splitSsmSelector } from './arn.ts';
import type { CachedSecret, CacheSlot } from './cache.ts';

export interface Target {
  readonly slot: CacheSlot;
  readonly objectType: ObjectType;
  readonly region: string;
  /** Secrets Manager: the id as written. SSM: the parameter name or ARN without a selector. */
  readonly id: string;
  /** Secrets Manager VersionId, or SSM version number. */
  readonly versionId?: string;
  /** Secrets Manager VersionStage (always set when versionId is not), or SSM label. */
  readonly versionStage?: string;
}

export type Outcome =
  | { readonly ok: true; readonly secret: CachedSecret }
  | { readonly ok: false; readonly error: SmkError };

/** What every object type's target shares: the identity, the type and the resolved region. */
export interface TargetBase {
  readonly identityKey: string;
  readonly objectType: ObjectType;
  readonly region: string;
}

/** The checks every type shares (an id, a region); the type's own row (object-types.ts) does the rest. */
export function targetBase(identityKey: string, request: SecretRequest): TargetBase | SmkError {
  const subject = request.id;
  if (request.id === '') return new InvalidInputError('secret id is empty', { subject, field: 'id' });
  const region = effectiveRegion(request.id, request.region);
  if (region === '') {
    return new InvalidInputError(`${request.id}: no region (give one, or an ARN)`, {
      subject,
      field: 'region',
    });
  }
  return { identityKey, objectType: request.objectType, region };
}

/** Secrets Manager: a version id pins; otherwise the stage asked for, AWSCURRENT when none. */
export function secretTarget(base: TargetBase, request: SecretRequest): Target | SmkError {
  const versionId = request.versionId;
  const versionStage = requestedStage(request);
  const slot: CacheSlot =
    versionId === undefined
      ? { ...base, id: request.id, selector: `stage:${versionStage}`, pinned: false }
      : { ...base, id: request.id, selector: `version:${versionId}`, pinned: true };
  return {
    slot,
    objectType: base.objectType,
    region: base.region,
    id: request.id,
    ...(versionId === undefined ? {} : { versionId }),
    ...(versionStage === undefined ? {} : { versionStage }),
  };
}

/** SSM: a selector may be given as fields or written into the name (`name:3`, `name:label`). */
export function parameterTarget(base: TargetBase, request: SecretRequest): Target | SmkError {
  const subject = request.id;
  const { parameter, selector } = splitSsmSelector(request.id);
  let versionId = request.versionId;
  let versionStage = request.versionStage;
  if (selector !== undefined) {
    if (versionId !== undefined || versionStage !== undefined) {
      return new InvalidInputError(`${request.id}: a selector in the name and a version/label both given`, {
        subject,
        field: 'id',
      });
    }
    if (/^[0-9]+$/.test(selector)) versionId = selector;
    else versionStage = selector;
  }
  if (versionId !== undefined && versionStage !== undefined) {
    return new InvalidInputError(`${request.id}: SSM takes a version or a label, not both`, {
      subject,
      field: 'versionId',
    });
  }
  if (versionId !== undefined && !/^[0-9]+$/.test(versionId)) {
    return new InvalidInputError(`${request.id}: SSM version must be a number`, {
      subject,
      field: 'versionId',
    });
  }
  const slot: CacheSlot =
    versionId !== undefined
      ? { ...base, id: parameter, selector: `version:${versionId}`, pinned: true }
      : {
          ...base,
          id: parameter,
          selector: versionStage === undefined ? 'latest' : `label:${versionStage}`,
          pinned: false,
        };
  return {
    slot,
    objectType: base.objectType,
    region: base.region,
    id: parameter,
    ...(versionId === undefined ? {} : { versionId }),
    ...(versionStage === undefined ? {} : { versionStage }),
  };
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let at = 0; at < items.length; at += size) out.push(items.slice(at, at + size));
  return out;
}

/** Run `work` over items with at most `limit` at a time; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const at = next;
      next += 1;
      results[at] = await work(items[at] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
