/**
 * The end-of-run leak scan, end to end on the real world: a value created in moto and planted in
 * an Event, an annotation and a process's output is found and named, its copy in a Secret's data
 * is not a hit, and once the secret is gone from moto the same places hold nothing registered —
 * registration comes from moto, with no help from the test that leaked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { CoreV1Api } from '@kubernetes/client-node';
import { connectMoto } from '../harness/moto.ts';
import { auditPaths } from '../testbed/control-plane.ts';
import { connectTestBed } from '../testbed/index.ts';
import { runLeakScan } from './run.ts';

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('leak scan: planted values are found where they were put, and only while moto holds them', async (t) => {
  const moto = connectMoto();
  const bed = await connectTestBed();
  t.after(() => bed.stop());
  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  const namespace = await bed.newNamespace('leak-plant');
  const prefix = `leak-plant-${randomBytes(4).toString('hex')}`;
  const value = `planted-${randomBytes(12).toString('hex')}`;
  const sm = new SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint });
  t.after(() => sm.destroy());
  await sm.send(
    new CreateSecretCommand({ Name: `${prefix}/db`, SecretString: JSON.stringify({ password: value }) }),
  );
  const removeSecret = () =>
    sm
      .send(new DeleteSecretCommand({ SecretId: `${prefix}/db`, ForceDeleteWithoutRecovery: true }))
      .then(() => undefined);
  t.after(() => removeSecret().catch(() => undefined));

  await core.createNamespacedEvent({
    namespace,
    body: {
      metadata: { name: `${prefix}.1` },
      involvedObject: { kind: 'Pod', namespace, name: 'api' },
      reason: 'SyncFailed',
      message: `value was ${value}`,
      type: 'Warning',
    },
  });
  await core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: 'planted', annotations: { 'example.com/note': value } } },
  });
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: 'synced' }, stringData: { password: value } },
  });

  const captureDir = await mkdtemp(join(tmpdir(), 'smk-leak-plant-'));
  t.after(() => rm(captureDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['-e', 'console.error("debug:", process.env.PLANT)'], {
    env: {
      ...process.env,
      PLANT: value,
      SMK_LEAK_DIR: captureDir,
      NODE_OPTIONS: `--import=${fileURLToPath(new URL('./capture.ts', import.meta.url))}`,
    },
    stdio: 'ignore',
  });
  await once(child, 'exit');

  const scan = () =>
    runLeakScan({
      awsEndpoint: moto.endpoint,
      captureDir,
      auditLogPath: auditPaths(bed.dir).log,
      // Mid-run: only this test's secret, and no restore of other tests' deleted ones.
      moto: { namePrefix: prefix, restoreDeleted: false },
    });
  // The API server's audit records each write with what was sent and what it stored.
  const expected = ['requestObject', 'responseObject'].flatMap((side) => [
    new RegExp(`^audit: create events ${namespace}/${prefix}\\.1 by .* ${side}\\.message$`),
    new RegExp(
      `^audit: create configmaps ${namespace}/planted by .* ${side}\\.metadata\\.annotations\\["example\\.com/note"\\]$`,
    ),
  ]);
  expected.push(/^output of pid \d+: .* -e console\.error.*:\d+$/);
  let result = await scan();
  // The API server writes its audit log a moment after answering.
  for (let attempt = 0; attempt < 40 && result.hits.length < expected.length; attempt += 1) {
    await delay(250);
    result = await scan();
  }
  const places = result.hits.map((hit) => hit.where);
  assert.equal(places.length, expected.length, result.report);
  for (const pattern of expected)
    assert.ok(
      places.some((place) => pattern.test(place)),
      `${pattern} not in\n${result.report}`,
    );
  assert.ok(!places.some((place) => place.includes(' secrets ')), 'the Secret data is not a leak');
  for (const hit of result.hits) assert.match(hit.what, new RegExp(`of secret us-east-1 ${prefix}/db @ `));
  assert.ok(!result.report.includes(value), 'the report never prints the value');

  await removeSecret();
  const after = await scan();
  assert.deepEqual(after.hits, [], after.report);
});
