/**
 * The rotation queue consumer against a real SQS queue in moto, through the counting/fault proxy.
 * Duplicate, reordered, malformed and foreign messages: every one is deleted (nothing loops),
 * only the secret-change events reach the detector, and no body ever reaches the log. A confirm
 * that fails transiently keeps its message for redelivery. Receive under throttling, 5xx and an
 * outage backs off (calls counted) and picks the queue up again once the fault clears.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { AwsClients, createQueueReader } from '../../src/aws/index.ts';
import { createConsumer } from '../../src/controller/rotation/consumer.ts';
import type { ChangeHint } from '../../src/controller/rotation/messages.ts';
import { type AwsProxy, type Fault, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { delay, uniqueName, waitFor } from './controller-world.ts';

const region = 'us-east-1';
const fixtureDir = new URL('../../src/controller/rotation/fixtures/', import.meta.url);
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(name, fixtureDir), 'utf8')) as Record<string, unknown>;

/** A value that must never reach a log line, planted where CloudTrail hides it. */
const planted = `planted-${uniqueName('queue-value')}`;

function putEvent(secretId: string, eventTime: string): string {
  const event = fixture('cloudtrail-put-secret-value.json');
  const detail = event.detail as Record<string, unknown>;
  detail.requestParameters = { secretId, secretString: planted };
  detail.responseElements = {
    arn: `arn:aws:secretsmanager:${region}:123456789012:secret:${secretId}-AbCdEf`,
  };
  detail.eventTime = eventTime;
  return JSON.stringify(event);
}

function capturingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  return { logger, lines };
}

