import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { QueueMessage } from '../../aws/index.ts';
import { TransientError } from '../../core/errors.ts';
import { createLogger } from '../../core/log.ts';
import { createConsumer } from './consumer.ts';
import type { HintOutcome } from './detector.ts';
import type { ChangeHint } from './messages.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

function message(id: string, body: string): QueueMessage {
  return { messageId: id, receiptHandle: `r-${id}`, body, receiveCount: 1 };
}

function capture() {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), text: () => text };
}

test('one round: every message handled is deleted in one batch, a transient failure is kept', async () => {
  const batches = [
    [
      message('1', fixture('cloudtrail-put-secret-value.json')),
      message('2', 'not json: password=hunter2'),
      message('3', fixture('s3-object-created.json')),
      message('4', fixture('secret-label-updated.json')),
      message('5', fixture('cloudtrail-put-secret-value.json')),
    ],
  ];
  const deleted: string[][] = [];
  const confirmed: ChangeHint[] = [];
  const outcomes: (HintOutcome | Error)[] = [
    'changed',
    new TransientError('DescribeSecret: HTTP 503'),
    'unchanged',
  ];
  const log = capture();
  const consumer = createConsumer({
    queue: {
      queueUrl: 'http://127.0.0.1/123456789012/q',
      receive: async () => batches.shift() ?? [],
      delete: async (messages) => {
        deleted.push(messages.map((m) => m.messageId));
        return [];
      },
    },
    confirm: async (hint) => {
      confirmed.push(hint);
      const outcome = outcomes.shift() ?? 'unwatched';
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
    logger: log.logger,
  });
  assert.equal(await consumer.round(0), 5);
  assert.deepEqual(
    confirmed.map((hint) => hint.secretId),
    ['eks-controller-test-secret', 'mySecret', 'eks-controller-test-secret'],
  );
  assert.deepEqual(deleted, [['1', '2', '3', '5']], 'all but the one that failed to confirm');
  assert.equal(await consumer.round(0), 0);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.doesNotMatch(log.text(), /hunter2|HIDDEN_DUE_TO_SECURITY_REASONS/, 'bodies are never logged');
  assert.match(log.text(), /queue message malformed; deleted/);
});

test('the loop survives receive failures and stops when asked', async () => {
  let receives = 0;
  const consumer = createConsumer({
    queue: {
      queueUrl: 'http://127.0.0.1/123456789012/q',
      receive: async () => {
        receives += 1;
        if (receives === 1) throw new TransientError('ReceiveMessage: HTTP 500');
        await new Promise((resolve) => setTimeout(resolve, 5));
        return [];
      },
      delete: async () => [],
    },
    confirm: async () => 'unwatched',
    logger: capture().logger,
    retryDelayMs: 5,
  });
  consumer.start();
  // Until the third receive (not a fixed 60 ms: on a loaded machine the loop may not get there in time).
  for (let turn = 0; turn < 1_000 && receives < 3; turn += 1) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await consumer.stop();
  assert.ok(receives >= 3, `kept receiving after a failure (${receives})`);
  const after = receives;
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(receives, after, 'stopped');
});
