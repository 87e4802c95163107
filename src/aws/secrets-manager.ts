/**
 * Secrets Manager reads for one identity in one region: BatchGetSecretValue (≤ 20 ids a call)
 * for secrets wanted at AWSCURRENT, GetSecretValue with an explicit VersionId/VersionStage
 * otherwise; DescribeSecret and ListSecrets for version checks.
 */
import {
  BatchGetSecretValueCommand,
  DescribeSecretCommand,
  type FilterNameStringType,
  GetSecretValueCommand,
  ListSecretsCommand,
  type SecretValueEntry,
} from '@aws-sdk/client-secrets-manager';
import { parseArn } from '../core/arn.ts';
import { AccessDeniedError, type SmkError, TooLargeError, TransientError } from '../core/errors.ts';
import type { DiscoveredObject, DiscoveryQuery, SecretVersions } from '../core/source.ts';
import { currentStage } from '../core/source.ts';
import { secretIdMatches } from './arn.ts';
import type { SecretCache } from './cache.ts';
import type { AwsClients } from './clients.ts';
import { forSubject, mapAwsErrorCode } from './errors.ts';
import type { Identity } from './identity.ts';
import { chunks, mapLimit, type Outcome, type Target } from './targets.ts';

/** AWS refuses more; moto does not (moto.md #3), so we enforce it. */
export const batchLimit = 20;
/** ListSecrets page size (the API maximum). */
const listPageSize = 100;
/** ListSecrets accepts at most this many values per filter. */
const filterValuesLimit = 10;
const batchDeniedNote = 'BatchGetSecretValue denied';
/** What reads answer for a secret scheduled for deletion: for a reader, it is not there. */
const deletedCodes = ['InvalidRequestException'] as const;

export interface SecretsManagerContext {
  readonly identity: Identity;
  readonly identityKey: string;
  readonly clients: AwsClients;
  readonly cache: SecretCache;
  /** Parallel GetSecretValue calls at most. */
  readonly concurrency: number;
}

const encoder = new TextEncoder();

function toSecret(
  answer: {
    ARN?: string | undefined;
    Name?: string | undefined;
    VersionId?: string | undefined;
    SecretString?: string | undefined;
    SecretBinary?: Uint8Array | undefined;
  },
  target: Target,
  api: string,
): Outcome {
  if (!answer.ARN || !answer.VersionId) {
    const error = new TransientError(
      `${api} ${target.id} in ${target.region}: answer without ARN or version`,
      {
        subject: target.id,
      },
    );
    return { ok: false, error };
  }
  const binary = answer.SecretString === undefined && answer.SecretBinary !== undefined;
  const bytes = binary
    ? new Uint8Array(answer.SecretBinary ?? [])
    : encoder.encode(answer.SecretString ?? '');
  return {
    ok: true,
    secret: { arn: answer.ARN, name: answer.Name ?? target.id, versionId: answer.VersionId, bytes, binary },
  };
}

async function getSecretValue(context: SecretsManagerContext, target: Target): Promise<Outcome> {
  const api = 'GetSecretValue';
  try {
    const answer = await context.clients.call(
      { api, subject: target.id, region: target.region, notFoundCodes: deletedCodes },
      (abortSignal) =>
        context.clients.secretsManager(context.identity, target.region).send(
          new GetSecretValueCommand({
            SecretId: target.id,
            ...(target.versionId === undefined ? {} : { VersionId: target.versionId }),
            ...(target.versionStage === undefined ? {} : { VersionStage: target.versionStage }),
          }),
          { abortSignal },
        ),
    );
    return toSecret(answer, target, api);
  } catch (error) {
    return { ok: false, error: error as SmkError };
  }
}

/**
 * One BatchGetSecretValue call for ≤ 20 targets at AWSCURRENT. Returns outcomes for the targets
 * it settled and the ones to ask again with GetSecretValue (not answered, or answered at another
 * version: moto's batch ignores stage moves, moto.md #1).
 */
