/**
 * `npm run bench:webhook-memory`: the webhook's memory over time (issue 19: steady RSS ≤ 64 MiB at
 * 1,000 req/s for 10 minutes and under the body flood). `smk webhook` as the chart runs it
 * (dist/smk.mjs, the chart's NODE_OPTIONS, on core 0) answers the 3-container Pod review at
 * 1,000 req/s (autocannon, core 1) for --seconds; then, with that load still on, a flood of
 * 2.9 MB reviews (--flood-senders at once, each sending the next when answered, as in
 * test/webhook/flood.test.ts) for --flood-seconds. Every second: RSS and its anonymous part
 * (/proc), and from the webhook's /metrics its V8 heap and external memory, so the plot shows
 * where the memory is. The seeds' Go injector gets the same paced load afterwards for
 * --peer-seconds, as the peer. A bare Node HTTPS server that parses the review and answers
 * "allowed" gets it too: the floor any Node webhook stands on.
 * Writes bench/results/webhook-memory.svg (RSS over time) and prints the peer table.
 *   node bench/webhook-memory.ts [--seconds 600] [--flood-seconds 60] [--peer-seconds 60]
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCertificateAuthority, issueServingCertificate } from '../src/webhook/tls/pki.ts';
import { chartLimits } from '../test/harness/limits.ts';
import {
  bareServer,
  buildPeers,
  buildSmk,
  cpuSeconds,
  machineLoad,
  pinSelfToLoadCore,
  post,
  printPeerTable,
  type Server,
  startGoInjector,
  startNodeServer,
} from './peers.ts';
import { autocannonPodRequests } from './pod-reviews.ts';
import { percentile, printTable } from './table.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '600' },
    'flood-seconds': { type: 'string', default: '60' },
    'flood-senders': { type: 'string', default: '64' },
    'peer-seconds': { type: 'string', default: '60' },
    rate: { type: 'string', default: '1000' },
  },
});
const soakSeconds = Number(values.seconds);
const floodSeconds = Number(values['flood-seconds']);
const floodSenders = Number(values['flood-senders']);
const peerSeconds = Number(values['peer-seconds']);
const rate = Number(values.rate);
const root = new URL('..', import.meta.url).pathname;
const goalMiB = 64;

/** The part of autocannon this bench uses (it ships no types). */
type Autocannon = (options: Record<string, unknown>) => PromiseLike<{
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
}> & { stop(): void };
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface Sample {
  /** Seconds since the phase's series started. */
  readonly t: number;
  readonly rssMiB: number;
  readonly anonMiB: number;
  /** From the webhook's /metrics (smk only). */
  readonly heapTotalMiB?: number;
  readonly externalMiB?: number;
}

async function memoryOf(pid: number | undefined): Promise<{ rss: number; anon: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rss: kib('VmRSS') / 1024, anon: kib('RssAnon') / 1024 };
}

/** smk's own view of its memory, from the prom-client process metrics on /metrics. */
async function heapOf(server: Server, caPem: string): Promise<{ heapTotal?: number; external?: number }> {
  const text = await post(server.port, '/metrics', caPem, '', 'GET').then(
    (answer) => answer.text,
    () => '',
  );
  const metric = (name: string): number | undefined => {
    const found = new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1];
    return found === undefined ? undefined : Number(found) / 2 ** 20;
  };
  const heapTotal = metric('smk_nodejs_heap_size_total_bytes');
  const external = metric('smk_nodejs_external_memory_bytes');
  return {
    ...(heapTotal === undefined ? {} : { heapTotal }),
    ...(external === undefined ? {} : { external }),
  };
}

/**
 * Samples a server's memory until stopped: /proc every 250 ms (so a flood's peak is seen), and
 * smk's /metrics every 2 s on a loop of its own (under a flood its answer can take seconds).
 */
