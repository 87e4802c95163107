/**
 * Which names are AWS regions: the regions of the partitions the installed AWS SDK knows
 * (its partitions.json, read through the SDK's own `partition()`), not a list of ours and not a
 * pattern. A region name picks an SDK client and an endpoint, so a made-up one must never get
 * that far: each distinct name would cost a client (finding: 10,000 invented regions exhausted
 * the controller's heap). A region AWS opens after this smk's SDK was released needs a newer smk.
 */
import { partition } from '@aws-sdk/core/client';

/** Global pseudo-regions (`aws-global`, `aws-cn-global`) are in the SDK's data too; they end without a number. */
const regionShape = /^[a-z]{2,}(-[a-z]+)+-\d+$/;

/** True when the installed SDK lists `name` as a region of one of its partitions. */
export function isAwsRegion(name: string): boolean {
  if (!regionShape.test(name)) return false;
  // partition() answers every name (falling back to the aws partition); only a listed region
  // adds its own data (a description) to the answer.
  const known: object = partition(name);
  return 'description' in known && typeof known.description === 'string';
}

/** What a message says a region must be. */
export const awsRegionExpectation =
  'an AWS region of a partition the AWS SDK in this smk knows, like "us-east-1"';
