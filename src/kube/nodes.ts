/**
 * Node facts read through the API: the region a node runs in, from its well-known topology
 * label (set by the cloud provider on EKS), for roles that must pick a default AWS region.
 */
import type { V1Node } from '@kubernetes/client-node';
import { type KubeConfig, kubeError } from './client.ts';
import { createKubeHttp, resourcePath } from './http.ts';

export const regionLabel = 'topology.kubernetes.io/region';

export interface Nodes {
  /** The node's `topology.kubernetes.io/region` label, or undefined when it has none. */
  region(nodeName: string): Promise<string | undefined>;
}

export function createNodes(kubeConfig: KubeConfig): Nodes {
  const http = createKubeHttp(kubeConfig);
  return {
    async region(nodeName) {
      const node = await http
        .send<V1Node>({ method: 'GET', path: resourcePath('v1', 'nodes', undefined, { name: nodeName }) })
        .catch((error: unknown) => {
          throw kubeError(error, `Node ${nodeName}`);
        });
      const region = node.metadata?.labels?.[regionLabel]?.trim();
      return region ? region : undefined;
    },
  };
}
