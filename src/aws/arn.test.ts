import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectiveRegion, secretIdMatches, splitSsmSelector } from './arn.ts';

const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf';

test('the region an ARN names wins', () => {
  assert.equal(effectiveRegion(arn, 'us-east-1'), 'eu-west-1');
  assert.equal(effectiveRegion('prod/db', 'us-east-1'), 'us-east-1');
});

test('secret ids match by name, full ARN and partial ARN, and nothing looser', () => {
  assert.ok(secretIdMatches('prod/db', arn, 'prod/db'));
  assert.ok(secretIdMatches(arn, arn, 'prod/db'));
  assert.ok(secretIdMatches('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db', arn, 'prod/db'));
  assert.ok(!secretIdMatches('prod', arn, 'prod/db'));
  assert.ok(!secretIdMatches('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/d', arn, 'prod/db'));
});

test('SSM selectors are split from names and ARNs', () => {
  assert.deepEqual(splitSsmSelector('/app/db'), { parameter: '/app/db' });
  assert.deepEqual(splitSsmSelector('/app/db:3'), { parameter: '/app/db', selector: '3' });
  assert.deepEqual(splitSsmSelector('/app/db:blue'), { parameter: '/app/db', selector: 'blue' });
  const ssmArn = 'arn:aws:ssm:us-east-1:123456789012:parameter/app/db';
  assert.deepEqual(splitSsmSelector(ssmArn), { parameter: ssmArn });
  assert.deepEqual(splitSsmSelector(`${ssmArn}:2`), { parameter: ssmArn, selector: '2' });
});
