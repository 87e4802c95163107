/**
 * `npm run bench:webhook`: the admission webhook (`smk webhook` as shipped, dist/smk.mjs, its own
 * process, HTTPS) beside the
 * seeds' Go injector (aws-secret-sidecar-injector, built from ../shared/third-party by
 * bench/tools/build-peers.sh) answering the same AdmissionReviews: a Deployment's Pod with 1 or 3
 * containers and seed 002's annotations, so every answer carries a patch. Also a bare Node HTTPS
 * server that parses the review and answers "allowed" (what any webhook must at least do) and
 * smk's fast path (a Pod without annotations). Each request is the review of a pod of its own
 * (its token volume's name differs, as the API server sends a rollout's pods; bench/pod-reviews.ts).
 *
 * Servers run on core 0, the load on core 1 (taskset); rounds interleave the servers so load from
 * other processes hits all alike; ratios are smk ÷ peer per round, shown as min/median/max.
 * Saturation: wrk (1 thread, N connections); every answer is compared byte for byte with an answer
 * checked before the run (its patch decoded, valid JSON, applied to the pod, the init container
 * there), so a server answering fast but wrong shows as errors. 1,000 req/s: autocannon's fixed rate.
 * Goals: issue 4 (p99 ≤ 2 ms at 1,000 req/s; saturation ≥ 50% of the bare baseline), issue 19
 * (saturation ≥ 1.5× the Go injector's; RSS ≤ 64 MiB).
 *   node bench/webhook.ts [--duration SECONDS] [--rounds N] [--connections N]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { z } from 'zod';
import { createCertificateAuthority, issueServingCertificate } from '../src/webhook/tls/pki.ts';
import { chartLimits } from '../test/harness/limits.ts';
import {
  bareServer,
  buildPeers,
  buildSmk,
  cpuSeconds,
  machineLoad,
  type PeerFigure,
  pinSelfToLoadCore,
  post,
  printPeerTable,
  rssMiB,
  type Server,
  startGoInjector,
  startNodeServer,
} from './peers.ts';
import { autocannonPodRequests, wrkPodRequestsLua } from './pod-reviews.ts';
import { percentile, printTable } from './table.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const root = new URL('..', import.meta.url).pathname;

/** The part of autocannon this bench uses (it ships no types). */
type Autocannon = (options: Record<string, unknown>) => AutocannonInstance;
interface AutocannonInstance extends PromiseLike<unknown> {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const autocannonSchema = z.object({
  errors: z.number(),
  timeouts: z.number(),
  non2xx: z.number(),
  '2xx': z.number(),
  duration: z.number(),
});

/** What the wrk script's done() prints (bench/tools/wrk-check.lua). */
const wrkSchema = z.object({
  requests: z.number(),
  duration_us: z.number(),
  good: z.number(),
  bad: z.number(),
  errors: z.number(),
  p50_us: z.number(),
  p99_us: z.number(),
});

const reviewAnswerSchema = z.object({
  response: z.object({
    uid: z.string(),
    allowed: z.boolean(),
    patch: z.string().optional(),
    patchType: z.string().optional(),
  }),
});

interface Pod {
  spec: { initContainers?: Array<{ name: string }>; containers: Array<{ name: string }> };
}

/**
 * Why an answer is not a real injection, or undefined when it is: allowed, the request's uid, a
 * base64 JSON patch that parses, applies to the pod and leaves an init container in it.
 */
function injectionProblem(answerText: string, review: string): string | undefined {
  const reviewed = JSON.parse(review) as { request: { uid: string; object: Pod } };
  let answer: z.infer<typeof reviewAnswerSchema>;
  try {
    answer = reviewAnswerSchema.parse(JSON.parse(answerText));
  } catch {
    return 'the AdmissionReview answer is not valid JSON of the expected shape';
  }
  if (answer.response.uid !== reviewed.request.uid) return 'the answer carries another uid';
  if (!answer.response.allowed) return 'the pod was refused';
  if (answer.response.patch === undefined) return 'the answer carries no patch';
  let operations: Operation[];
  try {
    operations = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as Operation[];
  } catch {
    return 'the patch is not valid JSON';
  }
  try {
    const pod = fastJsonPatch.applyPatch(
      structuredClone(reviewed.request.object),
      operations,
      true,
    ).newDocument;
    if ((pod.spec.initContainers ?? []).length === 0) return 'the patched pod has no init container';
  } catch (error) {
    return `the patch does not apply to the pod (${error instanceof Error ? error.name : 'error'})`;
  }
  return undefined;
}

interface Measurement {
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  /** Answers that were not the checked answer (or not 200), plus transport errors. */
  readonly failures: number;
  /** Server CPU time (user + system) per answered request, µs: robust to other load on the machine. */
  readonly cpuMicros: number;
  readonly rssMiB: number;
}

/** Saturation with wrk: every answer compared with `expected`. */
async function saturate(
  server: Server,
  bodyFile: string,
  expectedFile: string,
  script: string,
  wrk: string,
  seconds: number,
): Promise<Measurement> {
  const cpuBefore = await cpuSeconds(server.child.pid);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      wrk,
      [
        '-t1',
        `-c${connections}`,
        `-d${seconds}s`,
        '-s',
        script,
        `https://127.0.0.1:${server.port}${server.path}`,
      ],
      {
        env: { ...process.env, WRK_BODY: bodyFile, WRK_EXPECTED: expectedFile },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`)),
    );
  });
  const cpu = (await cpuSeconds(server.child.pid)) - cpuBefore;
  const line = /^WRK_RESULT (.*)$/m.exec(output)?.[1];
  if (line === undefined) throw new Error(`wrk printed no result: ${output}`);
  const result = wrkSchema.parse(JSON.parse(line));
  return {
    rate: result.good / (result.duration_us / 1e6),
    p50: result.p50_us / 1000,
    p99: result.p99_us / 1000,
    failures: result.bad + result.errors,
    cpuMicros: (cpu * 1e6) / Math.max(1, result.good),
    rssMiB: await rssMiB(server.child.pid),
  };
}

/** A fixed rate with autocannon; answers whose size differs from the first one's count as failures. */
async function atRate(
  server: Server,
  caPem: string,
  body: string,
  seconds: number,
  rate: number,
): Promise<Measurement> {
  const samples: number[] = [];
  let wrongSize = 0;
  let firstSize: number | undefined;
  const instance = autocannon({
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
  instance.on('response', (_client, status, bytes, ms) => {
    if (status === 200) samples.push(ms);
    // autocannon counts the headers too, so sizes are compared with the first answer's (the
    // checked answer is byte-identical each time; saturation compares the bodies themselves).
    firstSize ??= bytes;
    if (bytes !== firstSize) wrongSize += 1;
  });
  const cpuBefore = await cpuSeconds(server.child.pid);
  const result = autocannonSchema.parse(await instance);
  const cpu = (await cpuSeconds(server.child.pid)) - cpuBefore;
  return {
    cpuMicros: (cpu * 1e6) / Math.max(1, result['2xx']),
    rate: result['2xx'] / result.duration,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    failures: result.errors + result.timeouts + result.non2xx + wrongSize,
    rssMiB: await rssMiB(server.child.pid),
  };
}

const wrkScript = `
local function slurp(path) local f = assert(io.open(path, "rb")); local s = f:read("*a"); f:close(); return s end
wrk.method = "POST"
wrk.body = slurp(os.getenv("WRK_BODY"))
wrk.headers["Content-Type"] = "application/json"
local expected = slurp(os.getenv("WRK_EXPECTED"))
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) good = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body == expected then good = good + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"duration_us":%d,"good":%d,"bad":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, g, b, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
${wrkPodRequestsLua}`;

const work = await mkdtemp(join(tmpdir(), 'smk-bench-webhook-'));
const children: ChildProcess[] = [];
try {
  const [peers, smkBundle] = await Promise.all([buildPeers(), buildSmk()]);
  await pinSelfToLoadCore();
  const ca = await createCertificateAuthority({ commonName: 'bench CA', validForDays: 1 });
  const serving = await issueServingCertificate(ca, { commonName: 'bench', ipAddresses: ['127.0.0.1'] });
  const certFile = join(work, 'tls.crt');
  const keyFile = join(work, 'tls.key');
  const script = join(work, 'check.lua');
  await writeFile(certFile, serving.certPem);
  await writeFile(keyFile, serving.keyPem);
  await writeFile(script, wrkScript);

  // The same reviews for both injectors: the 3-container Pod with seed 002's annotations, and its first container alone.
  const fixture = JSON.parse(
    await readFile(join(root, 'src/webhook/fixtures/admission-review-3-containers.json'), 'utf8'),
  ) as { request: { object: { metadata: { annotations?: Record<string, string> }; spec: Pod['spec'] } } };
  fixture.request.object.metadata.annotations = {
    'secrets.k8s.aws/sidecarInjectorWebhook': 'enabled',
    'secrets.k8s.aws/secret-arn':
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:database-password-hlRvvF',
  };
  const review3 = JSON.stringify(fixture);
  fixture.request.object.spec.containers = fixture.request.object.spec.containers.slice(0, 1);
  const review1 = JSON.stringify(fixture);
  delete fixture.request.object.metadata.annotations;
  const plainReview = JSON.stringify(fixture);

  // Both Node servers run with the chart's NODE_OPTIONS (V8's heap sizing decides much of their RSS).
  const { nodeOptions } = await chartLimits('webhook');
  const smk = await startNodeServer(
    'smk webhook',
    [
      smkBundle,
      'webhook',
      '--tls-cert',
      certFile,
      '--tls-key',
      keyFile,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--shutdown-delay',
      '0',
    ],
    nodeOptions,
  );
  children.push(smk.child);
  const bare = await startNodeServer(
    'bare HTTPS "allowed"',
    ['--input-type=module', '-e', bareServer, certFile, keyFile],
    nodeOptions,
  );
  children.push(bare.child);
  const go = await startGoInjector(peers.injector, certFile, keyFile, ca.certPem);
  children.push(go.child);

  // Each (server, review): the answer every request must get, checked here once (not timed).
  const notes: string[] = [];
  const firstAnswer = await post(go.port, go.path, ca.certPem, review3);
  const firstProblem = injectionProblem(firstAnswer.text, review3);
  notes.push(
    `Go injector, first answer after its start: ${firstProblem ?? 'a valid injection'}` +
      (firstProblem ? ' (its global patch template; every later answer is checked below)' : ''),
  );
  async function expectedAnswer(server: Server, review: string, injects: boolean): Promise<string> {
    const answer = await post(server.port, server.path, ca.certPem, review);
    const problem = injects ? injectionProblem(answer.text, review) : undefined;
    if (answer.status !== 200 || problem)
      throw new Error(`${server.name}: ${problem ?? `HTTP ${answer.status}`}`);
    if (!injects && answer.text.includes('"patch"'))
      throw new Error(`${server.name}: patched a pod that did not ask`);
    const again = await post(server.port, server.path, ca.certPem, review);
    if (again.text !== answer.text) throw new Error(`${server.name}: two answers to one review differ`);
    const file = join(work, `expected-${children.length}-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, answer.text);
    return file;
  }
  const bodyFile = async (review: string): Promise<string> => {
    const file = join(work, `review-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, review);
    return file;
  };

  interface Variant {
    readonly name: string;
    readonly server: Server;
    readonly review: string;
    readonly bodyFile: string;
    readonly expectedFile: string;
  }
  async function variant(name: string, server: Server, review: string, injects: boolean): Promise<Variant> {
    const expectedFile = await expectedAnswer(server, review, injects);
    return {
      name,
      server,
      review,
      bodyFile: await bodyFile(review),
      expectedFile,
    };
  }
  const variants = {
    bare: await variant('bare HTTPS "allowed" (baseline)', bare, review3, false),
    smk3: await variant('smk webhook, 3-container pod injected', smk, review3, true),
    go3: await variant('Go injector, 3-container pod injected', go, review3, true),
    smk1: await variant('smk webhook, 1-container pod injected', smk, review1, true),
    go1: await variant('Go injector, 1-container pod injected', go, review1, true),
    plain: await variant('smk webhook, pod without annotations', smk, plainReview, false),
  };

  process.stderr.write(`warming up, then ${rounds} rounds of ${duration} s per server and load…\n`);
  for (const each of [variants.smk3, variants.go3, variants.bare])
    await saturate(each.server, each.bodyFile, each.expectedFile, script, peers.wrk, 2);

  const load = await machineLoad();
  const saturated = [variants.bare, variants.smk3, variants.go3, variants.smk1, variants.go1, variants.plain];
  const paced = [variants.bare, variants.smk3, variants.go3, variants.plain];
  const saturationRuns = new Map<Variant, Measurement[]>(saturated.map((each) => [each, []]));
  const pacedRuns = new Map<Variant, Measurement[]>(paced.map((each) => [each, []]));
  // Servers take turns within each round, so load from other processes hits all of them alike.
  for (let round = 0; round < rounds; round += 1) {
    for (const each of paced)
      pacedRuns.get(each)?.push(await atRate(each.server, ca.certPem, each.review, duration, 1000));
    for (const each of saturated)
      saturationRuns
        .get(each)
        ?.push(await saturate(each.server, each.bodyFile, each.expectedFile, script, peers.wrk, duration));
  }
  const rssAfter = { smk: await rssMiB(smk.child.pid), go: await rssMiB(go.child.pid) };

  const rows: Array<[string, string, Measurement]> = [
    ...paced.map((each): [string, string, Measurement] => [
      each.name,
      '1,000 req/s',
      median(pacedRuns.get(each) ?? []),
    ]),
    ...saturated.map((each): [string, string, Measurement] => [
      each.name,
      `saturation (${connections} conns)`,
      median(saturationRuns.get(each) ?? []),
    ]),
  ];
  printTable(
    `Admission webhook: AdmissionReview of a Pod with seed 002's annotations over HTTPS; median of ${rounds} interleaved ${duration} s runs ` +
      `(servers on core 0, load on core 1; Node servers with the chart's NODE_OPTIONS=${nodeOptions}; saturation: wrk, 1,000 req/s: autocannon; ${load})`,
    ['server', 'load', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'RSS MiB', 'errors'],
    rows.map(([server, loadName, m]) => [
      server,
      loadName,
      m.rate,
      m.p50,
      m.p99,
      m.cpuMicros,
      m.rssMiB,
      m.failures,
    ]),
  );
  for (const note of notes) process.stdout.write(`${note}\n`);

  const perRound = (
    a: Variant,
    b: Variant,
    pick: (m: Measurement) => number,
    runs = saturationRuns,
  ): number[] => (runs.get(a) ?? []).map((m, index) => pick(m) / pick((runs.get(b) ?? [])[index] ?? m));
  const mid = (each: Variant, pick: (m: Measurement) => number, runs = saturationRuns): number =>
    percentile((runs.get(each) ?? []).map(pick), 50);
  const throughput = (smkVariant: Variant, goVariant: Variant, containers: number): PeerFigure => {
    const ratios = perRound(smkVariant, goVariant, (m) => m.rate);
    return {
      figure: `webhook throughput at saturation, ${containers} container${containers > 1 ? 's' : ''}`,
      unit: 'req/s',
      smk: mid(smkVariant, (m) => m.rate),
      peer: mid(goVariant, (m) => m.rate),
      peerName: 'Go injector',
      ratios,
      goal: '≥ 1.5× (issue 19)',
      met: percentile(ratios, 50) >= 1.5,
    };
  };
  // Throughput at saturation on a shared machine measures its other load as much as the server
  // (and wrk, on the other core, can run short of CPU first); a core's worth of requests from the
  // server's own CPU time per request does not, so the goal is judged on both.
  const capacity = (smkVariant: Variant, goVariant: Variant, containers: number): PeerFigure => {
    const ratios = perRound(smkVariant, goVariant, (m) => 1 / m.cpuMicros);
    return {
      figure: `webhook capacity per core (1 s ÷ CPU per request), ${containers} container${containers > 1 ? 's' : ''}`,
      unit: 'req/s',
      smk: 1e6 / mid(smkVariant, (m) => m.cpuMicros),
      peer: 1e6 / mid(goVariant, (m) => m.cpuMicros),
      peerName: 'Go injector',
      ratios,
      goal: '≥ 1.5× (issue 19, from CPU)',
      met: percentile(ratios, 50) >= 1.5,
    };
  };
  printPeerTable(`webhook; ratio = smk ÷ peer per round, ${rounds} rounds; ${load}`, [
    throughput(variants.smk1, variants.go1, 1),
    throughput(variants.smk3, variants.go3, 3),
    capacity(variants.smk1, variants.go1, 1),
    capacity(variants.smk3, variants.go3, 3),
    {
      figure: 'webhook p99 at 1,000 req/s, 3 containers',
      unit: 'ms',
      smk: mid(variants.smk3, (m) => m.p99, pacedRuns),
      peer: mid(variants.go3, (m) => m.p99, pacedRuns),
      peerName: 'Go injector',
      ratios: perRound(variants.smk3, variants.go3, (m) => m.p99, pacedRuns),
      goal: '(neighbours decide p99; see CPU per request)',
    },
    {
      figure: 'webhook CPU per request at 1,000 req/s, 3 containers',
      unit: 'µs',
      smk: mid(variants.smk3, (m) => m.cpuMicros, pacedRuns),
      peer: mid(variants.go3, (m) => m.cpuMicros, pacedRuns),
      peerName: 'Go injector',
      ratios: perRound(variants.smk3, variants.go3, (m) => m.cpuMicros, pacedRuns),
      goal: '(lower is better; the figure p99 stands on)',
    },
    {
      figure: 'webhook RSS after the run',
      unit: 'MiB',
      smk: rssAfter.smk,
      peer: rssAfter.go,
      peerName: 'Go injector',
      ratios: perRound(variants.smk3, variants.go3, (m) => m.rssMiB),
      goal: '≤ 64 MiB (issue 19)',
      met: rssAfter.smk <= 64,
    },
  ]);

  const at1000 = median(pacedRuns.get(variants.smk3) ?? []);
  const bareAt1000 = median(pacedRuns.get(variants.bare) ?? []);
  const bareMax = median(saturationRuns.get(variants.bare) ?? []);
  const smkMax = median(saturationRuns.get(variants.smk3) ?? []);
  printTable(
    'Goals (issue 4)',
    ['goal', 'measured', 'baseline', 'met'],
    [
      [
        'p99 ≤ 2 ms at 1,000 req/s (injected pod)',
        `${at1000.p99.toFixed(2)} ms`,
        `${bareAt1000.p99.toFixed(2)} ms`,
        at1000.p99 <= 2 ? 'yes' : 'NO',
      ],
      [
        'saturation ≥ 50% of the bare baseline',
        `${((smkMax.rate / bareMax.rate) * 100).toFixed(0)}%`,
        `${bareMax.rate.toFixed(0)} req/s`,
        smkMax.rate >= bareMax.rate / 2 ? 'yes' : 'NO',
      ],
      [
        // Throughput on a shared machine also measures its other load; CPU per request does not.
        'same, as capacity from server CPU per request',
        `${((bareMax.cpuMicros / smkMax.cpuMicros) * 100).toFixed(0)}%`,
        `${bareMax.cpuMicros.toFixed(0)} µs/req`,
        smkMax.cpuMicros <= bareMax.cpuMicros * 2 ? 'yes' : 'NO',
      ],
    ],
  );
} finally {
  for (const child of children) child.kill('SIGTERM');
  await rm(work, { recursive: true, force: true });
}

/** Each figure's median over the runs (not one run's figures). */
function median(runs: readonly Measurement[]): Measurement {
  const mid = (pick: (m: Measurement) => number): number => percentile(runs.map(pick), 50);
  return {
    rate: mid((m) => m.rate),
    p50: mid((m) => m.p50),
    p99: mid((m) => m.p99),
    failures: mid((m) => m.failures),
    cpuMicros: mid((m) => m.cpuMicros),
    rssMiB: mid((m) => m.rssMiB),
  };
}
