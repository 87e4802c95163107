/**
 * SSM Parameter Store reads for one identity in one region: GetParameters (≤ 10 names a call,
 * `name:version` / `name:label` selectors, WithDecryption) and GetParameterHistory for versions.
 */
import type { Parameter } from '@aws-sdk/client-ssm';
import { type SmkError, TooLargeError } from '../core/errors.ts';
import type { DiscoveredObject, DiscoveryQuery, SecretVersions } from '../core/source.ts';
import { currentStage } from '../core/source.ts';
import { ssmParameterMatches } from './arn.ts';
import { forSubject, mapAwsErrorCode } from './errors.ts';
import { ssmSdk } from './sdk.ts';
import type { SecretsManagerContext } from './secrets-manager.ts';
import type { Outcome, Target } from './targets.ts';

/** The API maximum of names per GetParameters call. */
export const parametersLimit = 10;
const historyPageSize = 50;

const encoder = new TextEncoder();

function sentName(target: Target): string {
  if (target.versionId !== undefined) return `${target.id}:${target.versionId}`;
  if (target.versionStage !== undefined) return `${target.id}:${target.versionStage}`;
  return target.id;
}

/**
 * Groups of ≤ 10 with each parameter at most once per call: answers name the parameter, not
 * the selector asked for (moto omits `Selector`), so one call must not ask for it twice.
 */
export function parameterCalls(targets: readonly Target[]): Target[][] {
  const calls: { targets: Target[]; ids: Set<string> }[] = [];
  for (const target of targets) {
    let call = calls.find(
      (candidate) => candidate.targets.length < parametersLimit && !candidate.ids.has(target.id),
    );
    if (!call) {
      call = { targets: [], ids: new Set() };
      calls.push(call);
    }
    call.targets.push(target);
    call.ids.add(target.id);
  }
  return calls.map((call) => call.targets);
}

function toOutcome(parameter: Parameter, target: Target): Outcome {
  return {
    ok: true,
    secret: {
      arn: parameter.ARN ?? target.id,
      name: parameter.Name ?? target.id,
      versionId: String(parameter.Version ?? ''),
      bytes: encoder.encode(parameter.Value ?? ''),
      binary: false,
    },
  };
}

async function getParameters(
  context: SecretsManagerContext,
  region: string,
  targets: readonly Target[],
  outcomes: Map<Target, Outcome>,
): Promise<void> {
  const api = 'GetParameters';
  const names = targets.map(sentName);
  let answer: { Parameters?: Parameter[]; InvalidParameters?: string[] };
  const subject = names.length === 1 ? (names[0] ?? '') : `${names.length} parameters`;
  try {
    const [{ GetParametersCommand }, client] = await Promise.all([
      ssmSdk(),
      context.clients.ssm(context.identity, region),
    ]);
    answer = await context.clients.call({ api, subject, region }, (abortSignal) =>
      client.send(new GetParametersCommand({ Names: names, WithDecryption: true }), { abortSignal }),
    );
  } catch (error) {
    for (const target of targets)
      outcomes.set(target, { ok: false, error: forSubject(error as SmkError, target.id) });
    return;
  }
  const invalid = new Set(answer.InvalidParameters ?? []);
  targets.forEach((target, at) => {
    const sent = names[at] ?? target.id;
    const parameter = (answer.Parameters ?? []).find((entry) =>
      ssmParameterMatches(target.id, entry.Name ?? '', entry.ARN ?? ''),
    );
    if (parameter && !invalid.has(sent)) {
      outcomes.set(target, toOutcome(parameter, target));
      return;
    }
    const error = mapAwsErrorCode('ParameterNotFound', { api, subject: sent, region });
    outcomes.set(target, { ok: false, error });
  });
}

/** Read every target (all SSM, one region) in calls of ≤ 10 names. */
export async function readParameters(
  context: SecretsManagerContext,
  region: string,
  targets: readonly Target[],
): Promise<Map<Target, Outcome>> {
  const outcomes = new Map<Target, Outcome>();
  await Promise.all(parameterCalls(targets).map((call) => getParameters(context, region, call, outcomes)));
  return outcomes;
}

