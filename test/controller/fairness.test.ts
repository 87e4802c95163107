/**
 * The tenant rule's "stall a process others depend on", for the shared sync controller: a tenant
 * with many slow SecretSyncs (every AWS read answered after a delay) used to fill the one work
 * queue, and another namespace's new SecretSync waited behind the whole backlog. The queue now
 * keeps one lane per namespace and serves them in turn (kube/queue.ts), so the other namespace's
 * sync waits for one turn (one read batch, 20 syncs), not for the backlog. The test compares orders, not times: how much of
 * the tenant's backlog was done when the other namespace's SecretSync became Ready.
 * Each of the tenant's SecretSyncs acts as a ServiceAccount of its own, so each really reads
 * alone: the read-ahead (controller/sync/read-ahead.ts) joins only reads of one identity, and
 * would otherwise make the backlog fast rather than fair.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  createAwsSecret,
  createServiceAccount,
  installCrds,
  ready,
  secretSyncApi,
  secretsManager,
  startController,
  waitFor,
} from './harness.ts';

let bed: TestBed;
let proxy: AwsProxy;
const moto = connectMoto();
const backlog = 60;

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
  proxy = await startAwsProxy({ target: moto.endpoint });
});
after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

describe('the sync queue serves namespaces in turn', () => {
  it("a tenant's backlog of slow SecretSyncs does not hold another namespace's new one", async (t) => {
    const api = secretSyncApi(bed.kubeConfig);
    const aws = secretsManager(proxy.endpoint);
    const noisy = await bed.newNamespace('fair-noisy');
    const quiet = await bed.newNamespace('fair-quiet');
    for (let i = 0; i < backlog; i++) {
      await createServiceAccount(bed.kubeConfig, noisy, `app-${i}`, 'fair-noisy-role');
    }
    await createServiceAccount(bed.kubeConfig, quiet, 'app', 'fair-quiet-role');
    for (let i = 0; i < backlog; i++) await createAwsSecret(aws, `${noisy}/s${i}`, `noisy-value-${i}-Fq8`);
    await createAwsSecret(aws, `${quiet}/db`, 'quiet-value-Fq8');
    for (let i = 0; i < backlog; i++) {
      await api.create(noisy, `s${i}`, {
        serviceAccountName: `app-${i}`,
        objects: [{ objectName: `${noisy}/s${i}`, objectType: 'secretsmanager' }],
      });
    }
    // Every value read takes 400 ms, for both namespaces alike; two workers.
    for (const api of ['BatchGetSecretValue', 'GetSecretValue']) {
      proxy.addFault({ api, fault: { kind: 'latency', ms: 400 } });
    }
    const running = await startController(bed.kubeConfig, proxy.endpoint, {
      namespaces: [noisy, quiet],
      concurrency: 2,
    });
    try {
      const readyIn = async (namespace: string): Promise<number> => {
        const list = (await api.list(namespace)).items;
        return list.filter((item) => ready(item)?.status === 'True').length;
      };
      await waitFor('the backlog under way', 60_000, async () => (await readyIn(noisy)) >= 2);
      await api.create(quiet, 'db', {
        serviceAccountName: 'app',
        objects: [{ objectName: `${quiet}/db`, objectType: 'secretsmanager' }],
      });
      await waitFor(
        'the quiet namespace synced',
        120_000,
        async () => ready(await api.get(quiet, 'db'))?.status === 'True',
      );
      const doneBefore = await readyIn(noisy);
      t.diagnostic(`${doneBefore} of the tenant's ${backlog} SecretSyncs were done first`);
      // In turn: those in flight and one turn of 20 at most. Behind it: nearly all 60.
      assert.ok(
        doneBefore < backlog / 2,
        `${doneBefore} of the tenant's ${backlog} SecretSyncs were done before the other namespace's one`,
      );
      await waitFor('the backlog done', 120_000, async () => (await readyIn(noisy)) === backlog);
    } finally {
      proxy.clearFaults();
      await running.stop();
    }
  });
});