describe('rotation queue consumer under bad messages and SQS faults', () => {
  const moto = connectMoto();
  const admin = new SQSClient({
    region,
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  let proxy: AwsProxy;
  let clients: AwsClients;

  async function newQueue(visibilityTimeout = 1): Promise<string> {
    const created = await admin.send(
      new CreateQueueCommand({
        QueueName: uniqueName('smk-faults'),
        Attributes: { VisibilityTimeout: String(visibilityTimeout) },
      }),
    );
    return created.QueueUrl ?? '';
  }

  async function send(queueUrl: string, bodies: readonly string[]): Promise<void> {
    for (let at = 0; at < bodies.length; at += 10) {
      await admin.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: bodies
            .slice(at, at + 10)
            .map((body, index) => ({ Id: String(at + index), MessageBody: body })),
        }),
      );
    }
  }

  async function visibleAndInFlight(queueUrl: string): Promise<number> {
    const answer = await admin.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(answer.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(answer.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  }

  before(async () => {
    proxy = await startAwsProxy({ target: moto.endpoint });
    clients = new AwsClients({ endpoint: proxy.endpoint, maxAttempts: 1, callTimeoutMs: 5_000 });
  });
  after(async () => {
    clients.destroy();
    admin.destroy();
    await proxy.stop();
  });

  it('duplicate, reordered, malformed and foreign messages: all deleted, only real changes confirmed, no body logged', async () => {
    const queueUrl = await newQueue();
    const bodies = [
      putEvent('team-a/db', '2024-03-08T20:43:19Z'),
      putEvent('team-a/db', '2024-03-08T20:43:19Z'), // duplicate delivery
      putEvent('team-a/api', '2024-03-08T20:45:00Z'),
      putEvent('team-a/db', '2024-03-08T20:40:00Z'), // older event arriving later
      `not json ${planted}`,
      JSON.stringify({ detail: { secretString: planted } }),
      JSON.stringify({ Type: 'Notification', Message: `{"broken": "${planted}"` }),
      JSON.stringify(fixture('s3-object-created.json')),
      JSON.stringify(fixture('cloudtrail-tag-resource.json')),
      JSON.stringify({ ...fixture('cloudtrail-put-secret-value.json'), source: 'aws.ssm' }),
    ];
    await send(queueUrl, bodies);
    const confirmed: ChangeHint[] = [];
    const { logger, lines } = capturingLogger();
    const consumer = createConsumer({
      queue: createQueueReader({ kind: 'default' }, { clients }, queueUrl, region),
      confirm: async (hint) => {
        confirmed.push(hint);
        return confirmed.filter((seen) => seen.secretId === hint.secretId).length === 1
          ? 'changed'
          : 'unchanged';
      },
      logger,
    });
    let received = 0;
    for (let round = 0; round < 10 && received < bodies.length; round += 1)
      received += await consumer.round(1);
    assert.equal(received, bodies.length);
    assert.deepEqual(confirmed.map((hint) => hint.secretId).sort(), [
      'team-a/api',
      'team-a/db',
      'team-a/db',
      'team-a/db',
    ]);
    await waitFor('queue empty', 10_000, async () => (await visibleAndInFlight(queueUrl)) === 0);
    assert.equal(await consumer.round(1), 0, 'nothing comes back');
    const log = lines.join('');
    assert.ok(!log.includes(planted), 'a message body reached the log');
    assert.equal((log.match(/queue message malformed; deleted/g) ?? []).length, 3);
  });

  it('a transient confirm failure keeps the message; it comes back and is handled once', async () => {
    const queueUrl = await newQueue(1);
    await send(queueUrl, [putEvent('team-a/flaky', '2024-03-08T20:43:19Z')]);
    let attempts = 0;
    const consumer = createConsumer({
      queue: createQueueReader({ kind: 'default' }, { clients }, queueUrl, region),
      confirm: async () => {
        attempts += 1;
        if (attempts === 1) throw new Error('DescribeSecret failed');
        return 'changed';
      },
      logger: pino({ level: 'silent' }),
    });
    assert.equal(await consumer.round(1), 1);
    assert.equal(await visibleAndInFlight(queueUrl), 1, 'kept for redelivery');
    await delay(1_200);
    await waitFor('redelivered and handled', 10_000, async () => (await consumer.round(1)) === 1);
    assert.equal(attempts, 2);
    await waitFor('queue empty', 10_000, async () => (await visibleAndInFlight(queueUrl)) === 0);
  });

  const faults: { name: string; fault: Fault }[] = [
    { name: 'throttling', fault: { kind: 'throttle' } },
    { name: 'HTTP 500', fault: { kind: 'status', status: 500 } },
    { name: 'outage', fault: { kind: 'outage' } },
  ];
  for (const { name, fault } of faults) {
    it(`${name} on ReceiveMessage: the loop backs off, then consumes once the fault clears`, async (t) => {
      const queueUrl = await newQueue();
      const seen: string[] = [];
      const consumer = createConsumer({
        queue: createQueueReader({ kind: 'default' }, { clients }, queueUrl, region),
        confirm: async (hint) => {
          seen.push(hint.secretId);
          return 'changed';
        },
        logger: pino({ level: 'silent' }),
        waitSeconds: 1,
        retryDelayMs: 200,
      });
      proxy.resetCounts();
      proxy.addFault({ fault });
      t.after(() => proxy.clearFaults());
      consumer.start();
      t.after(() => consumer.stop());
      await delay(4_000);
      const failedCalls = proxy.count({ api: 'ReceiveMessage' }) + proxy.refusedConnections();
      // Back-to-back retries would be ~4 s / round-trip; with 0.2, 0.4, 0.8, 1.6 s pauses: about 5.
      assert.ok(
        failedCalls >= 2 && failedCalls <= 8,
        `${failedCalls} ReceiveMessage calls in 4 s of ${name}`,
      );
      proxy.clearFaults();
      await send(queueUrl, [putEvent('team-a/after-fault', '2024-03-08T21:00:00Z')]);
      // The next try comes after the current pause (at most 3.2 s here), then a 1 s poll.
      await waitFor('the change after the fault consumed', 15_000, async () =>
        seen.includes('team-a/after-fault'),
      );
      t.diagnostic(`${name}: ${failedCalls} ReceiveMessage calls in 4 s, then consumed`);
    });
  }
});
