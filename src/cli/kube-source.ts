/**
 * Which kubeconfig a command uses, found as kubectl finds it (KUBECONFIG, else ~/.kube/config, else
 * the pod's in-cluster ServiceAccount). Apart from ./kube-config.ts, which loads client-node to read
 * the files: a process in a pod decides here and never loads it (./kube-access.ts).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { KubeConfigEnvironment } from '../config.ts';
import { serviceAccountDir } from '../kube/in-cluster.ts';

/** Where the in-cluster ServiceAccount token is mounted (client-node and client-go read it there). */
export const inClusterTokenPath = join(serviceAccountDir, 'token');

export type KubeConfigSource =
  | { readonly kind: 'env'; readonly files: readonly string[] }
  | { readonly kind: 'home'; readonly file: string }
  | { readonly kind: 'in-cluster' }
  | { readonly kind: 'none'; readonly homeFile: string };

export function kubeConfigSource(env: KubeConfigEnvironment): KubeConfigSource {
  const files = (env.kubeConfig ?? '').split(delimiter).filter((file) => file !== '');
  if (files.length > 0) return { kind: 'env', files };
  const homeFile = join(env.home ?? homedir(), '.kube', 'config');
  if (existsSync(homeFile)) return { kind: 'home', file: homeFile };
  if (existsSync(inClusterTokenPath)) return { kind: 'in-cluster' };
  return { kind: 'none', homeFile };
}
