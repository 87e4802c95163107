/**
 * `npm run bench`: every benchmark in bench/ (fetch, webhook, sync, rotation, csi — any
 * bench/*.ts but this runner, table.ts and peers.ts), one after another (they share the machine), and one
 * table of the figures that matter: smk's figure, the baseline measured in the same run, the
 * ratio, and the goal from the benchmark's issue. Written to bench/results/latest.json and
 * bench/results/latest.md; each benchmark's own output is kept beside them (bench/results/<name>.txt).
 *
 *   npm run bench                      all of them at their goals' sizes (sync at N=10,000/M=1,000):
 *                                      50 min on 2 cores under a 1-minute load average of 9–35 (sync 27 min,
 *                                      webhook-memory 14 with its 10-minute soak, webhook 3, csi 1.5;
 *                                      each starts its own world); the first run also builds the peers
 *                                      (bench/tools/build-peers.sh: about 15 min on a busy 2-core machine)
 *   npm run bench -- csi fetch         only these (their rows replace those of the last run)
 *   npm run bench -- --quick           smaller sizes (a smoke run, figures not comparable)
 *   npm run bench:<name>               one benchmark on its own, with its full table
 *
 * The figures are read from the tables the benchmarks print (bench/table.ts), so each benchmark
 * stays runnable alone and this file holds only the mapping to the issues' goals. Figures beside a
 * real peer (the Go injector, ASCP) come from the benchmarks' peer tables as they are, with the
 * min/median/max of their per-round ratios.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { peerTableTitle } from './peers.ts';

const root = new URL('..', import.meta.url).pathname;
const benchDir = join(root, 'bench');
const resultsDir = join(benchDir, 'results');

// ---- the tables a benchmark prints -------------------------------------------------------------

export interface PrintedTable {
  readonly title: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/**
 * Tables in the output of bench/table.ts's printTable: a title, a header, a line of dashes whose
 * runs give the column widths, then rows laid out on those columns. A line whose column gaps are
 * not blank (a sentence printed after the table) ends it.
 */
export function parseTables(output: string): PrintedTable[] {
  const lines = output.split('\n');
  const tables: PrintedTable[] = [];
  for (let i = 2; i < lines.length; i += 1) {
    const dashes = lines[i] ?? '';
    if (!/^-+( {2}-+)*$/.test(dashes)) continue;
    const widths = dashes.split('  ').map((run) => run.length);
    const starts = widths.map((_, column) =>
      widths.slice(0, column).reduce((sum, width) => sum + width + 2, 0),
    );
    const cells = (line: string): string[] =>
      starts.map((start, column) => line.slice(start, start + (widths[column] ?? 0)).trim());
    const fitsColumns = (line: string): boolean =>
      starts.slice(1).every((start) => line.length <= start - 2 || line.slice(start - 2, start) === '  ');
    const rows: string[][] = [];
    let next = i + 1;
    for (; next < lines.length; next += 1) {
      const line = lines[next] ?? '';
      if (line.trim() === '' || !fitsColumns(line)) break;
      rows.push(cells(line));
    }
    tables.push({ title: (lines[i - 2] ?? '').trim(), header: cells(lines[i - 1] ?? ''), rows });
    i = next;
  }
  return tables;
}

/** The first number in a cell ("1.23 s" → 1.23, "3 BatchGetSecretValue" → 3, "never" → undefined). */
export function numberIn(cell: string | undefined): number | undefined {
  const match = cell ? /-?\d[\d,]*(\.\d+)?/.exec(cell) : null;
  return match ? Number(match[0].replaceAll(',', '')) : undefined;
}

/** Sum of "N Api" parts ("1 BatchGetSecretValue, 2 GetSecretValue" → 3); "-" → 0. */
export function callsIn(cell: string | undefined): number | undefined {
  if (cell === undefined) return undefined;
  if (cell.trim() === '-' || cell.trim() === '') return 0;
  const counts = [...cell.matchAll(/(\d+)\s+[A-Za-z]/g)].map((match) => Number(match[1]));
  return counts.length > 0 ? counts.reduce((sum, count) => sum + count, 0) : numberIn(cell);
}

