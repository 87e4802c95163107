/**
 * Issue 14 finding 6, as found: a tenant with SecretSync rights only creates 100 SecretSyncs of
 * 100 ARNs each, every ARN in a different made-up `xx-yyyy-N` region, against `smk controller`
 * run as the chart runs it (its NODE_OPTIONS heap caps). Each region name used to cost an SDK
 * client kept forever, and the controller died of "JavaScript heap out of memory". Now a region
 * the AWS SDK does not list is refused at the spec, naming the object and field, and the process
 * stays within the chart's memory limit with its health endpoint answering.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { bundledSmk } from '../harness/bundle.ts';
import { chartLimits, mebibytes, watchRss } from '../harness/limits.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { createServiceAccount, installCrds, ready, secretSyncApi, waitFor } from './harness.ts';

let bed: TestBed;
const syncs = 100;
const arnsPerSync = 100;

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
});

after(async () => {
  await bed?.stop();
});

describe('region flood against the controller process', () => {
  it('100 SecretSyncs × 100 ARNs in made-up regions: refused by name, the process stays up and within its limit', async (t) => {
    const limits = await chartLimits('controller');
    const ns = await bed.newNamespace('flood');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'flood-role');
    const child = spawn(
      process.execPath,
      [await bundledSmk(), 'controller', '--health-port', '0', '--namespaces', ns],
      {
        env: {
          ...process.env,
          // The chart's heap caps, after whatever the test runner preloads.
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${limits.nodeOptions}`.trim(),
          POD_NAMESPACE: ns,
          POD_NAME: 'smk-controller-flood',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-20_000);
    });
    const rss = watchRss(child.pid ?? 0);
    // A death ends the test at once, with what the controller said last.
    const died = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) =>
        reject(new Error(`the controller died (${code ?? signal}; stderr tail: ${stderr.slice(-1500)})`)),
      ),
    );
    died.catch(() => undefined);
    let idleBytes = 0;
    try {
      const port = await waitFor('health port in the log', 30_000, async () => {
        const match = /"healthPort":(\d+)/.exec(stderr);
        return match ? Number(match[1]) : undefined;
      });
      const base = `http://127.0.0.1:${port}`;
      await waitFor('/readyz 200', 30_000, async () => (await fetch(`${base}/readyz`)).status === 200);
      idleBytes = rss.peakBytes;

      const api = secretSyncApi(bed.kubeConfig);
      for (let s = 0; s < syncs; s++) {
        const objects = Array.from({ length: arnsPerSync }, (_, o) => ({
          objectName: `arn:aws:secretsmanager:xx-yyyy-${s * arnsPerSync + o}:111122223333:secret:flood-${o}-AbCdEf`,
          objectAlias: `o${o}`,
        }));
        await api.create(ns, `flood-${s}`, { serviceAccountName: 'app', objects });
      }

      const refused = await Promise.race([
        died,
        waitFor('every SecretSync Ready=False', 120_000, async () => {
          const conditions = await Promise.all(
            Array.from({ length: syncs }, async (_, s) => ready(await api.get(ns, `flood-${s}`))),
          );
          return conditions.every((condition) => condition?.status === 'False') ? conditions : undefined;
        }),
      ]);
      assert.equal(child.exitCode, null, 'the controller is still running');
      for (const [s, condition] of refused.entries()) {
        assert.match(
          condition?.message ?? '',
          new RegExp(
            `objects\\[0\\] \\(arn:aws:secretsmanager:xx-yyyy-${s * arnsPerSync}:[^)]*\\): objectName is an ARN in region "xx-yyyy-${s * arnsPerSync}"`,
          ),
          `flood-${s} names the object, the field and the region`,
        );
      }
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const peak = rss.stop();
      assert.ok(peak < limits.memoryLimitBytes, `peak RSS ${mebibytes(peak)} within the chart's limit`);
    } finally {
      t.diagnostic(
        `controller RSS: ${mebibytes(idleBytes)} idle, ${mebibytes(rss.stop())} peak during the flood (chart limit ${mebibytes(limits.memoryLimitBytes)}, NODE_OPTIONS "${limits.nodeOptions}")`,
      );
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
