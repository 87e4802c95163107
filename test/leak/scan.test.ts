/**
 * The leak scan can fail: values planted in captured output (console, pino's direct fd writes, a
 * grandchild process, an HTTP body of /metrics) and in audit events (Event message, denial,
 * status) are found and named; the same value in a Secret's data is not a hit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NeedleMatcher, needlesFor } from './needles.ts';
import { scanAuditLog, scanCaptureDir, scanText } from './scan.ts';

const planted = 'planted-s3cr3t-value-0001';
const matcher = new NeedleMatcher(
  needlesFor([
    {
      source: 'secret us-east-1 leak/plant @ v1',
      value: JSON.stringify({ username: 'app', password: planted }),
    },
    {
      source: 'secret us-east-1 leak/pem @ v1',
      value: `-----BEGIN KEY-----\n${'A'.repeat(30)}planted-line\n-----END KEY-----`,
    },
  ]),
);

test('needles: the value, its JSON leaves and lines, in raw, JSON-escaped and base64 form; ordinary ones left out', () => {
  const needles = needlesFor([
    { source: 's', value: '{"user":"john.doe","password":"password","key":"pa\\"ss-word-1"}' },
  ]);
  const texts = needles.map((needle) => needle.text);
  assert.ok(texts.includes('pa"ss-word-1'));
  assert.ok(texts.includes('pa\\"ss-word-1'));
  assert.ok(texts.includes(Buffer.from('pa"ss-word-1').toString('base64')));
  for (const ordinary of ['john.doe', 'password']) assert.ok(!texts.includes(ordinary), ordinary);
  for (const value of ['short', 'not asked', 'plain text, whatever the format', '2024-03-08', '12345678']) {
    assert.deepEqual(needlesFor([{ source: 's', value }]), [], value);
  }
  for (const value of ['sup3r-s3cret-value', 'hunter22', 'Correct-Horse-Battery']) {
    assert.ok(needlesFor([{ source: 's', value }]).length > 0, value);
  }
});

test('text: a planted value is found in any form and named by line, without quoting it', () => {
  const text = [
    'starting',
    `{"level":30,"msg":"fetched","note":"${planted}"}`,
    `base64: ${Buffer.from(planted).toString('base64')}`,
    `${'A'.repeat(30)}planted-line`,
    'done',
  ].join('\n');
  const hits = scanText(text, 'output of test', matcher);
  assert.deepEqual(
    hits.map((hit) => hit.where),
    ['output of test:2', 'output of test:3', 'output of test:4'],
  );
  assert.match(hits[0]?.what ?? '', /JSON field of the value of secret us-east-1 leak\/plant @ v1/);
  for (const hit of hits) assert.ok(!`${hit.where} ${hit.what}`.includes(planted));
  assert.deepEqual(scanText('nothing to see\n', 'clean', matcher), []);
});

test('audit log: Event message, denial, status and a ConfigMap are hits; Secret data (alone or listed) is not', async () => {
  const hits = await scanAuditLog(
    fileURLToPath(new URL('./fixtures/audit-planted.jsonl', import.meta.url)),
    matcher,
  );
  assert.deepEqual(
    hits.map((hit) => hit.where),
    [
      'audit: create events team-a/db.17a by system:serviceaccount:smk:smk-controller [a-event] requestObject.message',
      'audit: patch secretsyncs/status team-a/db by system:serviceaccount:smk:smk-controller [a-status] requestObject.status.data.note',
      'audit: create pods team-a/api by tester [a-pod-denied] responseStatus.message',
      'audit: deletecollection configmaps team-a by system:serviceaccount:kube-system:namespace-controller [a-configmap-list] responseObject.items[0].data.copied',
    ],
  );
});

test('audit log: an unreadable log is itself reported, so a missing audit never passes silently', async () => {
  const hits = await scanAuditLog('/nonexistent/audit.log', matcher);
  assert.equal(hits.length, 1);
  assert.match(hits[0]?.what ?? '', /could not be read/);
});

const captureModule = fileURLToPath(new URL('./capture.ts', import.meta.url));

test('capture: every Node process under NODE_OPTIONS is captured — console, pino fd writes, a grandchild, /metrics bodies', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'smk-leak-capture-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = `
    import { createServer } from 'node:http';
    import { spawnSync } from 'node:child_process';
    import { pino } from 'pino';
    const value = process.env.PLANT;
    console.log('console', value);
    const logger = pino({}, pino.destination({ fd: 2, sync: false }));
    logger.info({ note: value + '-pino' }, 'pino line');
    logger.flush();
    spawnSync(process.execPath, ['-e', 'process.stdout.write(process.env.PLANT + "-grandchild")'], { env: process.env, stdio: 'pipe' });
    const server = createServer((request, response) => response.end('metric{x="' + value + '-http"} 1\\n'));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const response = await fetch('http://127.0.0.1:' + server.address().port + '/metrics');
    await response.text();
    server.close();
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: {
      ...process.env,
      PLANT: planted,
      SMK_LEAK_DIR: dir,
      NODE_OPTIONS: `--import=${captureModule}`,
    },
    stdio: 'pipe',
  });
  child.stdout.resume();
  child.stderr.resume();
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  const hits = await scanCaptureDir(dir, matcher);
  const places = hits.map((hit) => hit.where).join('\n');
  assert.equal(hits.length, 4, places);
  assert.match(places, /output of pid \d+: .*--input-type=module/);
  assert.match(places, /output of pid \d+: .* -e process\.stdout\.write/, 'the grandchild has its own file');
  assert.match(places, /\(HTTP 200 from http:\/\/127\.0\.0\.1:\d+\/metrics\)/);
});