// ---- which figures, against which goals --------------------------------------------------------

interface Cell {
  /** Matches the row's first cell(s) (joined with " | " so a row can be picked by two columns). */
  readonly row: RegExp;
  /** Column by header name, or by position when headers repeat ("p95" twice). */
  readonly column: string | number;
  /** How the cell reads as a number (default: its first number). */
  readonly read?: (cell: string | undefined) => number | undefined;
}

interface FigureSpec {
  readonly figure: string;
  readonly unit: string;
  /** Which table (by its title). */
  readonly table: RegExp;
  readonly smk: Cell;
  readonly baseline?: Cell;
  readonly goal: string;
  /** Whether the goal is met; undefined when it cannot be judged at this size. */
  readonly met?: (smk: number, baseline: number | undefined, table: PrintedTable) => boolean | undefined;
}

const isLargeSync = (table: PrintedTable): boolean => /\b10,?000 SecretSyncs\b/.test(table.title);

/** The figures of each issue's benchmark section, keyed by benchmark file name. */
export const figureSpecs: Readonly<Record<string, readonly FigureSpec[]>> = {
  fetch: [
    {
      figure: 'smk fetch of 10 secrets, whole process, median',
      unit: 'ms',
      table: /^smk fetch/,
      smk: { row: /^smk fetch/, column: 'median ms' },
      baseline: { row: /^baseline/, column: 'median ms' },
      goal: '≤ 250 ms (issue 2)',
      met: (smk) => smk <= 250,
    },
    {
      figure: 'smk fetch: Secrets Manager calls per run',
      unit: 'calls',
      table: /^smk fetch/,
      smk: { row: /^smk fetch/, column: 'Secrets Manager calls per run', read: callsIn },
      baseline: { row: /^baseline/, column: 'Secrets Manager calls per run', read: callsIn },
      goal: '1 batch call (issue 2)',
      met: (smk) => smk === 1,
    },
  ],
  webhook: [
    {
      figure: 'webhook p99 at 1,000 req/s, 3-container pod injected',
      unit: 'ms',
      table: /^Admission webhook/,
      smk: { row: /injected \| 1,000 req\/s/, column: 'p99 ms' },
      baseline: { row: /baseline\) \| 1,000 req\/s/, column: 'p99 ms' },
      goal: '≤ 2 ms (issue 4)',
      met: (smk) => smk <= 2,
    },
    {
      figure: 'webhook throughput at saturation, injected',
      unit: 'req/s',
      table: /^Admission webhook/,
      smk: { row: /injected \| saturation/, column: 'req/s' },
      baseline: { row: /baseline\) \| saturation/, column: 'req/s' },
      goal: '≥ 50% of the bare baseline (issue 4)',
      met: (smk, baseline) => (baseline === undefined ? undefined : smk >= baseline / 2),
    },
  ],
  sync: [
    {
      figure: 'sync cold start: time to all Ready',
      unit: 's',
      table: /^sync cold start/,
      smk: { row: /^smk controller/, column: 'time to all Ready (s)' },
      baseline: { row: /^baseline/, column: 'time to all Ready (s)' },
      goal: '≤ 60 s at N=10,000/M=1,000 (issue 5)',
      met: (smk, _baseline, table) => (isLargeSync(table) ? smk <= 60 : undefined),
    },
    {
      figure: 'sync cold start: Secrets Manager calls',
      unit: 'calls',
      table: /^sync cold start/,
      smk: { row: /^smk controller/, column: 'Secrets Manager calls' },
      baseline: { row: /^baseline/, column: 'Secrets Manager calls' },
      goal: '≤ 1,100 at N=10,000/M=1,000 (issue 5)',
      met: (smk, _baseline, table) => (isLargeSync(table) ? smk <= 1100 : undefined),
    },
    {
      figure: 'sync cold start: peak RSS of the controller',
      unit: 'MB',
      table: /^sync cold start/,
      smk: { row: /^smk controller/, column: 'peak RSS (MB)' },
      baseline: { row: /^baseline/, column: 'peak RSS (MB)' },
      goal: '≤ 250 MB at N=10,000/M=1,000 (issue 5)',
      met: (smk, _baseline, table) => (isLargeSync(table) ? smk <= 250 : undefined),
    },
  ],
  rotation: [
    {
      figure: 'rotation: Secrets Manager calls per simulated hour',
      unit: 'calls/h',
      table: /^Secrets Manager calls per hour/,
      smk: { row: /^smk/, column: 'calls/h' },
      baseline: { row: /^\(a\) CSI rotation/, column: 'calls/h' },
      goal: '≤ 1/100 of the CSI rotation pattern (issue 6)',
      met: (smk, baseline) => (baseline === undefined ? undefined : smk * 100 <= baseline),
    },
    {
      figure: 'rotation: change → rollout started, p95',
      unit: 's',
      table: /^Change → effect latency/,
      smk: { row: /^smk/, column: 4 },
      baseline: { row: /^\(a\) CSI rotation/, column: 2 },
      goal: '≤ 2 s via events (issue 6)',
      met: (smk) => smk <= 2,
    },
    {
      figure: 'rotation: change → Secret updated, p95',
      unit: 's',
      table: /^Change → effect latency/,
      smk: { row: /^smk/, column: 2 },
      baseline: { row: /^\(a\) CSI rotation/, column: 2 },
      goal: '(reported with the rollout goal)',
    },
  ],
  discovery: [
    {
      figure: 'discovery: Secrets Manager calls per hour, 1,000 matched, 1% change/h',
      unit: 'calls/h',
      table: /^Discovery: Secrets Manager calls per hour/,
      smk: { row: /^smk/, column: 'calls/h' },
      baseline: { row: /^baseline/, column: 'calls/h' },
      goal: 'measured (issue 16)',
    },
  ],
  csi: [
    {
      figure: 'CSI Mount of 5 objects, unchanged versions, p99',
      unit: 'ms',
      table: /^CSI Mount/,
      smk: { row: /^smk: mounts 2/, column: 'p99 ms' },
      baseline: { row: /^ASCP: mounts 2/, column: 'p99 ms' },
      goal: '≤ 20 ms (issue 7)',
      met: (smk) => smk <= 20,
    },
    {
      figure: 'CSI: value reads after the first mount',
      unit: 'calls',
      table: /^CSI Mount/,
      smk: {
        row: /^smk: mounts 2/,
        column: 'GetSecretValue',
      },
      baseline: { row: /^ASCP: mounts 2/, column: 'GetSecretValue' },
      goal: '0 GetSecretValue (issue 7)',
      met: (smk) => smk === 0,
    },
  ],
};

