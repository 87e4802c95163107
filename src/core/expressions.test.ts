import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createExpressionEvaluator } from './expressions.ts';
import { registry } from './metrics.ts';

const value = JSON.stringify({ password: 'Zq7-budget-test', port: 5432, hosts: ['a', 'b'] });

/** Finding 5's expression: each `| [@,@]` doubles the work of the comparison (2^30 steps). */
const doublingExpression = (steps: number): string => {
  const chain = `password${' | [@,@]'.repeat(steps)}`;
  return `to_string((${chain}) == (${chain}))`;
};

async function outcomes(): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('smk_jmespath_expressions_total')?.get();
  return Object.fromEntries(
    (metric?.values ?? []).map((v) => [
      [v.labels.outcome, v.labels.reason].filter(Boolean).join('/'),
      v.value,
    ]),
  );
}

describe('createExpressionEvaluator', () => {
  const evaluator = createExpressionEvaluator({ workers: 1 });
  after(() => evaluator.close());

  test('gives each expression’s string, in order', async () => {
    const outcome = await evaluator.evaluate(
      value,
      ['to_string(port)', "join('+', hosts)", 'password'],
      1024,
    );
    assert.deepEqual(outcome, { ok: true, results: ['5432', 'a+b', 'Zq7-budget-test'] });
  });

  test('no string from any expression: one outcome, nothing about which or why', async () => {
    for (const expressions of [['port'], ['hosts'], ['abs(password)'], ['missing'], ['password', '`1`']]) {
      assert.deepEqual(await evaluator.evaluate(value, expressions, 1024), {
        ok: false,
        outcome: 'no_string',
      });
    }
  });

  test('a result longer than the limit is no string', async () => {
    assert.deepEqual(await evaluator.evaluate(value, ['password'], 4), { ok: false, outcome: 'no_string' });
  });

  test('finding 5: the doubling expression is stopped at the budget, off the event loop; the next object is served', async () => {
    const before = (await outcomes())['failed/OverBudget'] ?? 0;
    let turns = 0;
    const ticker = setInterval(() => {
      turns += 1;
    }, 5);
    try {
      const outcome = await evaluator.evaluate(value, [doublingExpression(30)], 1024);
      assert.deepEqual(outcome, { ok: false, outcome: 'over_budget' });
    } finally {
      clearInterval(ticker);
    }
    // The worker burned 100 ms of CPU meanwhile; an event loop blocked by it would not have turned.
    assert.ok(turns >= 5, `the event loop turned only ${turns} times while the expression ran`);
    assert.equal((await outcomes())['failed/OverBudget'], before + 1);
    // The stopped worker was replaced: the next evaluation works.
    assert.deepEqual(await evaluator.evaluate(value, ['password'], 1024), {
      ok: true,
      results: ['Zq7-budget-test'],
    });
  });

  test('a cheap expression is not cut short by a busy neighbour: jobs queue behind the one worker', async () => {
    const results = await Promise.all([
      evaluator.evaluate(value, [doublingExpression(30)], 1024),
      evaluator.evaluate(value, ['to_string(port)'], 1024),
    ]);
    assert.deepEqual(results, [
      { ok: false, outcome: 'over_budget' },
      { ok: true, results: ['5432'] },
    ]);
  });
});

test('close: waiting and later evaluations fail as worker_failed, and the process may exit', async () => {
  const evaluator = createExpressionEvaluator({ workers: 1 });
  const running = evaluator.evaluate(value, [doublingExpression(30)], 1024);
  const waiting = evaluator.evaluate(value, ['password'], 1024);
  await evaluator.close();
  assert.deepEqual(await running, { ok: false, outcome: 'worker_failed' });
  assert.deepEqual(await waiting, { ok: false, outcome: 'worker_failed' });
  assert.deepEqual(await evaluator.evaluate(value, ['password'], 1024), {
    ok: false,
    outcome: 'worker_failed',
  });
});
