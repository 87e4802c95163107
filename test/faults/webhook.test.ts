/**
 * The admission webhook makes no AWS call, so AWS being down changes nothing for it: `smk webhook`
 * runs with AWS_ENDPOINT_URL pointing at a fault proxy in full outage and still answers every
 * AdmissionReview with its patch; the proxy sees not even a connection.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import { startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { freePort } from '../harness/ports.ts';
import { waitFor } from './controller-world.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const reviewFixture = new URL(
  '../../src/webhook/fixtures/admission-review-3-containers.json',
  import.meta.url,
);

function post(port: number, caPem: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate/pods',
        method: 'POST',
        ca: caPem,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (incoming) => {
        let text = '';
        incoming.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: text }));
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

test('smk webhook keeps answering admission with AWS unreachable, and never dials it', async (t) => {
  const moto = connectMoto();
  const proxy = await startAwsProxy({ target: moto.endpoint });
  t.after(() => proxy.stop());
  proxy.addFault({ fault: { kind: 'outage' } });
  const work = await mkdtemp(join(tmpdir(), 'smk-faults-webhook-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const ca = await createCertificateAuthority({ commonName: 'smk-faults-webhook-ca', validForDays: 1 });
  const serving = await issueServingCertificate(ca, {
    commonName: 'smk-webhook',
    ipAddresses: ['127.0.0.1'],
  });
  await writeFile(join(work, 'tls.crt'), serving.certPem);
  await writeFile(join(work, 'tls.key'), serving.keyPem, { mode: 0o600 });
  const port = await freePort();
  const args = ['webhook', '--tls-cert', join(work, 'tls.crt'), '--tls-key', join(work, 'tls.key')];
  args.push('--port', String(port), '--host', '127.0.0.1', '--shutdown-delay', '0');
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, AWS_ENDPOINT_URL: proxy.endpoint },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let log = '';
  child.stdout.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  await waitFor('the webhook ready', 30_000, async () => log.includes('injector ready'));

  const review = await readFile(reviewFixture, 'utf8');
  const answers = await Promise.all(Array.from({ length: 20 }, () => post(port, ca.certPem, review)));
  for (const answer of answers) {
    assert.equal(answer.status, 200, answer.body);
    const parsed = JSON.parse(answer.body) as { response: { allowed: boolean; patch?: string } };
    assert.equal(parsed.response.allowed, true);
    assert.ok(parsed.response.patch, 'the pod is injected');
  }
  assert.equal(proxy.calls().length + proxy.refusedConnections(), 0, 'the webhook dialled AWS');
});
