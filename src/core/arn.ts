/**
 * The one ARN parser. `parseArn` splits any ARN into its fields; `parseObjectArn` reads it as one
 * of the object types (a Secrets Manager secret or an SSM parameter) and refuses anything else.
 * Pure; whether a region exists is regions.ts's question.
 */
import type { ObjectType } from './source.ts';

export interface Arn {
  readonly partition: string;
  readonly service: string;
  readonly region: string;
  /** Kept as written: the account is not checked (docs print placeholders like `[111122223333]`). */
  readonly account: string;
  readonly resource: string;
}

const arnPattern = /^arn:([a-z-]+):([a-z0-9-]+):([a-z0-9-]*):([^:]*):(.+)$/;

/** Any ARN split into its fields, or undefined when `text` is not one. */
export function parseArn(text: string): Arn | undefined {
  const match = arnPattern.exec(text);
  if (!match) return undefined;
  const [, partition = '', service = '', region = '', account = '', resource = ''] = match;
  return { partition, service, region, account, resource };
}

export interface ObjectArn {
  readonly partition: string;
  readonly objectType: ObjectType;
  readonly region: string;
  readonly account: string;
  /** Secret name (with its random suffix), or parameter name (`/prod/db` for `parameter/prod/db`). */
  readonly resourceName: string;
}

/** The shape of an ARN's region field. */
const regionPattern = /^[a-z]{2,}(-[a-z]+)+-\d+$/;
const awsPartition = /^aws(-[a-z]+)*$/;

/** A Secrets Manager secret or SSM parameter ARN, or undefined when `text` is neither. */
export function parseObjectArn(text: string): ObjectArn | undefined {
  const arn = parseArn(text);
  if (!arn || !awsPartition.test(arn.partition) || !regionPattern.test(arn.region) || arn.account === '')
    return undefined;
  const { partition, region, account } = arn;
  if (arn.service === 'secretsmanager') {
    const name = /^secret:([^:]+)$/.exec(arn.resource)?.[1];
    return name
      ? { partition, objectType: 'secretsmanager', region, account, resourceName: name }
      : undefined;
  }
  if (arn.service === 'ssm') {
    const path = /^parameter(\/.+)$/.exec(arn.resource)?.[1];
    if (!path) return undefined;
    // `parameter/db` names the parameter `db`; `parameter/prod/db` names `/prod/db`.
    const resourceName = path.indexOf('/', 1) === -1 ? path.slice(1) : path;
    return { partition, objectType: 'ssmparameter', region, account, resourceName };
  }
  return undefined;
}