async function batchGet(
  context: SecretsManagerContext,
  region: string,
  targets: readonly Target[],
): Promise<{ settled: Map<Target, Outcome>; retry: Target[] }> {
  const api = 'BatchGetSecretValue';
  const settled = new Map<Target, Outcome>();
  const retry: Target[] = [];
  let answer: { SecretValues?: SecretValueEntry[]; Errors?: { SecretId?: string; ErrorCode?: string }[] };
  try {
    answer = await context.clients.call(
      { api, subject: `${targets.length} secrets`, region },
      (abortSignal) =>
        context.clients
          .secretsManager(context.identity, region)
          .send(new BatchGetSecretValueCommand({ SecretIdList: targets.map((target) => target.id) }), {
            abortSignal,
          }),
    );
  } catch (error) {
    const failure = error as SmkError;
    if (failure instanceof AccessDeniedError) {
      // Policies written for GetSecretValue alone are common: remember, and read one by one.
      context.cache.setNote(context.identityKey, `${batchDeniedNote}\0${region}`, context.cache.authTtlMs);
      return { settled, retry: [...targets] };
    }
    for (const target of targets) settled.set(target, { ok: false, error: forSubject(failure, target.id) });
    return { settled, retry };
  }
  const values = answer.SecretValues ?? [];
  const errors = answer.Errors ?? [];
  for (const target of targets) {
    const value = values.find(
      (entry) => entry.ARN !== undefined && secretIdMatches(target.id, entry.ARN, entry.Name ?? ''),
    );
    if (value) {
      if (value.VersionStages === undefined || value.VersionStages.includes(currentStage)) {
        settled.set(target, toSecret(value, target, api));
      } else {
        retry.push(target);
      }
      continue;
    }
    const failure = errors.find((entry) => entry.SecretId === target.id);
    if (failure) {
      const error = mapAwsErrorCode(failure.ErrorCode, {
        api,
        subject: target.id,
        region,
        notFoundCodes: deletedCodes,
      });
      settled.set(target, { ok: false, error });
      continue;
    }
    retry.push(target);
  }
  return { settled, retry };
}

/** Read every target (all Secrets Manager, one region) with as few calls as possible. */
export async function readSecrets(
  context: SecretsManagerContext,
  region: string,
  targets: readonly Target[],
): Promise<Map<Target, Outcome>> {
  const outcomes = new Map<Target, Outcome>();
  const single: Target[] = [];
  const batchable: Target[] = [];
  for (const target of targets) {
    if (target.versionId === undefined && target.versionStage === currentStage) batchable.push(target);
    else single.push(target);
  }
  const batchDenied = context.cache.hasNote(context.identityKey, `${batchDeniedNote}\0${region}`);
  if (batchable.length >= 2 && !batchDenied) {
    const answers = await Promise.all(
      chunks(batchable, batchLimit).map((chunk) => batchGet(context, region, chunk)),
    );
    for (const { settled, retry } of answers) {
      for (const [target, outcome] of settled) outcomes.set(target, outcome);
      single.push(...retry);
    }
  } else {
    single.push(...batchable);
  }
  const reads = await mapLimit(single, context.concurrency, (target) => getSecretValue(context, target));
  single.forEach((target, at) => {
    const outcome = reads[at];
    if (outcome) outcomes.set(target, outcome);
  });
  return outcomes;
}

function versionsOf(answer: {
  ARN?: string | undefined;
  Name?: string | undefined;
  DeletedDate?: Date | undefined;
  stages?: Record<string, string[]> | undefined;
}): SecretVersions | undefined {
  if (!answer.ARN) return undefined;
  return {
    arn: answer.ARN,
    name: answer.Name ?? '',
    versionsToStages: new Map(Object.entries(answer.stages ?? {})),
    ...(answer.DeletedDate ? { deletedDate: answer.DeletedDate } : {}),
  };
}

/** DescribeSecret → versions and stages; teaches the cache where this identity's stages point. */
export async function describeSecret(
  context: SecretsManagerContext,
  target: Target,
): Promise<SecretVersions> {
  const api = 'DescribeSecret';
  const answer = await context.clients.call(
    { api, subject: target.id, region: target.region },
    (abortSignal) =>
      context.clients
        .secretsManager(context.identity, target.region)
        .send(new DescribeSecretCommand({ SecretId: target.id }), { abortSignal }),
  );
  const versions = versionsOf({ ...answer, stages: answer.VersionIdsToStages });
  if (!versions) {
    throw new TransientError(`${api} ${target.id} in ${target.region}: answer without ARN`, {
      subject: target.id,
    });
  }
  learnStages(context, target.region, target.id, versions);
  return versions;
}

function learnStages(
  context: SecretsManagerContext,
  region: string,
  id: string,
  versions: SecretVersions,
): void {
  const pointers: [string, string][] = [];
  for (const [versionId, stages] of versions.versionsToStages) {
    for (const stage of stages) pointers.push([`stage:${stage}`, versionId]);
  }
  context.cache.learn(
    { identityKey: context.identityKey, objectType: 'secretsmanager', region, id },
    versions.arn,
    pointers,
  );
}

export interface ListSecretVersionsOptions {
  /**
   * Only these secrets (names, ARNs or partial ARNs): filtered by name prefix at AWS, matched
   * exactly here. Default: every secret the identity may list.
   */
  readonly ids?: readonly string[];
}

