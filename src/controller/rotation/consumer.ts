/**
 * The SQS consumer: one long-poll loop (in the leader) that receives up to 10 messages a call,
 * turns each into a hint (messages.ts), has the detector confirm it, and deletes every message
 * it is done with in one batch: confirmed, duplicate, unwatched, ignored and malformed alike, so
 * nothing loops in the queue. Only a message whose confirmation failed transiently is kept; it
 * comes back after the queue's visibility timeout and, after maxReceiveCount, goes to the DLQ.
 * Message bodies are never logged.
 */
import type { QueueMessage, QueueReader } from '../../aws/index.ts';
import { describeError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { counter } from '../../core/metrics.ts';
import type { HintOutcome } from './detector.ts';
import { type ChangeHint, parseQueueMessage } from './messages.ts';

export interface ConsumerOptions {
  readonly queue: Pick<QueueReader, 'receive' | 'delete' | 'queueUrl'>;
  readonly confirm: (hint: ChangeHint) => Promise<HintOutcome>;
  readonly logger: Logger;
  /** Long poll seconds (default 20). */
  readonly waitSeconds?: number;
  /** Pause after a failed receive, doubled up to 60 s (default 1 s). */
  readonly retryDelayMs?: number;
}

export interface Consumer {
  start(): void;
  /** Ends the loop, cutting a long poll in progress short. */
  stop(): Promise<void>;
  /** One receive-handle-delete round; returns how many messages it received. */
  round(waitSeconds?: number): Promise<number>;
}

export type MessageOutcome = HintOutcome | 'ignored' | 'malformed' | 'failed';

export const queueMessages = counter(
  'smk_rotation_queue_messages_total',
  'Rotation queue messages handled, by outcome (changed, unchanged, unwatched, ignored, malformed, failed).',
  ['outcome'],
);

export function createConsumer(options: ConsumerOptions): Consumer {
  const { queue, logger } = options;
  const waitSeconds = options.waitSeconds ?? 20;
  const baseDelay = options.retryDelayMs ?? 1000;
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let polling: AbortController | undefined;

  async function handle(message: QueueMessage): Promise<MessageOutcome> {
    const parsed = parseQueueMessage(message.body);
    if (parsed.kind !== 'hint') {
      const level = parsed.kind === 'malformed' ? 'warn' : 'debug';
      logger[level](
        { messageId: message.messageId, receiveCount: message.receiveCount, reason: parsed.reason },
        parsed.kind === 'malformed' ? 'queue message malformed; deleted' : 'queue message ignored; deleted',
      );
      return parsed.kind;
    }
    try {
      return await options.confirm(parsed.hint);
    } catch (error) {
      logger.warn(
        { messageId: message.messageId, secret: parsed.hint.secretId, err: describeError(error) },
        'could not confirm a change hint; the message comes back after its visibility timeout',
      );
      return 'failed';
    }
  }

  async function round(wait = waitSeconds): Promise<number> {
    polling = new AbortController();
    let messages: QueueMessage[];
    try {
      messages = await queue.receive({ waitSeconds: wait, signal: polling.signal });
    } finally {
      polling = undefined;
    }
    if (messages.length === 0) return 0;
    // Messages of one batch are confirmed one after another: a burst for one secret costs one
    // DescribeSecret that changes something and cheap no-ops after it.
    const done: QueueMessage[] = [];
    for (const message of messages) {
      const outcome = await handle(message);
      queueMessages.inc({ outcome });
      if (outcome !== 'failed') done.push(message);
    }
    if (done.length > 0) {
      const failed = await queue.delete(done);
      if (failed.length > 0) {
        logger.warn(
          { failed: failed.length },
          'some queue messages were not deleted; they will be seen again',
        );
      }
    }
    return messages.length;
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (running) {
      try {
        await round();
        failures = 0;
      } catch (error) {
        if (!running) return;
        failures += 1;
        const delay = Math.min(baseDelay * 2 ** Math.min(failures - 1, 6), 60_000);
        logger.warn(
          { queue: queue.queueUrl, err: describeError(error), retryInMs: delay },
          'queue receive failed',
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      wake?.();
      polling?.abort();
      await loop;
      loop = undefined;
    },
    round,
  };
}
