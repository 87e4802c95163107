import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAwsRegion } from './regions.ts';

test('isAwsRegion: regions of every partition the SDK lists pass', () => {
  for (const region of [
    'us-east-1',
    'eu-west-1',
    'ap-southeast-2',
    'cn-north-1',
    'us-gov-west-1',
    'us-iso-east-1',
    'eusc-de-east-1',
  ]) {
    assert.equal(isAwsRegion(region), true, region);
  }
});

test('isAwsRegion: names shaped like regions but not listed, global pseudo-regions and junk fail', () => {
  for (const name of [
    'xx-yyyy-1',
    'us-east-99',
    'us-foo-3',
    'aws-global',
    'aws-cn-global',
    'US-EAST-1',
    '',
    'us-east-1 ',
  ]) {
    assert.equal(isAwsRegion(name), false, JSON.stringify(name));
  }
});
