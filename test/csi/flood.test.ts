/**
 * Issue 14 finding 6 for the CSI provider: mounts whose objects are ARNs in made-up `xx-yyyy-N`
 * regions. Each region name used to cost an SDK client kept for the life of the node's provider,
 * so a tenant could grow it without bound. Now a region the AWS SDK does not list is refused at
 * the spec, naming the object and field, and the provider stays within the chart's limit.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { connectProvider, MountCallError } from '../../src/csi/client.ts';
import { bundledSmk } from '../harness/bundle.ts';
import { chartLimits, mebibytes, watchRss } from '../harness/limits.ts';
import { freePort } from '../harness/ports.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { uniqueName } from './harness.ts';

const mounts = 100;
const arnsPerMount = 100;

describe('region flood against smk csi-provider (process)', () => {
  let bed: TestBed;
  let directory: string;
  let child: ChildProcess | undefined;

  before(async () => {
    bed = await connectTestBed();
    directory = await mkdtemp(join(tmpdir(), 'smk-csi-flood-'));
  });
  after(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    await rm(directory, { recursive: true, force: true });
    await bed?.stop();
  });

  it('100 mounts × 100 ARNs in made-up regions: refused by name, the provider stays up and within its limit', async (t) => {
    const limits = await chartLimits('csiProvider');
    const volume = join(directory, 'providers');
    const healthPort = await freePort();
    const running = spawn(
      process.execPath,
      [await bundledSmk(), 'csi-provider', '--provider-volume', volume, '--health-port', String(healthPort)],
      {
        env: {
          ...process.env,
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${limits.nodeOptions}`.trim(),
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    child = running;
    let stderr = '';
    running.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-20_000);
    });
    const socketPath = join(volume, 'aws.sock');
    for (let i = 0; i < 300 && !(await stat(socketPath).catch(() => undefined)); i++) await sleep(100);
    const rss = watchRss(running.pid ?? 0);
    const idle = rss.peakBytes;
    const client = connectProvider(socketPath);
    const outcomes: string[] = [];
    try {
      const namespace = await bed.newNamespace('csi-flood');
      const account = uniqueName('sa');
      await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
        namespace,
        body: {
          metadata: {
            name: account,
            annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/csi-flood' },
          },
        },
      });
      const token = await bed.serviceAccountToken(namespace, account, 'sts.amazonaws.com');
      const mount = async (m: number): Promise<string> => {
        const objects = Array.from({ length: arnsPerMount }, (_, o) => ({
          objectName: `arn:aws:secretsmanager:xx-yyyy-${m * arnsPerMount + o}:111122223333:secret:flood-${o}-AbCdEf`,
          objectAlias: `o${o}`,
        }));
        return client
          .mount(
            {
              attributes: JSON.stringify({
                objects: JSON.stringify(objects),
                secretProviderClass: 'flood',
                'csi.storage.k8s.io/pod.name': `flood-${m}`,
                'csi.storage.k8s.io/pod.namespace': namespace,
                'csi.storage.k8s.io/serviceAccount.name': account,
                'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({
                  'sts.amazonaws.com': { token },
                }),
              }),
              permission: '420',
              target_path: `/var/lib/kubelet/pods/flood-${m}/volumes/kubernetes.io~csi/s/mount`,
            },
            10_000,
          )
          .then(
            () => 'mounted',
            (error: unknown) => (error instanceof MountCallError ? error.details : String(error)),
          );
      };
      // Ten pods mounting at once, as a node starting a Deployment would.
      for (let first = 0; first < mounts; first += 10) {
        outcomes.push(...(await Promise.all(Array.from({ length: 10 }, (_, k) => mount(first + k)))));
        assert.equal(running.exitCode, null, `the provider died (stderr tail: ${stderr.slice(-1500)})`);
      }
      assert.equal((await fetch(`http://127.0.0.1:${healthPort}/healthz`)).status, 200);
      for (const [m, outcome] of outcomes.entries()) {
        assert.match(
          outcome,
          new RegExp(
            `objects\\[0\\] \\(arn:aws:secretsmanager:xx-yyyy-${m * arnsPerMount}:[^)]*\\): objectName is an ARN in region "xx-yyyy-${m * arnsPerMount}"`,
          ),
          `mount ${m} names the object, the field and the region`,
        );
      }
      const peak = rss.stop();
      assert.ok(peak < limits.memoryLimitBytes, `peak RSS ${mebibytes(peak)} within the chart's limit`);
    } finally {
      client.close();
      t.diagnostic(
        `csi-provider RSS: ${mebibytes(idle)} idle, ${mebibytes(rss.stop())} peak during ${outcomes.length} mounts (chart limit ${mebibytes(limits.memoryLimitBytes)})`,
      );
    }
  });
});
