/**
 * The one table of object types: for each ObjectType, how a request becomes a target, how a group
 * of targets in one region is read, and how one is described. Keyed by `Record<ObjectType, …>`,
 * so a new type is a new row and the compiler names this table as the place to add it; nothing
 * else in src/aws branches on the type.
 */
import type { SmkError } from '../core/errors.ts';
import { isSmkError } from '../core/errors.ts';
import type {
  DiscoveredObject,
  DiscoveryQuery,
  ObjectType,
  SecretRequest,
  SecretVersions,
} from '../core/source.ts';
import {
  describeSecret,
  discoverSecrets,
  readSecrets,
  type SecretsManagerContext,
} from './secrets-manager.ts';
import { describeParameter, discoverParameters, readParameters } from './ssm.ts';
import {
  type Outcome,
  parameterTarget,
  secretTarget,
  type Target,
  type TargetBase,
  targetBase,
} from './targets.ts';

export interface ObjectTypeAccess {
  /** The target for `request` (its shared checks already passed), or why there is none. */
  readonly target: (base: TargetBase, request: SecretRequest) => Target | SmkError;
  /** Reads targets of this type in one region, batched; settles every target, never rejects on one. */
  readonly read: (
    context: SecretsManagerContext,
    region: string,
    targets: readonly Target[],
  ) => Promise<Map<Target, Outcome>>;
  /** Versions and stages (or labels) of one target, without its value. */
  readonly describe: (context: SecretsManagerContext, target: Target) => Promise<SecretVersions>;
  /** The objects of this type a discover entry matches (ListSecrets, GetParametersByPath). */
  readonly discover: (context: SecretsManagerContext, query: DiscoveryQuery) => Promise<DiscoveredObject[]>;
}

export const objectTypes: Record<ObjectType, ObjectTypeAccess> = {
  secretsmanager: {
    target: secretTarget,
    read: readSecrets,
    describe: describeSecret,
    discover: discoverSecrets,
  },
  ssmparameter: {
    target: parameterTarget,
    read: readParameters,
    describe: describeParameter,
    discover: discoverParameters,
  },
};

/** What is asked of AWS for `request` and where it lives in the cache, or why it cannot be asked. */
export function targetFor(identityKey: string, request: SecretRequest): Target | SmkError {
  const base = targetBase(identityKey, request);
  if (isSmkError(base)) return base;
  return objectTypes[request.objectType].target(base, request);
}
