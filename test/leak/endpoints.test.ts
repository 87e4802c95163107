/**
 * smk's own HTTP endpoints after real work carry no secret value: the controller's /metrics,
 * /healthz and /readyz once it has synced (and failed to sync) secrets, and the webhook's after
 * it has injected pods. Checked here directly against the values; the bodies fetched with
 * fetch() also land in the run's capture, so the end-of-run scan reads them too. (The CSI
 * provider's /metrics and /healthz are fetched by test/csi/cli.test.ts after its mounts.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import {
  createAwsSecrets,
  createSecretSync,
  createTenantServiceAccount,
  decode,
  installSecretSyncCrd,
  listSecretSyncs,
  listSecrets,
  secretsManager,
  startControllerProcess,
  uniqueName,
  waitFor,
} from '../faults/controller-world.ts';
import { startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { freePort } from '../harness/ports.ts';
import { connectTestBed } from '../testbed/index.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function assertClean(where: string, body: string, values: readonly string[]): void {
  assert.ok(body.length > 0, `${where} answered nothing`);
  for (const value of values) {
    for (const form of [value, Buffer.from(value).toString('base64')]) {
      assert.ok(!body.includes(form), `${where} contains a secret value`);
    }
  }
}

test('the controller endpoints after syncs and a failed sync hold no value', async (t) => {
  const bed = await connectTestBed();
  t.after(() => bed.stop());
  await installSecretSyncCrd(bed.kubeConfig);
  const moto = connectMoto();
  const aws = secretsManager(moto.endpoint);
  t.after(() => aws.destroy());
  const proxy = await startAwsProxy({ target: moto.endpoint });
  t.after(() => proxy.stop());
  const namespace = await bed.newNamespace('leak-endpoints');
  await createTenantServiceAccount(bed.kubeConfig, namespace, 'app');
  const names = [uniqueName('leak-endpoint'), uniqueName('leak-endpoint')];
  const values = names.map((name) => `endpoint-value-${name}-${uniqueName('v')}`);
  await createAwsSecrets(aws, names, (name) => values[names.indexOf(name)] ?? '');
  for (const name of names) {
    await createSecretSync(bed.kubeConfig, namespace, name, {
      serviceAccountName: 'app',
      region: 'us-east-1',
      objects: [{ objectName: name, objectType: 'secretsmanager', objectAlias: 'value' }],
    });
  }
  // One that fails: a jmesPath on a value that is not JSON (the error path must not quote it).
  await createSecretSync(bed.kubeConfig, namespace, 'broken', {
    serviceAccountName: 'app',
    region: 'us-east-1',
    objects: [
      {
        objectName: names[0],
        objectType: 'secretsmanager',
        jmesPath: [{ path: 'password', objectAlias: 'password' }],
      },
    ],
  });
  const controller = startControllerProcess({
    name: 'leak',
    namespace,
    awsEndpoint: proxy.endpoint,
    kubeConfigPath: bed.kubeConfigPath,
    leaseName: 'smk-controller',
  });
  t.after(() => controller.kill('SIGTERM'));
  await waitFor('both Secrets synced', 60_000, async () => {
    const synced = await listSecrets(bed.kubeConfig, namespace);
    return names.every((name, index) =>
      synced.some((secret) => secret.metadata?.name === name && decode(secret.data?.value) === values[index]),
    );
  });
  await waitFor('the broken one failing', 30_000, async () =>
    (await listSecretSyncs(bed.kubeConfig, namespace)).some(
      (state) => state.name === 'broken' && state.ready?.status === 'False',
    ),
  );
  const port = await controller.healthPort();
  for (const path of ['/metrics', '/healthz', '/readyz']) {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    assertClean(`controller ${path}`, await response.text(), values);
  }
  assert.doesNotMatch(controller.log(), /endpoint-value-/, 'no value in the controller log');
});

function call(port: number, caPem: string, method: 'GET' | 'POST', path: string, body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, method, ca: caPem }, (incoming) => {
      let text = '';
      incoming.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      incoming.on('end', () => resolve(text));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

test('the webhook endpoints after injections and denials hold no annotation content', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'smk-leak-webhook-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const ca = await createCertificateAuthority({ commonName: 'smk-leak-webhook-ca', validForDays: 1 });
  const serving = await issueServingCertificate(ca, {
    commonName: 'smk-webhook',
    ipAddresses: ['127.0.0.1'],
  });
  await writeFile(join(work, 'tls.crt'), serving.certPem);
  await writeFile(join(work, 'tls.key'), serving.keyPem, { mode: 0o600 });
  const port = await freePort();
  const args = ['webhook', '--tls-cert', join(work, 'tls.crt'), '--tls-key', join(work, 'tls.key')];
  args.push('--port', String(port), '--host', '127.0.0.1', '--shutdown-delay', '0');
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let log = '';
  child.stdout.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  await waitFor('the webhook ready', 30_000, async () => log.includes('injector ready'));

  // A pod that smuggles a value-like string into an annotation the webhook refuses.
  const smuggled = `smuggled-${uniqueName('value')}`;
  const review = JSON.parse(
    await readFile(
      new URL('../../src/webhook/fixtures/admission-review-3-containers.json', import.meta.url),
      'utf8',
    ),
  ) as { request: { object: { metadata: { annotations: Record<string, string> } } } };
  await call(port, ca.certPem, 'POST', '/mutate/pods', JSON.stringify(review));
  review.request.object.metadata.annotations['smk.dev/region'] = smuggled;
  const denied = await call(port, ca.certPem, 'POST', '/mutate/pods', JSON.stringify(review));
  assert.match(denied, /"allowed":false/);
  assert.ok(!denied.includes(smuggled), 'the denial does not echo the annotation value');
  for (const path of ['/metrics', '/healthz', '/readyz']) {
    assertClean(`webhook ${path}`, await call(port, ca.certPem, 'GET', path), [smuggled]);
  }
  assert.ok(!log.includes(smuggled), 'the webhook log does not echo the annotation value');
});