/** Arguments of a full run: the size each issue states its goals at. */
const fullArgs: Readonly<Record<string, readonly string[]>> = {
  sync: ['--large'],
};

/** Arguments for `--quick`: a smoke run of each benchmark (figures not comparable with the goals). */
const quickArgs: Readonly<Record<string, readonly string[]>> = {
  fetch: ['--runs', '5'],
  webhook: ['--duration', '2', '--rounds', '1'],
  sync: ['--n', '100', '--m', '20'],
  rotation: ['--secrets', '100', '--pods', '500', '--trials', '5'],
  csi: ['--rounds', '2', '--mounts', '10'],
  discovery: ['--secrets', '100'],
  'webhook-memory': ['--seconds', '20', '--flood-seconds', '10', '--peer-seconds', '10'],
};

export interface FigureRow {
  readonly bench: string;
  readonly figure: string;
  readonly unit: string;
  readonly smk: number | undefined;
  readonly baseline: number | undefined;
  /** What the baseline is when it is a real peer (the Go injector, ASCP); else a self-made baseline. */
  readonly peer?: string;
  /** smk ÷ baseline (for a peer: the median of the per-round ratios). */
  readonly ratio: number | undefined;
  /** For a peer: the smallest and largest per-round ratio. */
  readonly ratioMin?: number;
  readonly ratioMax?: number;
  readonly goal: string;
  readonly met: boolean | undefined;
  /** Why a figure is missing (the benchmark failed, or printed no such row). */
  readonly note?: string;
}

