/**
 * `smk webhook` as a process: serves the review over HTTPS, reports readiness, and on SIGTERM
 * fails readiness first, keeps answering through the shutdown delay, then exits 0.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCertificateAuthority, issueServingCertificate } from '../../src/kube/pki.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const review = new URL('../../src/webhook/fixtures/admission-review-3-containers.json', import.meta.url);

function call(
  port: number,
  caPem: string,
  path: string,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', ca: caPem, agent: false },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('smk webhook (process)', () => {
  let work: string;
  let caPem: string;
  let child: ChildProcessWithoutNullStreams;
  let port = 0;
  let stderr = '';

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'smk-webhook-cli-'));
    const ca = await createCertificateAuthority({ commonName: 'cli test CA', validForDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'webhook', ipAddresses: ['127.0.0.1'] });
    caPem = ca.certPem;
    await writeFile(join(work, 'tls.crt'), serving.certPem);
    await writeFile(join(work, 'tls.key'), serving.keyPem);
    child = spawn(
      process.execPath,
      [
        cli,
        'webhook',
        '--tls-cert',
        join(work, 'tls.crt'),
        '--tls-key',
        join(work, 'tls.key'),
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--agent-image',
        'registry.invalid/smk:cli',
        '--shutdown-delay',
        '1',
      ],
      { env: { ...process.env, SMK_LOG_LEVEL: 'info' } },
    );
    port = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const found = /"port":(\d+),"msg":"webhook listening"/.exec(stderr);
        if (found) resolve(Number(found[1]));
      });
      child.on('exit', (code) => reject(new Error(`smk webhook exited ${code}: ${stderr}`)));
    });
  });

  after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  });

  test('answers reviews with the configured agent image', async () => {
    assert.equal((await call(port, caPem, '/readyz')).status, 200);
    const answer = await call(port, caPem, '/mutate/pods', await readFile(review, 'utf8'));
    assert.equal(answer.status, 200);
    const patch = JSON.parse(Buffer.from(JSON.parse(answer.body).response.patch, 'base64').toString('utf8'));
    assert.match(JSON.stringify(patch), /registry\.invalid\/smk:cli/);
  });

  test('SIGTERM: readiness fails, reviews are still answered during the delay, then exit 0', async () => {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await call(port, caPem, '/readyz')).status, 503);
    assert.equal((await call(port, caPem, '/mutate/pods', await readFile(review, 'utf8'))).status, 200);
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /webhook stopped/);
  });
});
