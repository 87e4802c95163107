/**
 * How a role that only needs the undici transport (the webhook) reaches the API server: in a pod,
 * the in-cluster endpoint (no client-node at all: its modules are ~40 MiB of the webhook's RSS);
 * elsewhere (tests, a developer's kubeconfig) client-node reads the kubeconfig, loaded only then.
 */
import { inClusterEnvironment, kubeConfigEnvironment } from '../config.ts';
import type { KubeAccess } from '../kube/endpoint.ts';
import { inClusterEndpoint } from '../kube/in-cluster.ts';
import { kubeConfigSource } from './kube-source.ts';

export async function loadCommandKubeAccess(command: string): Promise<KubeAccess> {
  const environment = kubeConfigEnvironment();
  // Same order as kubectl and findKubeConfig: a kubeconfig, when there is one, wins.
  if (kubeConfigSource(environment).kind === 'in-cluster' && environment.serviceHost) {
    return inClusterEndpoint(inClusterEnvironment());
  }
  return (await import('./kube-config.ts')).loadCommandKubeConfig(command);
}
