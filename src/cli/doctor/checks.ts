/**
 * `smk doctor`'s checks, in the order a person would fix things. Each returns a verdict (pass /
 * fail / warn / skip) with one line of detail and, for a failure, a hint saying what to do. Checks
 * never throw: an unexpected error becomes a failure naming the object. Nothing here reads or
 * prints a secret value (DescribeSecret only). One file per group of checks: cluster.ts,
 * webhook.ts, identity.ts, outside.ts (queue, CSI socket).
 */
import { createKubeHttp } from '../../kube/http.ts';
import { checkCluster, checkCrds } from './cluster.ts';
import { checkIdentity } from './identity.ts';
import { checkCsiSocket, checkQueue } from './outside.ts';
import { type CheckResult, type DoctorDeps, type DoctorOptions, fail, skip } from './verdict.ts';
import { checkWebhook } from './webhook.ts';

export { secretProviderClassCrd, smkCrds } from './cluster.ts';
export type { CheckResult, CheckStatus, DoctorDeps, DoctorOptions } from './verdict.ts';

/** Every check, in the order a person would fix things. */
export async function runChecks(options: DoctorOptions, deps: DoctorDeps): Promise<CheckResult[]> {
  const ms = deps.timeoutMs ?? 10_000;
  const results: CheckResult[] = [];
  const { kubeConfig } = deps;
  const clusterDeps =
    'problem' in kubeConfig ? undefined : { ...deps, kubeConfig, http: createKubeHttp(kubeConfig) };
  const cluster = clusterDeps
    ? await checkCluster(clusterDeps, ms)
    : fail(
        'cluster reachable',
        'problem' in kubeConfig ? kubeConfig.problem : '',
        'doctor uses KUBECONFIG, else ~/.kube/config, else the pod it runs in',
      );
  results.push(cluster);
  if (cluster.status === 'pass' && clusterDeps) {
    results.push(...(await checkCrds(clusterDeps, ms)));
    results.push(...(await checkWebhook(clusterDeps, options, ms)));
    results.push(...(await checkIdentity(clusterDeps, options, ms)));
  } else {
    for (const name of [
      'CRDs installed',
      'webhook configuration present',
      'caBundle matches the serving certificate',
      'webhook service reachable',
      'ServiceAccount IAM role',
      'role can describe the secret',
    ]) {
      results.push(skip(name, 'cluster not reachable'));
    }
  }
  results.push(await checkQueue(deps, options, ms));
  results.push(await checkCsiSocket(options, ms));
  return results;
}
