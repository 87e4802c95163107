import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimeout } from './doctor.ts';

describe('smk doctor --timeout', () => {
  it("reads smk's one duration grammar: fractions and compound durations too", () => {
    assert.equal(parseTimeout(undefined), 10_000);
    assert.equal(parseTimeout('500ms'), 500);
    assert.equal(parseTimeout('1.5s'), 1500);
    assert.equal(parseTimeout('1m30s'), 90_000);
  });

  it('refuses a bare number and a zero deadline, naming the flag', () => {
    for (const text of ['10', '0', '0s', 'soon']) {
      assert.throws(() => parseTimeout(text), /--timeout: expected a duration like 500ms, 10s or 1m/, text);
    }
  });
});
