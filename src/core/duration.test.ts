import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration } from './duration.ts';

describe('parseDuration', () => {
  const cases: [string, number | undefined][] = [
    ['30s', 30_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['500ms', 500],
    ['1m500ms', 60_500],
    ['0', 0],
    ['0s', 0],
    ['10', undefined],
    ['', undefined],
    ['1d', undefined],
    [' 30s', undefined],
    ['s', undefined],
    ['-5s', undefined],
  ];
  for (const [text, ms] of cases) {
    it(`${JSON.stringify(text)} → ${ms}`, () => assert.equal(parseDuration(text), ms));
  }
});
