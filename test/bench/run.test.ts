/**
 * `npm run bench`'s reading of the benchmarks' tables: fixtures are real outputs of a quick run
 * (test/bench/fixtures), so a change of a benchmark's table that the runner no longer reads shows
 * up here as a missing figure rather than as a silently empty row in bench/results.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  callsIn,
  figureSpecs,
  figuresOf,
  formatRatio,
  markdownTable,
  numberIn,
  parseTables,
} from '../../bench/run.ts';

const output = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}.txt`, import.meta.url), 'utf8');

test('tables: columns come from the dash line, and a sentence after a table ends it', () => {
  const tables = parseTables(output('csi'));
  assert.equal(tables.length, 1);
  const [table] = tables;
  assert.match(table?.title ?? '', /^CSI Mount of 5 objects/);
  assert.deepEqual(table?.header.slice(0, 4), ['variant', 'mounts', 'p50 ms', 'p99 ms']);
  assert.equal(table?.rows.length, 3, 'the "smk after the first mount" sentence is not a row');
  assert.deepEqual(table?.rows[2]?.slice(0, 2), ["baseline (ASCP's pattern): every mount", '30']);
  assert.equal(parseTables(output('webhook')).length, 2);
});

test('cells read as numbers: units, thousands separators, call lists, words', () => {
  assert.equal(numberIn('1.23 s'), 1.23);
  assert.equal(numberIn('1,131'), 1131);
  assert.equal(numberIn('never'), undefined);
  assert.equal(callsIn('1 BatchGetSecretValue'), 1);
  assert.equal(callsIn('10 GetSecretValue, 2 DescribeSecret'), 12);
  assert.equal(callsIn('-'), 0);
});

test('every mapped figure of every benchmark is found in its output', () => {
  for (const bench of Object.keys(figureSpecs)) {
    for (const row of figuresOf(bench, output(bench))) {
      assert.equal(row.note, undefined, `${bench}: ${row.figure}: ${row.note}`);
      assert.ok(row.smk !== undefined, `${bench}: ${row.figure} has no smk figure`);
      assert.ok(row.baseline !== undefined, `${bench}: ${row.figure} has no baseline`);
    }
  }
});

test('figures against goals: the quick run fixtures read as printed', () => {
  const csi = figuresOf('csi', output('csi'));
  assert.deepEqual(
    csi.map((row) => [row.smk, row.baseline, row.met]),
    [
      [12.72, 187, true],
      [0, 150, true],
    ],
  );
  const webhook = figuresOf('webhook', output('webhook'));
  assert.deepEqual(
    webhook.map((row) => [row.smk, row.baseline, row.met]),
    [
      [414, 64.86, false],
      [1131, 529, true],
    ],
  );
  const sync = figuresOf('sync', output('sync'));
  assert.ok(
    sync.every((row) => row.met === undefined),
    'sync goals are judged only at N=10,000',
  );
  const rotation = figuresOf('rotation', output('rotation'));
  assert.equal(rotation[0]?.met, true);
  assert.equal(rotation[1]?.baseline, 114);
});

test('a failed benchmark or an unknown table shape is shown, not dropped', () => {
  const failed = figuresOf('csi', '', 'benchmark exited 1');
  assert.ok(failed.every((row) => row.note === 'benchmark exited 1' && row.smk === undefined));
  assert.equal(figuresOf('csi', 'no tables here')[0]?.note, 'table not found in the output');
  assert.match(figuresOf('newbench', output('csi'))[0]?.goal ?? '', /no goal mapped/);
});

test('ratios and the Markdown table', () => {
  assert.equal(formatRatio(162 / 30_000), '1/185');
  assert.equal(formatRatio(1.57), '1.57×');
  assert.equal(formatRatio(undefined), '–');
  const markdown = markdownTable(figuresOf('fetch', output('fetch')));
  assert.match(markdown, /^\| benchmark \| figure \| smk \| baseline \| ratio \| goal \| met \|/);
  assert.match(
    markdown,
    /\| fetch \| smk fetch: Secrets Manager calls per run \| 1 call \| 10 calls \| 0\.10× \|/,
  );
});
