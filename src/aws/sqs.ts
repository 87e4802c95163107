/**
 * The rotation queue: SQS long polling (ReceiveMessage, up to 10 a call) and batch deletes
 * (DeleteMessageBatch), for one identity and one queue. Bodies are handed out as text and never
 * logged or put in an error here: parsing them is the caller's job, at its edge.
 */
import { InvalidInputError } from '../core/errors.ts';
import { longPollTimeoutMs } from './client-options.ts';
import type { AwsClients } from './clients.ts';
import type { Identity } from './identity.ts';
import { sqsSdk } from './sdk.ts';

/** SQS allows at most 10 messages per receive and 10 entries per batch delete. */
export const sqsBatchLimit = 10;
/** The longest long poll SQS allows. */
export const maxWaitSeconds = 20;

export interface QueueMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  /** ApproximateReceiveCount: 1 on first delivery. */
  readonly receiveCount: number;
  /** When the message was sent to the queue (SentTimestamp). */
  readonly sentAt?: Date;
}

export interface ReceiveOptions {
  /** Long poll seconds, 0–20 (default 20). */
  readonly waitSeconds?: number;
  /** Messages per call, 1–10 (default 10). */
  readonly maxMessages?: number;
  /** Seconds a received message stays hidden from other receivers (default: the queue's). */
  readonly visibilityTimeoutSeconds?: number;
  /** Ends a long poll early (shutdown). */
  readonly signal?: AbortSignal;
}

export interface QueueReader {
  readonly queueUrl: string;
  readonly region: string;
  receive(options?: ReceiveOptions): Promise<QueueMessage[]>;
  /** Deletes the messages (any number, 10 per call); returns the message ids that were not deleted. */
  delete(messages: readonly Pick<QueueMessage, 'messageId' | 'receiptHandle'>[]): Promise<string[]>;
}

export interface QueueReaderDeps {
  readonly clients: AwsClients;
}

const queueUrlPattern = /^https?:\/\/([^/]+)\/(\d+)\/([A-Za-z0-9_-]{1,80}(\.fifo)?)$/;
/** `sqs.us-east-1.amazonaws.com`, `us-east-1.queue.amazonaws.com` (legacy), `sqs.cn-north-1.amazonaws.com.cn`. */
const regionInHost = /(?:^|\.)sqs\.([a-z]{2}(?:-[a-z]+)+-\d+)\.|^([a-z]{2}(?:-[a-z]+)+-\d+)\.queue\./;

/** The region a queue URL names, or undefined for hosts without one (local endpoints). */
export function queueRegion(queueUrl: string): string | undefined {
  const match = queueUrlPattern.exec(queueUrl);
  if (!match) return undefined;
  const host = regionInHost.exec(match[1] ?? '');
  return host?.[1] ?? host?.[2];
}

/** Checks a queue URL's shape once, at the edge; the error names the flag and what was expected. */
export function parseQueueUrl(queueUrl: string, field = 'queue URL'): string {
  if (!queueUrlPattern.test(queueUrl)) {
    throw new InvalidInputError(
      `${field}: expected an SQS queue URL like https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`,
      { subject: field, field },
    );
  }
  return queueUrl;
}

const queueNotFound = ['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue'] as const;

