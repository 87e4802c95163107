import assert from 'node:assert/strict';
import { test } from 'node:test';
import { targetFor } from './object-types.ts';
import { parameterCalls } from './ssm.ts';
import type { Target } from './targets.ts';

const target = (id: string): Target => {
  const result = targetFor('me', { objectType: 'ssmparameter', id, region: 'us-east-1' });
  if (result instanceof Error) throw result;
  return result;
};

test('GetParameters calls hold at most 10 names and each parameter at most once', () => {
  const targets = [
    ...Array.from({ length: 11 }, (_, at) => target(`/p${at}`)),
    target('/p0:1'),
    target('/p0:blue'),
  ];
  const calls = parameterCalls(targets);
  assert.equal(calls.flat().length, 13);
  for (const call of calls) {
    assert.ok(call.length <= 10);
    assert.equal(new Set(call.map((item) => item.id)).size, call.length);
  }
  assert.equal(calls.length, 3, '/p0 is wanted three ways: three calls');
});