function cellOf(table: PrintedTable, cell: Cell): string | undefined {
  const index = typeof cell.column === 'number' ? cell.column : table.header.indexOf(cell.column);
  const row = table.rows.find((candidate) => cell.row.test(candidate.slice(0, 2).join(' | ')));
  return index < 0 || row === undefined ? undefined : row[index];
}

/**
 * Rows of a benchmark's peer tables (bench/peers.ts printPeerTable): each row is already a figure
 * with smk, the peer, the per-round ratios and the goal, so no mapping is needed here.
 */
export function peerFiguresOf(bench: string, tables: readonly PrintedTable[]): FigureRow[] {
  return tables
    .filter((table) => table.title.startsWith(peerTableTitle))
    .flatMap((table) =>
      table.rows.map((cells): FigureRow => {
        const cell = (name: string): string | undefined => cells[table.header.indexOf(name)];
        const met = cell('met');
        const ratioMin = numberIn(cell('ratio min'));
        const ratioMax = numberIn(cell('ratio max'));
        return {
          bench,
          figure: cell('figure') ?? '',
          unit: (cell('smk') ?? '').replace(/^[-\d.,]+\s*/, ''),
          smk: numberIn(cell('smk')),
          baseline: numberIn(cell('peer figure')),
          peer: cell('peer') ?? '',
          ratio: numberIn(cell('ratio median')),
          ...(ratioMin === undefined ? {} : { ratioMin }),
          ...(ratioMax === undefined ? {} : { ratioMax }),
          goal: cell('goal') ?? '',
          met: met === 'met' ? true : met === 'NOT met' ? false : undefined,
        };
      }),
    );
}

/** The figures of one benchmark's output, against its goals. */
export function figuresOf(bench: string, output: string, failure?: string): FigureRow[] {
  const tables = parseTables(output);
  const peerRows = peerFiguresOf(bench, tables);
  const specs = figureSpecs[bench];
  if (!specs) {
    if (peerRows.length > 0) return peerRows;
    // A benchmark this runner has no goals for still shows up, with its tables' row count.
    return [
      {
        bench,
        figure: `${tables.length} table(s) printed`,
        unit: '',
        smk: undefined,
        baseline: undefined,
        ratio: undefined,
        goal: '(no goal mapped in bench/run.ts)',
        met: undefined,
        ...(failure ? { note: failure } : {}),
      },
    ];
  }
  const specRows = specs.map((spec) => {
    const table = tables.find((candidate) => spec.table.test(candidate.title));
    const read = (cell: Cell): number | undefined =>
      table ? (cell.read ?? numberIn)(cellOf(table, cell)) : undefined;
    const smk = read(spec.smk);
    const baseline = spec.baseline ? read(spec.baseline) : undefined;
    const note =
      failure ??
      (table === undefined
        ? 'table not found in the output'
        : smk === undefined
          ? 'row not found'
          : undefined);
    return {
      bench,
      figure: spec.figure,
      unit: spec.unit,
      smk,
      baseline,
      ratio: smk !== undefined && baseline ? smk / baseline : undefined,
      goal: spec.goal,
      met: smk !== undefined && table && spec.met ? spec.met(smk, baseline, table) : undefined,
      ...(note ? { note } : {}),
    };
  });
  return [...peerRows, ...specRows];
}

// ---- output ------------------------------------------------------------------------------------

function format(value: number | undefined, unit = ''): string {
  if (value === undefined) return '–';
  if (unit === 'calls' && value === 1) return '1 call';
  const text = Number.isInteger(value) ? String(value) : value >= 100 ? value.toFixed(0) : value.toFixed(2);
  return unit ? `${text} ${unit}` : text;
}