function sampler(server: Server, caPem: string, withHeap: boolean): { stop(): Promise<Sample[]> } {
  const samples: Sample[] = [];
  const started = performance.now();
  const elapsed = (): number => (performance.now() - started) / 1000;
  let running = true;
  const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const memoryLoop = (async () => {
    while (running) {
      const memory = await memoryOf(server.child.pid);
      samples.push({ t: elapsed(), rssMiB: memory.rss, anonMiB: memory.anon });
      await pause(250);
    }
  })();
  const heapLoop = (async () => {
    while (running && withHeap) {
      const t = elapsed();
      const heap = await heapOf(server, caPem);
      const memory = await memoryOf(server.child.pid);
      samples.push({
        t,
        rssMiB: memory.rss,
        anonMiB: memory.anon,
        ...(heap.heapTotal === undefined ? {} : { heapTotalMiB: heap.heapTotal }),
        ...(heap.external === undefined ? {} : { externalMiB: heap.external }),
      });
      await pause(2000);
    }
  })();
  return {
    async stop() {
      running = false;
      await Promise.all([memoryLoop, heapLoop]);
      return samples.sort((a, b) => a.t - b.t);
    },
  };
}

interface Paced {
  readonly answered: number;
  readonly failed: number;
  readonly cpuMicros: number;
}