/** The name prefix a ListSecrets `name` filter can use for an id (names of ARNs lose the random suffix). */
function namePrefix(id: string): string {
  const arn = parseArn(id);
  if (!arn) return id;
  const name = arn.resource.startsWith('secret:') ? arn.resource.slice('secret:'.length) : arn.resource;
  return /-[A-Za-z0-9]{6}$/.test(name) ? name.slice(0, -7) : name;
}

/** ListSecrets (100 a page, SecretVersionsToStages), including secrets scheduled for deletion. */
export async function listSecretVersions(
  context: SecretsManagerContext,
  region: string,
  options: ListSecretVersionsOptions = {},
): Promise<SecretVersions[]> {
  const ids = options.ids;
  const filters =
    ids === undefined ? [undefined] : chunks([...new Set(ids.map(namePrefix))], filterValuesLimit);
  const found = new Map<string, SecretVersions>();
  for (const values of filters) {
    let nextToken: string | undefined;
    do {
      const answer = await context.clients.call({ api: 'ListSecrets', region }, (abortSignal) =>
        context.clients.secretsManager(context.identity, region).send(
          new ListSecretsCommand({
            MaxResults: listPageSize,
            IncludePlannedDeletion: true,
            ...(values === undefined ? {} : { Filters: [{ Key: 'name', Values: values }] }),
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
          { abortSignal },
        ),
      );
      for (const entry of answer.SecretList ?? []) {
        const versions = versionsOf({ ...entry, stages: entry.SecretVersionsToStages });
        if (versions) found.set(versions.arn, versions);
      }
      nextToken = answer.NextToken;
    } while (nextToken);
  }
  const all = [...found.values()];
  if (ids === undefined) return all;
  const wanted = all.filter((versions) => ids.some((id) => secretIdMatches(id, versions.arn, versions.name)));
  for (const versions of wanted) {
    for (const id of ids) {
      if (secretIdMatches(id, versions.arn, versions.name)) learnStages(context, region, id, versions);
    }
  }
  return wanted;
}

/**
 * A discovery's ListSecrets (100 a page; secrets scheduled for deletion left out, so a deleted
 * secret leaves the set): AWS's filters narrow the listing, `query.accept` decides. Each match
 * teaches the cache where its stages point, so reading an unchanged match at AWSCURRENT is a
 * cache hit while this identity's own last read of it is fresh (cache.ts).
 */
export async function discoverSecrets(
  context: SecretsManagerContext,
  query: DiscoveryQuery,
): Promise<DiscoveredObject[]> {
  const { region } = query;
  const filters: { Key: FilterNameStringType; Values: string[] }[] = [];
  if (query.namePrefix !== undefined) filters.push({ Key: 'name', Values: [query.namePrefix] });
  if (query.tags.size > 0) {
    filters.push({ Key: 'tag-key', Values: [...query.tags.keys()].slice(0, filterValuesLimit) });
    filters.push({ Key: 'tag-value', Values: [...query.tags.values()].slice(0, filterValuesLimit) });
  }
  const found: DiscoveredObject[] = [];
  let listed = 0;
  let nextToken: string | undefined;
  do {
    const answer = await context.clients.call({ api: 'ListSecrets', region }, (abortSignal) =>
      context.clients.secretsManager(context.identity, region).send(
        new ListSecretsCommand({
          MaxResults: listPageSize,
          ...(filters.length === 0 ? {} : { Filters: filters }),
          ...(nextToken === undefined ? {} : { NextToken: nextToken }),
        }),
        { abortSignal },
      ),
    );
    for (const entry of answer.SecretList ?? []) {
      listed += 1;
      if (!entry.ARN || !entry.Name) continue;
      const tags = new Map((entry.Tags ?? []).map((tag) => [tag.Key ?? '', tag.Value ?? '']));
      const candidate = { name: entry.Name, arn: entry.ARN, tags };
      if (!query.accept(candidate)) continue;
      found.push(candidate);
      const versions = versionsOf({ ...entry, stages: entry.SecretVersionsToStages });
      if (versions) learnStages(context, region, entry.Name, versions);
    }
    // More than the limit is all the caller needs to refuse the set.
    if (found.length > query.limit) return found;
    nextToken = answer.NextToken;
    if (nextToken && listed >= query.maxListed) {
      throw new TooLargeError(
        `ListSecrets in ${region}: more than ${query.maxListed} secrets listed for one discover entry (the bound on a listing); narrow namePrefix or tags`,
        { field: 'discover' },
      );
    }
  } while (nextToken);
  return found;
}