/**
 * GetParameterHistory → versions and labels. The newest version also carries `AWSCURRENT`, so
 * "stage (default AWSCURRENT) → version" reads the same for both object types. `arn` is the
 * parameter's ARN when the id was one, else its name (history answers carry no ARN), which is
 * also why it teaches the cache nothing: values are keyed by the real ARN.
 */
export async function describeParameter(
  context: SecretsManagerContext,
  target: Target,
): Promise<SecretVersions> {
  const api = 'GetParameterHistory';
  const versionsToStages = new Map<string, string[]>();
  let name = target.id;
  let newest = -1;
  let nextToken: string | undefined;
  const [{ GetParameterHistoryCommand }, client] = await Promise.all([
    ssmSdk(),
    context.clients.ssm(context.identity, target.region),
  ]);
  do {
    const answer = await context.clients.call(
      { api, subject: target.id, region: target.region },
      (abortSignal) =>
        client.send(
          new GetParameterHistoryCommand({
            Name: target.id,
            WithDecryption: false,
            MaxResults: historyPageSize,
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
          { abortSignal },
        ),
    );
    for (const entry of answer.Parameters ?? []) {
      if (entry.Version === undefined) continue;
      name = entry.Name ?? name;
      versionsToStages.set(String(entry.Version), [...(entry.Labels ?? [])]);
      newest = Math.max(newest, entry.Version);
    }
    nextToken = answer.NextToken;
  } while (nextToken);
  if (newest >= 0) versionsToStages.get(String(newest))?.push(currentStage);
  return { arn: target.id, name, versionsToStages };
}

/** GetParametersByPath's page maximum. */
const pathPageSize = 10;

/**
 * A discovery's GetParametersByPath, decrypted: the listing is itself a read of the values by
 * this identity, so each match is stored in the cache as a GetParameters answer would be, and
 * the pipeline's read that follows is a cache hit (one call per 10 parameters, not two).
 */
export async function discoverParameters(
  context: SecretsManagerContext,
  query: DiscoveryQuery,
): Promise<DiscoveredObject[]> {
  const { region } = query;
  const path = query.path ?? '/';
  const api = 'GetParametersByPath';
  const [{ GetParametersByPathCommand }, client] = await Promise.all([
    ssmSdk(),
    context.clients.ssm(context.identity, region),
  ]);
  const found: DiscoveredObject[] = [];
  let listed = 0;
  let nextToken: string | undefined;
  do {
    const answer = await context.clients.call({ api, subject: path, region }, (abortSignal) =>
      client.send(
        new GetParametersByPathCommand({
          Path: path,
          Recursive: query.recursive ?? false,
          WithDecryption: true,
          MaxResults: pathPageSize,
          ...(nextToken === undefined ? {} : { NextToken: nextToken }),
        }),
        { abortSignal },
      ),
    );
    for (const parameter of answer.Parameters ?? []) {
      listed += 1;
      if (!parameter.Name || !parameter.ARN || parameter.Version === undefined) continue;
      const candidate = { name: parameter.Name, arn: parameter.ARN, tags: new Map<string, string>() };
      if (!query.accept(candidate)) continue;
      found.push(candidate);
      const slot = {
        identityKey: context.identityKey,
        objectType: 'ssmparameter' as const,
        region,
        id: parameter.Name,
        selector: 'latest',
        pinned: false,
      };
      const outcome = toOutcome(parameter, { slot, objectType: 'ssmparameter', region, id: parameter.Name });
      if (outcome.ok) context.cache.store(slot, outcome.secret);
    }
    if (found.length > query.limit) return found;
    nextToken = answer.NextToken;
    if (nextToken && listed >= query.maxListed) {
      throw new TooLargeError(
        `${api} ${path} in ${region}: more than ${query.maxListed} parameters listed for one discover entry (the bound on a listing); narrow the path`,
        { subject: path, field: 'discover' },
      );
    }
  } while (nextToken);
  return found;
}
