/**
 * `smk doctor` against the chart installed on a real node: everything passes (webhook TLS and
 * endpoints, IRSA role through STS, the CSI provider's socket on the node); with the webhook
 * scaled to 0 it fails, and the failing line says what is wrong and what to do.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DiscoveryV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { runCommand } from '../harness/run.ts';
import {
  installSmk,
  type NodeTestWorld,
  nodeTestWorld,
  release,
  upsertSecret,
  waitFor,
  waitForReadyPod,
} from './harness.ts';

const smkBinary = new URL('../../dist/smk.mjs', import.meta.url).pathname;
const webhookDeployment = `${release.name}-webhook`;

let test: NodeTestWorld;

before(async () => {
  test = await nodeTestWorld();
  await installSmk(test);
});
after(async () => {
  await test.finish();
});

interface Doctor {
  readonly code: number;
  readonly output: string;
}

async function doctor(args: readonly string[]): Promise<Doctor> {
  const result = await runCommand(process.execPath, [smkBinary, 'doctor', ...args]);
  return { code: result.code, output: `${result.stdout}${result.stderr}` };
}

async function readyWebhookEndpoints(): Promise<number> {
  const slices = await test.kubeConfig.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
    namespace: release.namespace,
    labelSelector: `kubernetes.io/service-name=${webhookDeployment}`,
  });
  return slices.items
    .flatMap((slice) => slice.endpoints ?? [])
    .filter((endpoint) => endpoint.conditions?.ready !== false).length;
}

async function scaleWebhook(replicas: number): Promise<void> {
  await test.apps.patchNamespacedDeploymentScale(
    { namespace: release.namespace, name: webhookDeployment, body: { spec: { replicas } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

describe('smk doctor on a real node', () => {
  it('passes against the installed chart, and names the webhook when it is scaled to 0', async () => {
    const namespace = await test.node.bed.newNamespace('doctor');
    const secret = `doctor-${randomBytes(4).toString('hex')}`;
    await upsertSecret(test.secretsManager, secret, 'doctor-value');
    await test.core.createNamespacedServiceAccount({
      namespace,
      body: {
        metadata: {
          name: 'app',
          annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/app' },
        },
      },
    });
    const args = [
      '--service-account',
      `${namespace}/app`,
      '--secret',
      secret,
      '--region',
      test.region,
      '--csi-socket',
      '/var/run/secrets-store-csi-providers/aws.sock',
    ];
    const healthy = await doctor(args);
    assert.equal(healthy.code, 0, healthy.output);
    assert.match(healthy.output, /^\d+ passed, 0 failed/m, healthy.output);
    assert.match(healthy.output, /✔ webhook service reachable .* ready endpoint/);
    assert.match(healthy.output, /✔ role can describe the secret /);
    assert.match(healthy.output, /✔ CSI provider socket answers Version /);

    const replicas = (
      await test.apps.readNamespacedDeployment({ namespace: release.namespace, name: webhookDeployment })
    ).spec?.replicas;
    try {
      await scaleWebhook(0);
      await waitFor(
        'the webhook to have no ready endpoint',
        120_000,
        async () => (await readyWebhookEndpoints()) === 0,
        500,
      );
      const broken = await doctor(args);
      assert.equal(broken.code, 1, broken.output);
      const line = broken.output.split('\n').find((text) => text.includes('webhook service reachable')) ?? '';
      assert.match(line, /no ready endpoints/, broken.output);
      assert.match(broken.output, /no webhook pod is ready/);
    } finally {
      await scaleWebhook(replicas ?? 2);
      await waitForReadyPod(test, release.namespace, 'app.kubernetes.io/component=webhook');
      await waitFor(
        'the webhook endpoints back',
        120_000,
        async () => (await readyWebhookEndpoints()) > 0,
        500,
      );
    }
  });
});