/** smk ÷ baseline; small ratios as 1/N, which is how the goals are written. */
export function formatRatio(ratio: number | undefined): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return '–';
  if (ratio === 0) return '0×';
  if (ratio < 0.1) return `1/${Math.round(1 / ratio)}`;
  return `${format(ratio)}×`;
}

function metText(met: boolean | undefined): string {
  return met === undefined ? '–' : met ? 'yes' : 'NO';
}

const headers = ['benchmark', 'figure', 'smk', 'baseline', 'ratio (min–max over rounds)', 'goal', 'met'];

function ratioText(row: FigureRow): string {
  const median = formatRatio(row.ratio);
  if (row.ratioMin === undefined || row.ratioMax === undefined) return median;
  return `${median} (${formatRatio(row.ratioMin)}–${formatRatio(row.ratioMax)})`;
}

function cellsOf(row: FigureRow): string[] {
  return [
    row.bench,
    row.note ? `${row.figure} (${row.note})` : row.figure,
    format(row.smk, row.unit),
    row.peer ? `${row.peer}: ${format(row.baseline, row.unit)}` : format(row.baseline, row.unit),
    ratioText(row),
    row.goal,
    metText(row.met),
  ];
}

export function markdownTable(rows: readonly FigureRow[]): string {
  const escapePipes = (cell: string): string => cell.replaceAll('|', '\\|');
  return [
    `| ${headers.join(' | ')} |`,
    `| ${headers.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${cellsOf(row).map(escapePipes).join(' | ')} |`),
  ].join('\n');
}

function textTable(rows: readonly FigureRow[]): string {
  const table = rows.map(cellsOf);
  const widths = headers.map((name, column) =>
    Math.max(name.length, ...table.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...table.map(line)].join('\n');
}

// ---- running -----------------------------------------------------------------------------------

const benchEntrySchema = z.object({
  name: z.string(),
  args: z.array(z.string()),
  ranAt: z.string(),
  seconds: z.number(),
  exitCode: z.number(),
});
type BenchEntry = z.infer<typeof benchEntrySchema>;

const figureRowSchema = z.object({
  bench: z.string(),
  figure: z.string(),
  unit: z.string(),
  smk: z.number().optional(),
  baseline: z.number().optional(),
  peer: z.string().optional(),
  ratio: z.number().optional(),
  ratioMin: z.number().optional(),
  ratioMax: z.number().optional(),
  goal: z.string(),
  met: z.boolean().optional(),
  note: z.string().optional(),
});

const summarySchema = z.object({
  quick: z.boolean(),
  node: z.string(),
  machine: z.string(),
  benchmarks: z.array(benchEntrySchema),
  figures: z.array(figureRowSchema),
});
type Summary = z.infer<typeof summarySchema>;

/** The last results, when they are of the same kind (full or quick) and still readable. */
async function readPrevious(quick: boolean): Promise<Summary | undefined> {
  try {
    const parsed = summarySchema.safeParse(
      JSON.parse(await readFile(join(resultsDir, 'latest.json'), 'utf8')),
    );
    return parsed.success && parsed.data.quick === quick ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

interface BenchRun {
  readonly name: string;
  readonly args: readonly string[];
  readonly seconds: number;
  readonly exitCode: number;
  readonly output: string;
}

function runBench(name: string, args: readonly string[]): Promise<BenchRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(benchDir, `${name}.ts`), ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      process.stderr.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        name,
        args,
        seconds: (performance.now() - started) / 1000,
        exitCode: code ?? (signal ? 1 : 0),
        output: Buffer.concat(chunks).toString('utf8'),
      }),
    );
  });
}

