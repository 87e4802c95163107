/**
 * Issue 14 finding 8, as found: 64 concurrent 2.9 MB AdmissionReviews against `smk webhook` (the
 * process, as the chart runs it) drove it to 336 MB RSS, past the chart's 256Mi limit. Every
 * smk webhook is failurePolicy Fail, so an OOM-killed webhook blocks pod creation cluster-wide.
 * Now request bodies are held to a byte budget: what does not fit is answered 429 at once, the
 * process stays within its limit, and /healthz keeps answering as the kubelet probes it.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import { bundledSmk } from '../harness/bundle.ts';
import { chartLimits, mebibytes, watchRss } from '../harness/limits.ts';

const reviewFixture = new URL(
  '../../src/webhook/fixtures/admission-review-3-containers.json',
  import.meta.url,
);

/**
 * The kubelet's default probe timeout. Latency is reported, not asserted (this machine's load
 * decides it as much as the webhook does); every probe must be answered, within a generous 10 s.
 */
const probeTimeoutMs = 1_000;
const probeGiveUpMs = 10_000;

const proberSource = `
const { workerData, parentPort } = require('node:worker_threads');
const { request } = require('node:https');
const { port, caPem, timeoutMs } = workerData;
const results = [];
const pending = new Set();
const probe = () => {
  const started = performance.now();
  const done = new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', ca: caPem, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end();
  });
  pending.add(done);
  done.then((result) => { results.push(result); pending.delete(done); });
};
const timer = setInterval(probe, 200);
probe();
parentPort.once('message', async () => {
  clearInterval(timer);
  await Promise.all(pending);
  parentPort.postMessage(results);
});
`;

interface Answer {
  readonly status: number;
  readonly body?: string;
  readonly ms: number;
}

function call(port: number, caPem: string, path: string, body?: string, timeoutMs = 60_000): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: body === undefined ? 'GET' : 'POST',
        ca: caPem,
        agent: false,
        timeout: timeoutMs,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: text, ms: performance.now() - started }),
        );
      },
    );
    // A connection closed on us (the webhook may stop reading an over-budget body) is status 0.
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - started }));
    req.end(body);
  });
}

/**
 * A Pod CREATE review of about `bytes`: the fixture's injected pod with one container's env
 * grown by many small entries (many small objects cost the parser far more than one big string).
 */
async function bigReview(bytes: number, uid: string): Promise<string> {
  const review = JSON.parse(await readFile(reviewFixture, 'utf8'));
  review.request.uid = uid;
  const container = review.request.object.spec.containers[0];
  const base = JSON.stringify(review).length;
  const entry = (n: number) => ({ name: `PADDING_${n}`, value: `v${n}` });
  const each = JSON.stringify(entry(100_000)).length + 1;
  container.env = [
    ...(container.env ?? []),
    ...Array.from({ length: Math.floor((bytes - base) / each) }, (_, n) => entry(n)),
  ];
  return JSON.stringify(review);
}

describe('body flood against smk webhook (process)', () => {
  let work: string;
  let caPem: string;
  let child: ChildProcessWithoutNullStreams;
  let port = 0;
  let stderr = '';

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'smk-webhook-flood-'));
    const ca = await createCertificateAuthority({ commonName: 'flood test CA', validForDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'webhook', ipAddresses: ['127.0.0.1'] });
    caPem = ca.certPem;
    await writeFile(join(work, 'tls.crt'), serving.certPem);
    await writeFile(join(work, 'tls.key'), serving.keyPem);
    const limits = await chartLimits('webhook');
    child = spawn(
      process.execPath,
      [
        await bundledSmk(),
        'webhook',
        '--tls-cert',
        join(work, 'tls.crt'),
        '--tls-key',
        join(work, 'tls.key'),
      ].concat([
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--agent-image',
        'registry.invalid/smk:flood',
        '--shutdown-delay',
        '0',
      ]),
      {
        env: {
          ...process.env,
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${limits.nodeOptions}`.trim(),
          SMK_LOG_LEVEL: 'info',
        },
      },
    );
    port = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-50_000);
        const found = /"port":(\d+),"msg":"webhook listening"/.exec(stderr);
        if (found) resolve(Number(found[1]));
      });
      child.on('exit', (code) => reject(new Error(`smk webhook exited ${code}: ${stderr}`)));
    });
  });

  after(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(work, { recursive: true, force: true });
  });

  test('64 concurrent 2.9 MB reviews: within the chart memory limit, answered or refused 429, /healthz alive', async (t) => {
    const limits = await chartLimits('webhook');
    const bodies = await Promise.all(
      Array.from({ length: 64 }, (_, n) => bigReview(2_900_000, `flood-${n}`)),
    );
    assert.equal((await call(port, caPem, '/readyz')).status, 200);
    const rss = watchRss(child.pid ?? 0, 50);
    const idle = rss.peakBytes;

    // Probes as the kubelet sends them (a fresh TLS connection each) every 200 ms, from their own
    // thread so the flood's sender cannot delay them.
    const prober = new Worker(proberSource, {
      eval: true,
      workerData: { port, caPem, timeoutMs: probeGiveUpMs },
    });
    const probesDone = new Promise<Answer[]>((resolve, reject) => {
      prober.once('message', resolve);
      prober.once('error', reject);
    });
    const answers = await Promise.all(bodies.map((body) => call(port, caPem, '/mutate/pods', body)));
    prober.postMessage('stop');
    const probed = await probesDone;
    await prober.terminate();
    const peak = rss.stop();

    const statuses = new Map<number, number>();
    for (const answer of answers) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    const slowest = Math.max(...probed.map((probe) => probe.ms));
    const late = probed.filter((probe) => probe.status !== 200 || probe.ms > probeTimeoutMs).length;
    t.diagnostic(
      `webhook RSS ${mebibytes(idle)} idle → ${mebibytes(peak)} peak (chart limit ${mebibytes(limits.memoryLimitBytes)}); ` +
        `answers by status ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `${probed.length} /healthz probes every 200 ms, ${late} over ${probeTimeoutMs} ms or failed, slowest ${slowest.toFixed(0)} ms`,
    );

    assert.equal(child.exitCode, null, `the webhook is still running (stderr tail: ${stderr.slice(-1000)})`);
    assert.ok(peak < limits.memoryLimitBytes, `peak RSS ${mebibytes(peak)} within the chart's limit`);
    for (const answer of answers) {
      assert.ok(
        [200, 429].includes(answer.status),
        `each review answered or refused 429 (got ${answer.status})`,
      );
      if (answer.status === 200) assert.equal(JSON.parse(answer.body ?? '').response.allowed, true);
    }
    assert.ok((statuses.get(200) ?? 0) > 0, 'reviews that fit the budget are still answered');
    for (const probe of probed) {
      assert.equal(
        probe.status,
        200,
        `every /healthz probe answered: ${JSON.stringify(probed.map((p) => [p.status, Math.round(p.ms)]))}`,
      );
    }
  });
});
