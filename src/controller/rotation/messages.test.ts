import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { type ParsedMessage, parseQueueMessage } from './messages.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

const cases: { file: string; expected: ParsedMessage }[] = [
  {
    file: 'cloudtrail-put-secret-value.json',
    expected: {
      kind: 'hint',
      hint: {
        secretId: 'eks-controller-test-secret',
        arn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:eks-controller-test-secret-AbCdEf',
        region: 'us-east-1',
        reason: 'PutSecretValue',
        eventTime: new Date('2024-03-08T20:43:19Z'),
      },
    },
  },
  {
    file: 'cloudtrail-update-secret-version-stage.json',
    expected: {
      kind: 'hint',
      hint: {
        secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-XyZ123',
        region: 'eu-west-1',
        reason: 'UpdateSecretVersionStage',
        eventTime: new Date('2024-03-08T20:44:00Z'),
      },
    },
  },
  {
    file: 'cloudtrail-rotation-succeeded.json',
    expected: {
      kind: 'hint',
      hint: {
        secretId: 'arn:aws:secretsmanager:us-west-2:123456789012:secret:rds/app-Q1w2E3',
        arn: 'arn:aws:secretsmanager:us-west-2:123456789012:secret:rds/app-Q1w2E3',
        region: 'us-west-2',
        reason: 'RotationSucceeded',
        eventTime: new Date('2024-03-08T21:00:00Z'),
      },
    },
  },
  {
    file: 'secret-label-updated.json',
    expected: {
      kind: 'hint',
      hint: {
        secretId: 'mySecret',
        arn: 'arn:aws:secretsmanager:us-west-2:123456789012:secret:mySecret-a1b2c3',
        region: 'us-west-2',
        reason: 'SecretLabelUpdated:AWSCURRENT',
        eventTime: new Date('2024-02-06T16:43:48Z'),
      },
    },
  },
  {
    file: 'sns-secret-label-updated.json',
    expected: {
      kind: 'hint',
      hint: {
        secretId: 'mySecret',
        arn: 'arn:aws:secretsmanager:us-west-2:123456789012:secret:mySecret-a1b2c3',
        region: 'us-west-2',
        reason: 'SecretLabelUpdated:AWSCURRENT',
        eventTime: new Date('2024-02-06T16:43:48Z'),
      },
    },
  },
  {
    file: 'cloudtrail-tag-resource.json',
    expected: { kind: 'ignored', reason: 'TagResource changes no secret version' },
  },
  { file: 's3-object-created.json', expected: { kind: 'ignored', reason: 'event from another source' } },
];

for (const { file, expected } of cases) {
  test(`queue message ${file}`, () => {
    assert.deepEqual(parseQueueMessage(fixture(file)), expected);
  });
}

test('malformed bodies are named without their contents', () => {
  const secretLooking = 'password=hunter2';
  const bodies = [
    secretLooking,
    JSON.stringify({ note: secretLooking }),
    JSON.stringify({
      'detail-type': 'AWS API Call via CloudTrail',
      source: 'aws.secretsmanager',
      detail: { eventSource: 'secretsmanager.amazonaws.com', eventName: 'PutSecretValue' },
    }),
    JSON.stringify({ 'detail-type': 'Secret Label Updated', source: 'aws.secretsmanager', detail: {} }),
    JSON.stringify({
      Type: 'Notification',
      Message: JSON.stringify({ Type: 'Notification', Message: '{}' }),
    }),
    'x'.repeat(300 * 1024),
  ];
  for (const body of bodies) {
    const parsed = parseQueueMessage(body);
    assert.equal(parsed.kind, 'malformed', body.slice(0, 80));
    assert.doesNotMatch(JSON.stringify(parsed), /hunter2/);
  }
});

test('a failed call and a read are no hint; a PutSecretValue hint carries no request value', () => {
  const event = JSON.parse(fixture('cloudtrail-put-secret-value.json'));
  event.detail.errorCode = 'AccessDenied';
  assert.deepEqual(parseQueueMessage(JSON.stringify(event)), {
    kind: 'ignored',
    reason: 'PutSecretValue failed',
  });
  event.detail.errorCode = undefined;
  event.detail.eventName = 'GetSecretValue';
  assert.equal(parseQueueMessage(JSON.stringify(event)).kind, 'ignored');
  const hint = parseQueueMessage(fixture('cloudtrail-put-secret-value.json'));
  assert.doesNotMatch(JSON.stringify(hint), /HIDDEN_DUE_TO_SECURITY_REASONS|clientRequestToken/);
});

test('CreateSecret names the secret in requestParameters.name', () => {
  const event = JSON.parse(fixture('cloudtrail-put-secret-value.json'));
  event.detail.eventName = 'CreateSecret';
  event.detail.requestParameters = { name: 'new-secret' };
  event.detail.responseElements = {
    aRN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:new-secret-Zz9Yy8',
  };
  const parsed = parseQueueMessage(JSON.stringify(event));
  assert.equal(parsed.kind, 'hint');
  if (parsed.kind === 'hint') {
    assert.equal(parsed.hint.secretId, 'new-secret');
    assert.equal(parsed.hint.arn, 'arn:aws:secretsmanager:us-east-1:123456789012:secret:new-secret-Zz9Yy8');
  }
});