/** `seconds` at the fixed rate; answers other than 200 count as failed. */
async function paced(server: Server, caPem: string, body: string, seconds: number): Promise<Paced> {
  const cpuBefore = await cpuSeconds(server.child.pid);
  const result = await autocannon({
    url: `https://127.0.0.1:${server.port}${server.path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    // Each request a pod of its own, as in a rollout (bench/pod-reviews.ts).
    requests: autocannonPodRequests(body),
    connections: 10,
    overallRate: rate,
    duration: seconds,
    tlsOptions: { ca: caPem },
  });
  const cpu = (await cpuSeconds(server.child.pid)) - cpuBefore;
  return {
    answered: result['2xx'],
    failed: result.non2xx + result.errors + result.timeouts,
    cpuMicros: (cpu * 1e6) / Math.max(1, result['2xx']),
  };
}

/**
 * A Pod CREATE review of about `bytes` (as test/webhook/flood.test.ts builds it): one container's
 * env grown by many small entries, which cost the parser far more than one big string.
 */
function bigReview(review: string, bytes: number): string {
  const parsed = JSON.parse(review) as {
    request: { uid: string; object: { spec: { containers: { env?: unknown[] }[] } } };
  };
  parsed.request.uid = 'flood';
  const container = parsed.request.object.spec.containers[0];
  if (!container) throw new Error('the review has no container');
  const base = JSON.stringify(parsed).length;
  const entry = (n: number) => ({ name: `PADDING_${n}`, value: `v${n}` });
  const each = JSON.stringify(entry(100_000)).length + 1;
  container.env = [
    ...(container.env ?? []),
    ...Array.from({ length: Math.floor((bytes - base) / each) }, (_, n) => entry(n)),
  ];
  return JSON.stringify(parsed);
}

/** Senders that each post the big review again as soon as it is answered, until `seconds` pass. */
async function flood(
  server: Server,
  caPem: string,
  body: string,
  seconds: number,
): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  const until = performance.now() + seconds * 1000;
  const once = (): Promise<number> =>
    new Promise((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: server.path,
          method: 'POST',
          ca: caPem,
          agent: false,
          timeout: 60_000,
          headers: { 'content-type': 'application/json' },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', () => resolve(0));
        },
      );
      // A webhook may stop reading an over-budget body and close: that is status 0 here.
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(0));
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: floodSenders }, async () => {
      while (performance.now() < until) {
        const status = await once();
        statuses[status] = (statuses[status] ?? 0) + 1;
        // A refused sender backs off as the API server would (Retry-After: 1).
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }),
  );
  return statuses;
}

// ---- the plot -------------------------------------------------------------------------------------

interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
}

/** A line chart of MiB over seconds, as SVG (no plotting tool needed offline). */
export function svgPlot(
  title: string,
  series: readonly Series[],
  marks: readonly { readonly from: number; readonly to: number; readonly label: string }[],
): string {
  const width = 1000;
  const height = 420;
  const left = 60;
  const right = 200;
  const top = 40;
  const bottom = 50;
  const all = series.flatMap((each) => each.points);
  const maxT = Math.max(1, ...all.map(([t]) => t));
  const maxY = Math.ceil(Math.max(goalMiB * 1.25, ...all.map(([, y]) => y)) / 16) * 16;
  const x = (t: number): number => left + (t / maxT) * (width - left - right);
  const y = (v: number): number => height - bottom - (v / maxY) * (height - top - bottom);
  const xmlText = (text: string): string =>
    text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="14">${xmlText(title)}</text>`,
  ];
  for (const mark of marks) {
    parts.push(
      `<rect x="${x(mark.from).toFixed(1)}" y="${top}" width="${(x(mark.to) - x(mark.from)).toFixed(1)}" height="${height - top - bottom}" fill="#fde2e2"/>`,
      `<text x="${(x(mark.from) + 4).toFixed(1)}" y="${top + 14}" fill="#a33">${xmlText(mark.label)}</text>`,
    );
  }
  for (let v = 0; v <= maxY; v += maxY / 8) {
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(0)}</text>`,
    );
  }
  const step = maxT > 300 ? 60 : maxT > 60 ? 30 : 10;
  for (let t = 0; t <= maxT; t += step) {
    parts.push(`<text x="${x(t).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle">${t}</text>`);
  }
  parts.push(
    `<text x="${(left + width - right) / 2}" y="${height - 12}" text-anchor="middle">seconds</text>`,
    `<text x="16" y="${(top + height - bottom) / 2}" transform="rotate(-90 16 ${(top + height - bottom) / 2})" text-anchor="middle">MiB</text>`,
    `<line x1="${left}" x2="${width - right}" y1="${y(goalMiB).toFixed(1)}" y2="${y(goalMiB).toFixed(1)}" stroke="#c00" stroke-dasharray="6 4"/>`,
    `<text x="${width - right + 6}" y="${(y(goalMiB) + 4).toFixed(1)}" fill="#c00">goal ${goalMiB} MiB</text>`,
  );
  series.forEach((each, index) => {
    if (each.points.length === 0) return;
    const path = each.points
      .map(([t, v], n) => `${n === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
      .join(' ');
    parts.push(
      `<path d="${path}" fill="none" stroke="${each.color}" stroke-width="1.5"${each.dashed ? ' stroke-dasharray="3 3"' : ''}/>`,
      `<line x1="${width - right + 6}" x2="${width - right + 26}" y1="${top + 30 + index * 18}" y2="${top + 30 + index * 18}" stroke="${each.color}" stroke-width="2"${each.dashed ? ' stroke-dasharray="3 3"' : ''}/>`,
      `<text x="${width - right + 30}" y="${top + 34 + index * 18}">${xmlText(each.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

// ---- the run --------------------------------------------------------------------------------------

const work = await mkdtemp(join(tmpdir(), 'smk-bench-webhook-memory-'));
const children: ChildProcess[] = [];
try {
  const [peers, smkBundle] = await Promise.all([buildPeers(), buildSmk()]);
  await pinSelfToLoadCore();
  const ca = await createCertificateAuthority({ commonName: 'bench CA', validForDays: 1 });
  const serving = await issueServingCertificate(ca, { commonName: 'bench', ipAddresses: ['127.0.0.1'] });
  const certFile = join(work, 'tls.crt');
  const keyFile = join(work, 'tls.key');
  await writeFile(certFile, serving.certPem);
  await writeFile(keyFile, serving.keyPem);
  const fixture = JSON.parse(
    await readFile(join(root, 'src/webhook/fixtures/admission-review-3-containers.json'), 'utf8'),
  ) as { request: { object: { metadata: { annotations?: Record<string, string> } } } };
  fixture.request.object.metadata.annotations = {
    'secrets.k8s.aws/sidecarInjectorWebhook': 'enabled',
    'secrets.k8s.aws/secret-arn':
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:database-password-hlRvvF',
  };
  const review = JSON.stringify(fixture);
  const floodBody = bigReview(review, 2_900_000);
  const { nodeOptions } = await chartLimits('webhook');

  const smk = await startNodeServer(
    'smk webhook',
    [
      smkBundle,
      'webhook',
      ...['--tls-cert', certFile, '--tls-key', keyFile, '--port', '0', '--host', '127.0.0.1'],
      ...['--shutdown-delay', '0'],
    ],
    nodeOptions,
  );
  children.push(smk.child);
  const first = await post(smk.port, smk.path, ca.certPem, review);
  if (first.status !== 200 || !first.text.includes('"patch"'))
    throw new Error(`smk webhook: the review was not injected (HTTP ${first.status})`);

  const load = await machineLoad();
  process.stderr.write(
    `smk webhook: ${rate} req/s for ${soakSeconds} s, then a flood of 2.9 MB reviews for ${floodSeconds} s…\n`,
  );
  const smkSamples = sampler(smk, ca.certPem, true);
  const idle = await memoryOf(smk.child.pid);
  const soak = await paced(smk, ca.certPem, review, soakSeconds);
  const floodStart = soakSeconds;
  const [underFlood, floodAnswers] = await Promise.all([
    paced(smk, ca.certPem, review, floodSeconds),
    flood(smk, ca.certPem, floodBody, floodSeconds),
  ]);
  const smkSeries = await smkSamples.stop();
  const smkPeak = await readFile(`/proc/${smk.child.pid}/status`, 'utf8').then(
    (status) => Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]) / 1024,
  );
  smk.child.kill('SIGTERM');

  process.stderr.write(`Go injector and the bare Node server: ${rate} req/s for ${peerSeconds} s each…\n`);
  const go = await startGoInjector(peers.injector, certFile, keyFile, ca.certPem);
  children.push(go.child);
  await post(go.port, go.path, ca.certPem, review);
  const goSamples = sampler(go, ca.certPem, false);
  const goRun = await paced(go, ca.certPem, review, peerSeconds);
  const goSeries = await goSamples.stop();
  go.child.kill('SIGTERM');
  const bare = await startNodeServer(
    'bare HTTPS "allowed"',
    ['--input-type=module', '-e', bareServer, certFile, keyFile],
    nodeOptions,
  );
  children.push(bare.child);
  const bareSamples = sampler(bare, ca.certPem, false);
  const bareRun = await paced(bare, ca.certPem, review, peerSeconds);
  const bareSeries = await bareSamples.stop();

  // Steady: the second half of the soak (past warm-up), so a slow climb still shows in the max.
  const steady = (series: readonly Sample[], from: number, to: number): number[] =>
    series.filter((sample) => sample.t >= from && sample.t < to).map((sample) => sample.rssMiB);
  const smkSteady = steady(smkSeries, soakSeconds / 2, soakSeconds);
  const smkFlood = steady(smkSeries, floodStart, floodStart + floodSeconds + 1);
  const goSteady = steady(goSeries, peerSeconds / 2, peerSeconds);
  const bareSteady = steady(bareSeries, peerSeconds / 2, peerSeconds);
  const anonSteady = smkSeries
    .filter((sample) => sample.t >= soakSeconds / 2 && sample.t < soakSeconds)
    .map((sample) => sample.anonMiB);
  const max = (list: readonly number[]): number => Math.max(...list);

  printTable(
    `Webhook memory: ${rate} req/s of the 3-container Pod review (autocannon) for ${soakSeconds} s, then with a flood of 2.9 MB reviews (${floodSenders} senders) for ${floodSeconds} s; peers ${peerSeconds} s at the same rate; NODE_OPTIONS=${nodeOptions}; ${load}`,
    [
      'server',
      'phase',
      'answered',
      'req/s reached',
      'failed',
      'CPU µs/req',
      'RSS median MiB',
      'RSS max MiB',
      'anon max MiB',
    ],
    [
      [
        'smk webhook',
        `${rate} req/s, 2nd half`,
        soak.answered,
        soak.answered / soakSeconds,
        soak.failed,
        soak.cpuMicros,
        percentile(smkSteady, 50),
        max(smkSteady),
        max(anonSteady),
      ],
      [
        'smk webhook',
        `same + flood (${Object.entries(floodAnswers)
          .map(([status, count]) => `${count}× ${status === '0' ? 'closed' : status}`)
          .join(', ')})`,
        underFlood.answered,
        underFlood.answered / floodSeconds,
        underFlood.failed,
        underFlood.cpuMicros,
        percentile(smkFlood, 50),
        max(smkFlood),
        max(smkSeries.filter((sample) => sample.t >= floodStart).map((sample) => sample.anonMiB)),
      ],
      [
        'Go injector',
        `${rate} req/s, 2nd half`,
        goRun.answered,
        goRun.answered / peerSeconds,
        goRun.failed,
        goRun.cpuMicros,
        percentile(goSteady, 50),
        max(goSteady),
        max(goSeries.map((sample) => sample.anonMiB)),
      ],
      [
        'bare Node HTTPS "allowed" (floor of any Node webhook)',
        `${rate} req/s, 2nd half`,
        bareRun.answered,
        bareRun.answered / peerSeconds,
        bareRun.failed,
        bareRun.cpuMicros,
        percentile(bareSteady, 50),
        max(bareSteady),
        max(bareSeries.map((sample) => sample.anonMiB)),
      ],
    ],
  );
  process.stdout.write(
    `smk webhook idle before the load: RSS ${idle.rss.toFixed(1)} MiB (anonymous ${idle.anon.toFixed(1)} MiB; the rest is the Node binary's pages); peak over the run ${smkPeak.toFixed(1)} MiB\n`,
  );
  printPeerTable(`webhook memory; one run, ratio of the figures; ${load}`, [
    {
      figure: `webhook RSS, steady at ${rate} req/s (max over the 2nd half of ${soakSeconds} s)`,
      unit: 'MiB',
      smk: max(smkSteady),
      peer: max(goSteady),
      peerName: 'Go injector',
      ratios: [max(smkSteady) / max(goSteady)],
      goal: `≤ ${goalMiB} MiB (issue 19)`,
      met: max(smkSteady) <= goalMiB,
    },
    {
      figure: 'webhook RSS under the body flood (max)',
      unit: 'MiB',
      smk: max(smkFlood),
      peer: max(goSteady),
      peerName: 'Go injector (no flood)',
      ratios: [max(smkFlood) / max(goSteady)],
      goal: `≤ ${goalMiB} MiB (issue 19)`,
      met: max(smkFlood) <= goalMiB,
    },
    {
      figure: `webhook RSS at ${rate} req/s beside a bare Node HTTPS server`,
      unit: 'MiB',
      smk: max(smkSteady),
      peer: max(bareSteady),
      peerName: 'bare Node "allowed"',
      ratios: [max(smkSteady) / max(bareSteady)],
      goal: '(what smk adds to Node itself)',
    },
    {
      figure: `webhook CPU per request at ${rate} req/s`,
      unit: 'µs',
      smk: soak.cpuMicros,
      peer: goRun.cpuMicros,
      peerName: 'Go injector',
      ratios: [soak.cpuMicros / goRun.cpuMicros],
      goal: '(lower is better)',
    },
  ]);

  const points = (series: readonly Sample[], pick: (sample: Sample) => number | undefined, offset = 0) =>
    series.flatMap((sample): [number, number][] => {
      const value = pick(sample);
      return value === undefined || Number.isNaN(value) ? [] : [[sample.t + offset, value]];
    });
  const svg = svgPlot(
    `smk webhook asked ${rate} req/s (reached ${(soak.answered / soakSeconds).toFixed(0)}), then a flood of 2.9 MB reviews (${new Date().toISOString().slice(0, 16)} UTC, ${load})`,
    [
      { name: 'smk RSS', color: '#1f77b4', points: points(smkSeries, (s) => s.rssMiB) },
      { name: 'smk RSS, anonymous', color: '#17becf', points: points(smkSeries, (s) => s.anonMiB) },
      { name: 'smk V8 heap', color: '#2ca02c', points: points(smkSeries, (s) => s.heapTotalMiB) },
      { name: 'smk external', color: '#9467bd', points: points(smkSeries, (s) => s.externalMiB) },
      { name: 'Go injector RSS', color: '#ff7f0e', points: points(goSeries, (s) => s.rssMiB), dashed: true },
      {
        name: 'bare Node RSS',
        color: '#7f7f7f',
        points: points(bareSeries, (s) => s.rssMiB),
        dashed: true,
      },
    ],
    [{ from: floodStart, to: floodStart + floodSeconds, label: 'flood' }],
  );
  await mkdir(join(root, 'bench/results'), { recursive: true });
  await writeFile(join(root, 'bench/results/webhook-memory.svg'), svg);
  // After a blank line, so bench/run.ts does not read this line as a row of the table above.
  process.stdout.write('\nplot: bench/results/webhook-memory.svg\n');
} finally {
  for (const child of children) child.kill('SIGTERM');
  await rm(work, { recursive: true, force: true });
}
