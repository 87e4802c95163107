/**
 * What arrives on the rotation queue, parsed once with zod: EventBridge events from Secrets
 * Manager, either CloudTrail write events ("AWS API Call via CloudTrail", and the service's own
 * "AWS Service Event via CloudTrail" such as RotationSucceeded) or the native "Secret Label
 * Updated" event; the same wrapped in an SNS notification is accepted too. A message is only a
 * hint that a secret may have changed: the detector confirms with DescribeSecret.
 * Reasons never echo the body: a queue may carry anything, including values.
 */
import * as z from 'zod';

/** The secret a message points at. `secretId` is a name, an ARN or a partial ARN. */
export interface ChangeHint {
  readonly secretId: string;
  /** The secret's ARN when the event names it. */
  readonly arn?: string;
  /** The region the event happened in (event, CloudTrail record, or the ARN's). */
  readonly region?: string;
  /** CloudTrail eventName, or `SecretLabelUpdated:<label>` for the native event. */
  readonly reason: string;
  /** When AWS saw the change (event time): detection lag is measured from it. */
  readonly eventTime?: Date;
}

export type ParsedMessage =
  | { readonly kind: 'hint'; readonly hint: ChangeHint }
  /** Well-formed but not about a secret change we act on (a read, a tag, another service). */
  | { readonly kind: 'ignored'; readonly reason: string }
  /** Not JSON, or not an event shape we know. */
  | { readonly kind: 'malformed'; readonly reason: string };

/** CloudTrail events that can move a stage, change a value or make a secret (dis)appear. */
export const changeEvents: ReadonlySet<string> = new Set([
  'PutSecretValue',
  'UpdateSecret',
  'UpdateSecretVersionStage',
  'RotateSecret',
  'RotationSucceeded',
  'DeleteSecret',
  'RestoreSecret',
  'CreateSecret',
  'ReplicateSecretToRegions',
  'StopReplicationToReplica',
  'RemoveRegionsFromReplication',
  'CancelRotateSecret',
]);

const text = z.string().min(1).max(2048);
const arnPattern = /^arn:[a-z-]+:secretsmanager:([a-z0-9-]+):\d{12}:secret:.+$/;

const cloudTrailDetail = z.object({
  eventSource: z.string(),
  eventName: text,
  awsRegion: text.optional(),
  eventTime: z.string().optional(),
  errorCode: z.string().optional(),
  requestParameters: z.object({ secretId: text.optional(), name: text.optional() }).loose().nullish(),
  responseElements: z
    .object({ arn: text.optional(), aRN: text.optional(), ARN: text.optional() })
    .loose()
    .nullish(),
  additionalEventData: z.object({ SecretId: text.optional() }).loose().nullish(),
});

const labelDetail = z.object({
  name: text,
  labelUpdated: text,
  versionId: text.optional(),
});

const envelope = z.object({
  'detail-type': z.string(),
  source: z.string(),
  region: text.optional(),
  time: z.string().optional(),
  resources: z.array(z.string()).optional(),
  detail: z.unknown(),
});

const snsNotification = z.object({ Type: z.literal('Notification'), Message: z.string() });

function date(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}

function arnRegion(arn: string | undefined): string | undefined {
  return arn ? arnPattern.exec(arn)?.[1] : undefined;
}

function hint(
  secretId: string,
  arn: string | undefined,
  region: string | undefined,
  reason: string,
  eventTime: Date | undefined,
): ParsedMessage {
  const validArn = arn && arnPattern.test(arn) ? arn : undefined;
  const where = region ?? arnRegion(validArn) ?? arnRegion(secretId);
  return {
    kind: 'hint',
    hint: {
      secretId,
      ...(validArn ? { arn: validArn } : {}),
      ...(where ? { region: where } : {}),
      reason,
      ...(eventTime ? { eventTime } : {}),
    },
  };
}

function fromCloudTrail(detail: unknown, region: string | undefined, time: Date | undefined): ParsedMessage {
  const parsed = cloudTrailDetail.safeParse(detail);
  if (!parsed.success) return { kind: 'malformed', reason: 'CloudTrail event without the expected detail' };
  const record = parsed.data;
  if (record.eventSource !== 'secretsmanager.amazonaws.com') {
    return { kind: 'ignored', reason: 'CloudTrail event of another service' };
  }
  if (!changeEvents.has(record.eventName)) {
    return { kind: 'ignored', reason: `${record.eventName} changes no secret version` };
  }
  if (record.errorCode) return { kind: 'ignored', reason: `${record.eventName} failed` };
  const arn =
    record.responseElements?.arn ??
    record.responseElements?.aRN ??
    record.responseElements?.ARN ??
    record.additionalEventData?.SecretId;
  const secretId =
    record.requestParameters?.secretId ??
    record.requestParameters?.name ??
    record.additionalEventData?.SecretId;
  const id = secretId ?? arn;
  if (!id) return { kind: 'malformed', reason: `${record.eventName} event names no secret` };
  return hint(id, arn, record.awsRegion ?? region, record.eventName, date(record.eventTime) ?? time);
}

function fromEnvelope(value: unknown, depth: number): ParsedMessage {
  const sns = snsNotification.safeParse(value);
  if (sns.success && depth === 0) return parseJson(sns.data.Message, depth + 1);
  const event = envelope.safeParse(value);
  if (!event.success) return { kind: 'malformed', reason: 'not an EventBridge event' };
  const { source, region } = event.data;
  const time = date(event.data.time);
  const detailType = event.data['detail-type'];
  if (source !== 'aws.secretsmanager') return { kind: 'ignored', reason: 'event from another source' };
  if (detailType === 'AWS API Call via CloudTrail' || detailType === 'AWS Service Event via CloudTrail') {
    return fromCloudTrail(event.data.detail, region, time);
  }
  if (detailType === 'Secret Label Updated') {
    const detail = labelDetail.safeParse(event.data.detail);
    if (!detail.success) return { kind: 'malformed', reason: 'Secret Label Updated without name and label' };
    const arn = event.data.resources?.find((resource) => arnPattern.test(resource));
    return hint(detail.data.name, arn, region, `SecretLabelUpdated:${detail.data.labelUpdated}`, time);
  }
  return { kind: 'ignored', reason: 'Secrets Manager event of another type' };
}

function parseJson(body: string, depth: number): ParsedMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { kind: 'malformed', reason: 'body is not JSON' };
  }
  return fromEnvelope(value, depth);
}

/** One SQS message body → a hint, or why it is dropped. Never throws. */
export function parseQueueMessage(body: string): ParsedMessage {
  if (body.length > 256 * 1024) return { kind: 'malformed', reason: 'body over 256 KiB' };
  return parseJson(body, 0);
}
