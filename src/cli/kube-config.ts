/**
 * The kubeconfig of a command, found as kubectl finds it (KUBECONFIG, else ~/.kube/config, else the
 * pod's in-cluster ServiceAccount) — and when there is none, or it cannot be read, the message says
 * which file and why, instead of the client's silent fallback to http://localhost:8080 or a bare
 * error from deep inside.
 */
import { delimiter } from 'node:path';
import { kubeConfigEnvironment } from '../config.ts';
import { InvalidInputError } from '../core/errors.ts';
import { type KubeConfig, loadKubeConfig } from '../kube/client.ts';
import { systemErrorReason } from './errors.ts';
import { inClusterTokenPath, type KubeConfigSource, kubeConfigSource } from './kube-source.ts';

export { inClusterTokenPath, kubeConfigSource };

function describeSource(source: KubeConfigSource): string {
  switch (source.kind) {
    case 'env':
      return `the kubeconfig ${source.files.join(delimiter)} (from KUBECONFIG)`;
    case 'home':
      return `the kubeconfig ${source.file}`;
    case 'in-cluster':
      return `the in-cluster configuration (${inClusterTokenPath}, KUBERNETES_SERVICE_HOST)`;
    case 'none':
      return 'no kubeconfig';
  }
}

/** The kubeconfig, or what is wrong with it (naming the file or the variable), without the command's name. */
export function findKubeConfig(): { readonly kubeConfig: KubeConfig } | { readonly problem: string } {
  const env = kubeConfigEnvironment();
  const source = kubeConfigSource(env);
  if (source.kind === 'none') {
    return {
      problem: `no kubeconfig: set KUBECONFIG, write ${source.homeFile}, or run smk in a pod (in-cluster: ${inClusterTokenPath})`,
    };
  }
  if (source.kind === 'in-cluster' && !env.serviceHost) {
    return {
      problem: `${inClusterTokenPath} is there but KUBERNETES_SERVICE_HOST is not set: set KUBECONFIG instead`,
    };
  }
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig();
  } catch (error) {
    // A file that is there but not a kubeconfig is named by its class only: its text may hold credentials.
    const reason =
      systemErrorReason(error) ?? `not a valid kubeconfig (${error instanceof Error ? error.name : 'error'})`;
    return { problem: `${describeSource(source)}: ${reason}` };
  }
  if (!kubeConfig.getCurrentCluster()) {
    return {
      problem: `${describeSource(source)}: no current context with a cluster (kubectl config use-context NAME)`,
    };
  }
  return { kubeConfig };
}

/** The kubeconfig of a role that cannot work without one: what is wrong with it stops the command. */
export function loadCommandKubeConfig(command: string): KubeConfig {
  const found = findKubeConfig();
  if ('problem' in found) {
    throw new InvalidInputError(`smk ${command}: ${found.problem}`, {
      subject: 'kubeconfig',
      field: 'KUBECONFIG',
    });
  }
  return found.kubeConfig;
}
