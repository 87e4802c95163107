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
  assert.equal(tables.length, 3, 'mounts, where the first mount goes, peers');
  const [table] = tables;
  assert.match(table?.title ?? '', /^CSI Mount of 5 objects/);
  assert.deepEqual(table?.header.slice(0, 4), ['variant', 'mounts', 'p50 ms', 'p99 ms']);
  assert.equal(table?.rows.length, 4);
  assert.deepEqual(table?.rows[3]?.slice(0, 2), ['ASCP: mounts 2…N', '200']);
  assert.ok(parseTables(output('webhook')).length >= 2);
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

test('figures against goals: the fixtures (real runs with the peers) read as printed', () => {
  const csi = figuresOf('csi', output('csi'));
  assert.deepEqual(
    csi.map((row) => [row.smk, row.baseline, row.met]),
    [
      [134, 105, false],
      [2444, 1044, undefined],
      [9.56, 123, undefined],
      [0, 6, undefined],
      [62.23, 819, false],
      [0, 0, true],
    ],
  );
  const webhook = figuresOf('webhook', output('webhook'));
  assert.deepEqual(
    webhook.map((row) => [row.smk, row.baseline, row.met]),
    [
      [239, 396, false],
      [176, 341, false],
      [1452, 2485, false],
      [1754, 1964, false],
      [227, 243, undefined],
      [558, 542, undefined],
      [92.41, 17.21, false],
      [227, 309, false],
      [176, 307, true],
    ],
  );
  const sync = figuresOf('sync', output('sync'));
  assert.ok(
    sync.every((row) => row.met === undefined),
    'sync goals are judged only at N=10,000',
  );
  // The floor (the same writes alone, before and after smk) is the sync's peer: its spread shows.
  const floor = sync.find((row) => row.peer === 'floor: same writes only');
  assert.deepEqual(
    [floor?.smk, floor?.baseline, floor?.ratioMin, floor?.ratio, floor?.ratioMax],
    [40.19, 16.87, 1.17, 1.17, 2.38],
  );
  const rotation = figuresOf('rotation', output('rotation'));
  assert.equal(rotation[0]?.met, true);
  assert.equal(rotation[1]?.baseline, 114);
});

test('a failed benchmark or an unknown table shape is shown, not dropped', () => {
  const failed = figuresOf('csi', '', 'benchmark exited 1');
  assert.ok(failed.every((row) => row.note === 'benchmark exited 1' && row.smk === undefined));
  assert.equal(figuresOf('csi', 'no tables here')[0]?.note, 'table not found in the output');
  // A benchmark without goals here still shows up (its Peers table carries its own goals).
  assert.match(figuresOf('newbench', output('fetch'))[0]?.goal ?? '', /no goal mapped/);
  assert.match(figuresOf('newbench', output('csi'))[0]?.goal ?? '', /issue 19/);
});

test('ratios and the Markdown table', () => {
  assert.equal(formatRatio(162 / 30_000), '1/185');
  assert.equal(formatRatio(1.57), '1.57×');
  assert.equal(formatRatio(undefined), '–');
  const markdown = markdownTable(figuresOf('fetch', output('fetch')));
  assert.match(
    markdown,
    /^\| benchmark \| figure \| smk \| baseline \| ratio \(min–max over rounds\) \| goal \| met \|/,
  );
  assert.match(
    markdown,
    /\| fetch \| smk fetch: Secrets Manager calls per run \| 1 call \| 10 calls \| 0\.10× \|/,
  );
});
