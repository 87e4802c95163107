import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeightedLru } from './lru.ts';

test('evicts the least recently used entries to stay within the weight budget', () => {
  const lru = new WeightedLru<string, string>(10, (value) => value.length);
  lru.set('a', 'aaaa');
  lru.set('b', 'bbbb');
  assert.equal(lru.get('a'), 'aaaa', 'touching a makes b the oldest');
  lru.set('c', 'cccc');
  assert.equal(lru.get('b'), undefined);
  assert.equal(lru.get('a'), 'aaaa');
  assert.equal(lru.weight, 8);
});

test('an entry heavier than the budget is not stored; replacing re-weighs', () => {
  const lru = new WeightedLru<string, string>(5, (value) => value.length);
  lru.set('big', '123456');
  assert.equal(lru.size, 0);
  lru.set('k', '12');
  lru.set('k', '1234');
  assert.equal(lru.weight, 4);
  lru.delete('k');
  assert.equal(lru.weight, 0);
});
