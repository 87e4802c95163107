/**
 * The local world with a real node: the node bed (control plane + containerd + kubelet +
 * kube-proxy, test/testbed/node) and moto listening on the node's bridge gateway, where pods and
 * the host both reach it. Started once per node test run (scripts/test.ts --node) or by
 * `npm run testbed -- --node`; its env is the plain world's plus SMK_NODE_BED and
 * SMK_NODE_HELM_ARGS, the values a `helm upgrade --install smk deploy/helm/smk` on this bed needs.
 */
import { copySmkContainerLogs } from '../leak/node-logs.ts';
import { auditPaths } from '../testbed/control-plane.ts';
import { type NodeBed, startNodeBed } from '../testbed/node/index.ts';
import type { SmkImage } from '../testbed/node/smk-image.ts';
import { startMoto } from './moto.ts';
import type { World } from './world.ts';

export const nodeWorldRegion = 'us-east-1';

/**
 * `--set` flags for the chart on this bed: the imported image (never pulled) and the AWS endpoint
 * as pods see it. Chart values agreed with the image build: image.repository/tag/pullPolicy,
 * webhook.agent.pullPolicy and aws.endpointUrl.
 */
export function nodeHelmArgs(image: SmkImage, awsEndpoint: string, region: string): string[] {
  return [
    `image.repository=${image.repository}`,
    `image.tag=${image.tag}`,
    'image.pullPolicy=Never',
    'webhook.agent.pullPolicy=Never',
    `aws.region=${region}`,
    `aws.endpointUrl=${awsEndpoint}`,
  ].flatMap((value) => ['--set', value]);
}

export interface NodeWorld extends World {
  readonly node: NodeBed;
}

export async function startNodeWorld(): Promise<NodeWorld> {
  const node = await startNodeBed({ region: nodeWorldRegion });
  let moto: Awaited<ReturnType<typeof startMoto>>;
  try {
    moto = await startMoto({ host: node.gateway });
  } catch (error) {
    await node.stop();
    throw error;
  }
  return {
    node,
    env: {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: nodeWorldRegion,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      KUBECONFIG: node.bed.kubeConfigPath,
      SMK_TEST_BED: node.bed.infoPath,
      SMK_NODE_BED: node.infoPath,
      SMK_CONTAINERD_ADDRESS: node.containerdSocket,
      SMK_NODE_HELM_ARGS: nodeHelmArgs(node.smkImage, moto.endpoint, nodeWorldRegion).join(' '),
    },
    auditLogPath: auditPaths(node.bed.dir).log,
    logs() {
      return `${node.logs()}\n--- moto ---\n${moto.log().split('\n').slice(-40).join('\n')}`;
    },
    collectForLeakScan: copySmkContainerLogs,
    async stop() {
      await moto.stop();
      await node.stop();
    },
  };
}
