/**
 * `smk webhook` as a process: serves the review over HTTPS, reports readiness, and on SIGTERM
 * fails readiness first, keeps answering through the shutdown delay, then exits 0. And as the
 * README's `smk webhook --tls-secret NAME …` says: self-managed TLS without --tls-cert/--tls-key,
 * called by the real API server through the caBundle it patched.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AdmissionregistrationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import { freePort } from '../harness/ports.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';

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

describe('smk webhook --tls-secret without --tls-cert/--tls-key (on the test bed)', () => {
  let bed: TestBed;
  let namespace: string;
  let temp: string;
  let child: ChildProcessWithoutNullStreams | undefined;
  let configuration = '';
  let output = '';

  before(async () => {
    bed = await connectTestBed();
    namespace = await bed.newNamespace('webhook-tls-secret');
    temp = await mkdtemp(join(tmpdir(), 'smk-webhook-tmp-'));
  });

  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (configuration) {
      await bed.kubeConfig
        .makeApiClient(AdmissionregistrationV1Api)
        .deleteMutatingWebhookConfiguration({ name: configuration })
        .catch(() => undefined);
    }
    await rm(temp, { recursive: true, force: true });
    await bed?.stop();
  });

  test('the API server calls it through the caBundle it patched; its key files live in a private temp dir, gone at exit', async () => {
    const port = await freePort();
    configuration = `smk-tls-secret-${namespace}`;
    await bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: {
        metadata: { name: configuration },
        webhooks: [
          {
            name: 'inject.smk.dev',
            // No caBundle: the webhook patches it in, as with the chart's self-managed TLS.
            clientConfig: { url: `https://127.0.0.1:${port}/mutate/pods` },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            failurePolicy: 'Fail',
            timeoutSeconds: 5,
          },
        ],
      },
    });
    // TMPDIR of its own, so the test sees exactly what the process leaves in it.
    child = spawn(
      process.execPath,
      [
        cli,
        'webhook',
        '--tls-secret=smk-webhook-tls',
        '--tls-service=smk-webhook',
        `--tls-namespace=${namespace}`,
        `--tls-webhook-config=${configuration}`,
        `--port=${port}`,
        '--host=127.0.0.1',
        '--agent-image=registry.invalid/smk:tls-secret',
        '--shutdown-delay=0',
      ],
      { env: { ...process.env, KUBECONFIG: bed.kubeConfigPath, TMPDIR: temp, SMK_LOG_LEVEL: 'info' } },
    );
    const running = child;
    await new Promise<void>((resolve, reject) => {
      running.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('"msg":"webhook listening"')) resolve();
      });
      running.on('exit', (code) => reject(new Error(`smk webhook exited ${code}: ${output}`)));
    });

    const [dir = '', ...others] = await readdir(temp);
    assert.ok(dir.startsWith('smk-webhook-tls-') && others.length === 0, `one private dir: ${dir} ${others}`);
    assert.equal((await stat(join(temp, dir))).mode & 0o777, 0o700);
    assert.deepEqual((await readdir(join(temp, dir))).sort(), ['tls.crt', 'tls.key']);

    // A dry-run create makes the API server call the webhook over TLS, trusting only the caBundle.
    const pod = await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedPod({
      namespace,
      dryRun: 'All',
      body: {
        metadata: {
          name: 'app',
          annotations: {
            'smk.dev/inject': 'true',
            'smk.dev/objects': '- {objectName: app/db, objectType: secretsmanager}',
          },
        },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    assert.deepEqual(
      pod.spec?.initContainers?.map((container) => container.image),
      ['registry.invalid/smk:tls-secret'],
    );

    const exited = once(running, 'exit');
    running.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, output);
    assert.deepEqual(await readdir(temp), [], 'the key files are removed at exit');
  });
});
