import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from '../core/errors.ts';
import { parseQueueUrl, queueRegion } from './sqs.ts';

test('the region of a queue URL comes from its host', () => {
  assert.equal(queueRegion('https://sqs.eu-west-1.amazonaws.com/123456789012/smk-rotation'), 'eu-west-1');
  assert.equal(queueRegion('https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q'), 'cn-north-1');
  assert.equal(queueRegion('https://us-gov-west-1.queue.amazonaws.com/123456789012/q.fifo'), 'us-gov-west-1');
  assert.equal(queueRegion('http://127.0.0.1:4566/123456789012/q'), undefined);
  assert.equal(queueRegion('not a url'), undefined);
});

test('a queue URL is checked once, naming the flag', () => {
  assert.equal(parseQueueUrl('http://127.0.0.1:1/123456789012/q'), 'http://127.0.0.1:1/123456789012/q');
  assert.throws(
    () => parseQueueUrl('sqs://queue', '--queue-url'),
    (error: unknown) => error instanceof InvalidInputError && /--queue-url: expected/.test(error.message),
  );
  assert.throws(() => parseQueueUrl('https://sqs.us-east-1.amazonaws.com/acct/q'), InvalidInputError);
});