export function createQueueReader(
  identity: Identity,
  deps: QueueReaderDeps,
  queueUrl: string,
  region: string,
): QueueReader {
  const { clients } = deps;
  const subject = queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
  const context = (api: string) => ({ api, subject, region, notFoundCodes: queueNotFound });

  return {
    queueUrl,
    region,

    async receive(options = {}) {
      const waitSeconds = Math.min(Math.max(options.waitSeconds ?? maxWaitSeconds, 0), maxWaitSeconds);
      const maxMessages = Math.min(Math.max(options.maxMessages ?? sqsBatchLimit, 1), sqsBatchLimit);
      const [{ ReceiveMessageCommand }, client] = await Promise.all([
        sqsSdk(),
        clients.sqs(identity, region),
      ]);
      const answer = await clients.call(
        context('ReceiveMessage'),
        (abortSignal) =>
          client.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: maxMessages,
              WaitTimeSeconds: waitSeconds,
              MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
              ...(options.visibilityTimeoutSeconds === undefined
                ? {}
                : { VisibilityTimeout: options.visibilityTimeoutSeconds }),
            }),
            { abortSignal: options.signal ? AbortSignal.any([abortSignal, options.signal]) : abortSignal },
          ),
        waitSeconds * 1000 + longPollTimeoutMs,
      );
      const messages: QueueMessage[] = [];
      for (const message of answer.Messages ?? []) {
        if (!message.MessageId || !message.ReceiptHandle) continue;
        const count = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
        const sent = Number(message.Attributes?.SentTimestamp ?? Number.NaN);
        messages.push({
          messageId: message.MessageId,
          receiptHandle: message.ReceiptHandle,
          body: message.Body ?? '',
          receiveCount: Number.isFinite(count) ? count : 1,
          ...(Number.isFinite(sent) ? { sentAt: new Date(sent) } : {}),
        });
      }
      return messages;
    },

    async delete(messages) {
      const failed: string[] = [];
      for (let at = 0; at < messages.length; at += sqsBatchLimit) {
        const chunk = messages.slice(at, at + sqsBatchLimit);
        // Batch entry ids must be unique and short: the position is both.
        const [{ DeleteMessageBatchCommand }, client] = await Promise.all([
          sqsSdk(),
          clients.sqs(identity, region),
        ]);
        const answer = await clients.call(context('DeleteMessageBatch'), (abortSignal) =>
          client.send(
            new DeleteMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: chunk.map((message, index) => ({
                Id: String(index),
                ReceiptHandle: message.receiptHandle,
              })),
            }),
            { abortSignal },
          ),
        );
        for (const entry of answer.Failed ?? []) {
          const message = chunk[Number(entry.Id)];
          if (message) failed.push(message.messageId);
        }
      }
      return failed;
    },
  };
}

/** What a queue holds now, without receiving anything (`smk doctor` checks the rotation queue with it). */
export interface QueueState {
  /** ApproximateNumberOfMessages: waiting to be received. */
  readonly visible: number;
  /** ApproximateNumberOfMessagesNotVisible: received, not yet deleted. */
  readonly inFlight: number;
  /** The dead-letter queue of its redrive policy, when it has one. */
  readonly deadLetterQueueArn?: string;
}

/** GetQueueAttributes: proves the queue exists and this identity may read its attributes. */
export async function readQueueState(
  identity: Identity,
  deps: QueueReaderDeps,
  queueUrl: string,
  region: string,
): Promise<QueueState> {
  const subject = queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
  const [{ GetQueueAttributesCommand }, client] = await Promise.all([
    sqsSdk(),
    deps.clients.sqs(identity, region),
  ]);
  const answer = await deps.clients.call(
    { api: 'GetQueueAttributes', subject, region, notFoundCodes: queueNotFound },
    (abortSignal) =>
      client.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesNotVisible',
            'RedrivePolicy',
          ],
        }),
        { abortSignal },
      ),
  );
  const attributes = answer.Attributes ?? {};
  const count = (value: string | undefined): number => (Number.isFinite(Number(value)) ? Number(value) : 0);
  let deadLetterQueueArn: string | undefined;
  try {
    const policy = JSON.parse(attributes.RedrivePolicy ?? '{}') as { deadLetterTargetArn?: unknown };
    if (typeof policy.deadLetterTargetArn === 'string') deadLetterQueueArn = policy.deadLetterTargetArn;
  } catch {
    // A malformed redrive policy is AWS's to report; the queue is reachable all the same.
  }
  return {
    visible: count(attributes.ApproximateNumberOfMessages),
    inFlight: count(attributes.ApproximateNumberOfMessagesNotVisible),
    ...(deadLetterQueueArn ? { deadLetterQueueArn } : {}),
  };
}
