import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createExpressionEvaluator, createWorkerPool } from './expressions.ts';
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

describe('createWorkerPool: templates', () => {
  // A tight CPU budget, so the pool's stop (not liquidjs's own wall-time renderLimit) ends the loop.
  const pool = createWorkerPool({ workers: 1, templateBudget: { cpuMs: 50 } });
  after(() => pool.close());
  const billion = `{% assign xs = "${Array.from({ length: 1000 }, (_, i) => i).join(',')}" | split: "," %}{% for a in xs %}{% for b in xs %}{% for c in xs %}{{ password | size }}{% endfor %}{% endfor %}{% endfor %}`;

  async function renderOutcomes(): Promise<Record<string, number>> {
    const metric = await registry.getSingleMetric('smk_template_renders_total')?.get();
    return Object.fromEntries(
      (metric?.values ?? []).map((v) => [
        [v.labels.outcome, v.labels.reason].filter(Boolean).join('/'),
        v.value,
      ]),
    );
  }

  test('renders each template from its text and the values it names', async () => {
    const result = await pool.render(
      {
        texts: ['{{ user }}:{{ password | url_encode }}', '{{ password | size }}'],
        scopes: [{ user: 'app', password: 'a b' }, { password: 'a b' }],
      },
      'team-a',
    );
    assert.deepEqual(result, { ok: true, rendered: ['app:a+b', '3'] });
  });

  test('a name not in its scope is not there to read: the render fails, naming only which template', async () => {
    const result = await pool.render(
      { texts: ['{{ user }}', '{{ password }}'], scopes: [{ user: 'app' }, {}] },
      'team-a',
    );
    assert.deepEqual(result, { ok: false, failedAt: 1, reason: 'failed' });
  });

  test('over its CPU budget: the worker is stopped off the event loop, naming the template it was in; the next render works', async () => {
    const before = (await renderOutcomes())['failed/OverBudget'] ?? 0;
    let turns = 0;
    const ticker = setInterval(() => {
      turns += 1;
    }, 5);
    try {
      const result = await pool.render(
        { texts: ['{{ user }}', billion], scopes: [{ user: 'app' }, { password: 'Zq7-budget-test' }] },
        'team-a',
      );
      assert.deepEqual(result, { ok: false, failedAt: 1, reason: 'over_budget' });
    } finally {
      clearInterval(ticker);
    }
    assert.ok(turns >= 5, `the event loop turned only ${turns} times while the template ran`);
    assert.equal((await renderOutcomes())['failed/OverBudget'], before + 1);
    // The stopped worker was replaced: the next render (and expression) works.
    assert.deepEqual(await pool.render({ texts: ['{{ user }}'], scopes: [{ user: 'app' }] }, 'team-a'), {
      ok: true,
      rendered: ['app'],
    });
    assert.deepEqual(await pool.evaluate(value, ['password'], 1024), {
      ok: true,
      results: ['Zq7-budget-test'],
    });
  });
});

test('fairness: one namespace’s queue of slow templates does not hold another namespace’s render', async () => {
  const pool = createWorkerPool({ workers: 2, templateBudget: { cpuMs: 50 } });
  try {
    // Both workers started first: a worker's start (slow on a loaded machine) is not what is compared.
    const warm = { texts: ['{{ user }}'], scopes: [{ user: 'app' }] };
    await Promise.all([pool.render(warm, 'warm-a'), pool.render(warm, 'warm-b')]);
    const spin = `{% for a in (1..1000000) %}{% for b in (1..1000) %}{{ b }}{% endfor %}{% endfor %}`;
    const finished: string[] = [];
    const slow = Array.from({ length: 4 }, (_, i) =>
      pool.render({ texts: [spin], scopes: [{}] }, 'noisy').then((result) => {
        finished.push(`noisy-${i}`);
        return result;
      }),
    );
    const other = pool
      .render({ texts: ['{{ user }}'], scopes: [{ user: 'app' }] }, 'quiet')
      .then((result) => {
        finished.push('quiet');
        return result;
      });
    assert.deepEqual(await other, { ok: true, rendered: ['app'] });
    for (const result of await Promise.all(slow)) assert.equal(result.ok, false);
    // "noisy" holds at most one of the two workers, so "quiet" ran at once on the other.
    assert.equal(finished[0], 'quiet', `finished in order ${finished.join(', ')}`);
  } finally {
    await pool.close();
  }
});