async function benchNames(): Promise<string[]> {
  const files = await readdir(benchDir);
  const found = files
    .filter(
      (file) =>
        file.endsWith('.ts') &&
        !['run.ts', 'table.ts', 'peers.ts'].includes(file) &&
        !file.endsWith('.test.ts'),
    )
    .map((file) => file.slice(0, -'.ts'.length));
  // The issues' order first, then anything newer.
  const order = ['fetch', 'webhook', 'webhook-memory', 'sync', 'rotation', 'csi'];
  return found.sort(
    (a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { quick: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const available = await benchNames();
  const unknown = positionals.filter((name) => !available.includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark ${unknown.join(', ')}; there are: ${available.join(', ')}\n`);
    return 2;
  }
  const selected =
    positionals.length > 0 ? available.filter((name) => positionals.includes(name)) : available;
  const started = new Date();
  const runs: BenchRun[] = [];
  for (const name of selected) {
    const args = (values.quick ? quickArgs[name] : fullArgs[name]) ?? [];
    process.stderr.write(`\n== bench/${name}.ts ${args.join(' ')}\n`);
    runs.push(await runBench(name, args));
  }
  const fresh: BenchEntry[] = runs.map((run) => ({
    name: run.name,
    args: [...run.args],
    ranAt: started.toISOString(),
    seconds: Math.round(run.seconds),
    exitCode: run.exitCode,
  }));
  const freshRows = runs.flatMap((run) =>
    figuresOf(run.name, run.output, run.exitCode === 0 ? undefined : `benchmark exited ${run.exitCode}`),
  );
  // A run of some benchmarks updates their rows and keeps the others' from earlier runs.
  const previous = positionals.length > 0 ? await readPrevious(values.quick) : undefined;
  const rerun = new Set(selected);
  const benchmarks = [
    ...(previous?.benchmarks.filter((entry) => !rerun.has(entry.name)) ?? []),
    ...fresh,
  ].sort((a, b) => available.indexOf(a.name) - available.indexOf(b.name));
  const kept: FigureRow[] = (previous?.figures ?? [])
    .filter((row) => !rerun.has(row.bench))
    .map((row) => ({ ...row, smk: row.smk, baseline: row.baseline, ratio: row.ratio, met: row.met }));
  const rows = [...kept, ...freshRows].sort(
    (a, b) => available.indexOf(a.bench) - available.indexOf(b.bench),
  );
  const totalSeconds = benchmarks.reduce((sum, entry) => sum + entry.seconds, 0);
  const durations = benchmarks.map((entry) => `${entry.name} ${entry.seconds} s`).join(', ');

  await mkdir(resultsDir, { recursive: true });
  for (const run of runs) await writeFile(join(resultsDir, `${run.name}.txt`), run.output);
  const summary: Summary = {
    quick: values.quick,
    node: process.version,
    machine: `${cpus().length} cores`,
    benchmarks,
    figures: rows,
  };
  await writeFile(join(resultsDir, 'latest.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const runDates = [...new Set(benchmarks.map((entry) => entry.ranAt.slice(0, 16).replace('T', ' ')))];
  await writeFile(
    join(resultsDir, 'latest.md'),
    [
      `# smk benchmarks${values.quick ? ' (quick run: figures not comparable with the goals)' : ''}`,
      '',
      `Run ${runDates.join(' and ')} UTC with Node ${process.version} on ${summary.machine}: ${durations} (${(totalSeconds / 60).toFixed(1)} min in all).`,
      "Baselines and peers are measured in the same run; ratio = smk ÷ baseline (for a peer: the median of the per-round ratios, with their min–max). Each benchmark's full output is in bench/results/<name>.txt.",
      '',
      markdownTable(rows),
      '',
      ...((await readdir(resultsDir)).includes('webhook-memory.svg')
        ? [
            'Webhook memory over time (bench/webhook-memory.ts: RSS, its anonymous part, V8 heap and external memory; the Go injector and a bare Node server at the same rate):',
            '',
            '![webhook memory over time](webhook-memory.svg)',
            '',
          ]
        : []),
    ].join('\n'),
  );
  process.stdout.write(
    `\nsmk benchmarks (${durations}; ${(totalSeconds / 60).toFixed(1)} min)\n${textTable(rows)}\n`,
  );
  process.stdout.write(`written: bench/results/latest.json, bench/results/latest.md\n`);
  return runs.some((run) => run.exitCode !== 0) ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main();
