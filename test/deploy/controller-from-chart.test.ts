/**
 * The controller run from the rendered chart: the chart's CRDs, ServiceAccount and RBAC applied for
 * real, `smk controller` started with the rendered Deployment's args and env as the rendered
 * ServiceAccount. Its caches sync (every informer's list/watch allowed), it takes both Leases (sync
 * and rotation) and nothing it does is forbidden — so the chart's least-privilege rules are enough.
 * Local-run changes only: the health port is made free, the AWS environment is the test's moto
 * (in a cluster, IRSA gives the credentials), and the controller is confined to the test's namespace
 * (`--namespaces`): cluster-wide it would sync, and roll, the objects of every other test running on
 * the shared bed (it did: a sync test's outage was healed behind its back). The rendered
 * ClusterRole and its binding are still what authorise every call.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiException, CoordinationV1Api, KubernetesObjectApi } from '@kubernetes/client-node';
import { freePort } from '../harness/ports.ts';
import { eventually } from '../harness/wait.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { renderKubeConfig } from '../testbed/kubeconfig.ts';
import {
  controllerAccess,
  find,
  helm,
  objectName,
  type RenderedObject,
  renderChart,
  serverSideApply,
} from './helm.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Container {
  args: string[];
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
}

function httpStatus(port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

describe('the controller run from the rendered chart on the API server', () => {
  let bed: TestBed;
  let namespace: string;
  let rendered: RenderedObject[];
  const release = `ctl-${Math.random().toString(36).slice(2, 8)}`;
  const created: RenderedObject[] = [];
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  let output = '';

  before(
    async () => {
      await helm();
      bed = await connectTestBed();
      namespace = await bed.newNamespace('chart-controller');
      ({ objects: rendered } = await renderChart({
        release,
        namespace,
        setJson: { 'webhook.enabled': false },
      }));
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    const client = bed ? KubernetesObjectApi.makeApiClient(bed.kubeConfig) : undefined;
    for (const object of created) await client?.delete(object).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
    await bed?.stop();
  });

  test('smk controller with the rendered args and RBAC: caches synced, its one Lease held (no other), nothing forbidden', async () => {
    const deployment = find(rendered, 'Deployment', `${release}-smk-controller`);
    const pod = (
      deployment.spec as { template: { spec: { serviceAccountName: string; containers: Container[] } } }
    ).template.spec;
    const [container] = pod.containers;
    assert.ok(container);
    // CRDs (shared with other tests: applied, never deleted), the ServiceAccount and its RBAC.
    const needed = [
      ...rendered.filter((object) => object.kind === 'CustomResourceDefinition'),
      ...controllerAccess(rendered),
    ];
    for (const object of needed) {
      await serverSideApply(bed.kubeConfig, object, { dryRun: false, fieldManager: 'helm' }).catch(
        (error: unknown) => {
          throw new Error(
            `${objectName(object)}: ${error instanceof ApiException ? String(error.body) : String(error)}`,
          );
        },
      );
      if (!object.metadata.namespace && object.kind !== 'CustomResourceDefinition') created.push(object);
    }

    dir = await mkdtemp(join(tmpdir(), 'smk-chart-controller-'));
    const kubeconfig = join(dir, 'kubeconfig');
    const token = await bed.serviceAccountToken(namespace, pod.serviceAccountName);
    await writeFile(
      kubeconfig,
      renderKubeConfig({
        server: bed.serverUrl,
        caPem: bed.caPem,
        credentials: { name: `system:serviceaccount:${namespace}:${pod.serviceAccountName}`, token },
        namespace,
      }),
    );
    const podName = `${release}-smk-controller-0`;
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, KUBECONFIG: kubeconfig };
    for (const name of ['AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      if (process.env[name]) env[name] = process.env[name];
    }
    for (const variable of container.env) {
      const field = variable.valueFrom?.fieldRef?.fieldPath;
      if (variable.value !== undefined) env[variable.name] = variable.value;
      else if (field === 'metadata.namespace') env[variable.name] = namespace;
      else if (field === 'metadata.name') env[variable.name] = podName;
      else assert.fail(`unexpected env source for ${variable.name}`);
    }
    const port = await freePort();
    const args = container.args.map((arg) =>
      arg.startsWith('--health-port=') ? `--health-port=${port}` : arg,
    );
    assert.ok(
      args.includes('--leader-elect=true') &&
        args.includes('--rotation=true') &&
        args.includes('--reloader-annotations=false'),
      'rendered defaults',
    );
    assert.ok(!args.some((arg) => arg.startsWith('--namespaces')), 'rendered for the whole cluster');
    args.push(`--namespaces=${namespace}`);
    child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });

    const coordination = bed.kubeConfig.makeApiClient(CoordinationV1Api);
    try {
      await eventually('/readyz 200', async () =>
        (await httpStatus(port, '/readyz')) === 200 ? true : undefined,
      );
      // One Lease for every controller of the process (sync, rotation): the chart grants no other.
      const lease = `${release}-smk-controller`;
      const holder = await eventually(`Lease ${lease} held`, async () => {
        const found = await coordination.readNamespacedLease({ name: lease, namespace });
        return found.spec?.holderIdentity || undefined;
      });
      assert.ok(holder.startsWith(podName), `${lease} held by ${holder}`);
      await eventually('rotation started', async () =>
        /rotation leader: detecting changes/.test(output) ? true : undefined,
      );
      const leases = await coordination.listNamespacedLease({ namespace });
      assert.deepEqual(
        leases.items.map((item) => item.metadata?.name),
        [lease],
        'no Lease of its own for rotation',
      );
    } catch (error) {
      throw new Error(`${String(error)}\n--- controller output ---\n${output.slice(-4000)}`);
    }
    assert.doesNotMatch(output, /forbidden|HTTP 403/i, 'no API call was refused');

    const code = await new Promise<number | null>((resolve) => {
      child?.once('exit', resolve);
      child?.kill('SIGTERM');
    });
    assert.equal(code, 0, 'clean exit on SIGTERM');
  });
});
