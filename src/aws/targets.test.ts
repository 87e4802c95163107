import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from '../core/errors.ts';
import type { SecretRequest } from '../core/source.ts';
import { targetFor } from './object-types.ts';
import { chunks, mapLimit, type Target } from './targets.ts';

function target(request: SecretRequest): Target {
  const result = targetFor('me', request);
  if (result instanceof Error) assert.fail(result.message);
  return result;
}

test('Secrets Manager: AWSCURRENT is explicit by default; a version id pins', () => {
  const current = target({ objectType: 'secretsmanager', id: 'db', region: 'us-east-1' });
  assert.equal(current.versionStage, 'AWSCURRENT');
  assert.equal(current.slot.selector, 'stage:AWSCURRENT');
  assert.equal(current.slot.pinned, false);
  const pinned = target({ objectType: 'secretsmanager', id: 'db', region: 'us-east-1', versionId: 'v1' });
  assert.equal(pinned.versionStage, undefined);
  assert.equal(pinned.slot.selector, 'version:v1');
  assert.equal(pinned.slot.pinned, true);
});

test('the ARN region wins over the requested one', () => {
  const arn = 'arn:aws:secretsmanager:ap-south-1:123456789012:secret:db-AbCdEf';
  assert.equal(target({ objectType: 'secretsmanager', id: arn, region: 'us-east-1' }).region, 'ap-south-1');
});

test('SSM: selectors as fields or in the name; numbers are versions, words labels', () => {
  const byName = target({ objectType: 'ssmparameter', id: '/app/db:4', region: 'us-east-1' });
  assert.equal(byName.id, '/app/db');
  assert.equal(byName.versionId, '4');
  assert.equal(byName.slot.pinned, true);
  const label = target({ objectType: 'ssmparameter', id: '/app/db:blue', region: 'us-east-1' });
  assert.equal(label.versionStage, 'blue');
  assert.equal(label.slot.selector, 'label:blue');
  const latest = target({ objectType: 'ssmparameter', id: '/app/db', region: 'us-east-1' });
  assert.equal(latest.slot.selector, 'latest');
});

test('refusals name the id and the field', () => {
  const cases: [SecretRequest, string, string][] = [
    [{ objectType: 'secretsmanager', id: '', region: 'us-east-1' }, 'id', 'secret id is empty'],
    [{ objectType: 'secretsmanager', id: 'db', region: '' }, 'region', 'db: no region (give one, or an ARN)'],
    [
      { objectType: 'ssmparameter', id: '/p:3', region: 'us-east-1', versionId: '4' },
      'id',
      '/p:3: a selector in the name and a version/label both given',
    ],
    [
      { objectType: 'ssmparameter', id: '/p', region: 'us-east-1', versionId: '4', versionStage: 'x' },
      'versionId',
      '/p: SSM takes a version or a label, not both',
    ],
    [
      { objectType: 'ssmparameter', id: '/p', region: 'us-east-1', versionId: 'abc' },
      'versionId',
      '/p: SSM version must be a number',
    ],
  ];
  for (const [request, field, message] of cases) {
    const error = targetFor('me', request);
    assert.ok(error instanceof InvalidInputError, message);
    assert.equal(error.field, field);
    assert.equal(error.message, message);
  }
});

test('chunks and mapLimit', async () => {
  assert.deepEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  let running = 0;
  let peak = 0;
  const out = await mapLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
    running += 1;
    peak = Math.max(peak, running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    running -= 1;
    return n * 10;
  });
  assert.deepEqual(out, [10, 20, 30, 40, 50, 60]);
  assert.equal(peak, 2);
});
