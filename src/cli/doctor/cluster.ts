/**
 * Doctor's first checks: the API server answers (and as whom), and the CRDs smk and the Secrets
 * Store CSI driver need are installed and Established.
 */
import type { V1CustomResourceDefinition, V1SelfSubjectReview } from '@kubernetes/client-node';
import { apiStatus } from '../../kube/client.ts';
import { type KubeHttp, resourcePath } from '../../kube/http.ts';
import {
  apiProblem,
  type CheckResult,
  type ClusterDeps,
  fail,
  forbiddenHint,
  pass,
  warn,
  withDeadline,
} from './verdict.ts';

export const smkCrds = ['secretsyncs.smk.dev', 'secretsrotationmappings.awssecretsoperator.secretoperator'];
export const secretProviderClassCrd = 'secretproviderclasses.secrets-store.csi.x-k8s.io';

/** Who the API server takes us for (SelfSubjectReview, open to every user), so a 403 below reads in context. */
async function whoAmI(deps: ClusterDeps, ms: number): Promise<string | undefined> {
  try {
    const review = await withDeadline(
      'SelfSubjectReview',
      ms,
      deps.http.send<V1SelfSubjectReview>({
        method: 'POST',
        path: resourcePath('authentication.k8s.io/v1', 'selfsubjectreviews'),
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      }),
    );
    return review.status?.userInfo?.username;
  } catch {
    // Older API servers and some proxies do not serve it; the check stands without it.
    return undefined;
  }
}

export async function checkCluster(deps: ClusterDeps, ms: number): Promise<CheckResult> {
  const name = 'cluster reachable';
  const server = deps.kubeConfig.getCurrentCluster()?.server ?? '(no server in the kubeconfig)';
  try {
    const version = await withDeadline(
      name,
      ms,
      deps.http.send<{ gitVersion?: string }>({ method: 'GET', path: '/version' }),
    );
    const user = await whoAmI(deps, ms);
    return pass(name, `Kubernetes ${version.gitVersion} at ${server}${user ? `, as ${user}` : ''}`);
  } catch (error) {
    return fail(
      name,
      `${server}: ${apiProblem(error)}`,
      'check KUBECONFIG and the current context (kubectl config current-context; kubectl version)',
    );
  }
}

async function crdEstablished(http: KubeHttp, name: string): Promise<'established' | 'pending' | 'missing'> {
  try {
    const crd = await http.send<V1CustomResourceDefinition>({
      method: 'GET',
      path: resourcePath('apiextensions.k8s.io/v1', 'customresourcedefinitions', undefined, { name }),
    });
    const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    return established ? 'established' : 'pending';
  } catch (error) {
    if (apiStatus(error) === 404) return 'missing';
    throw error;
  }
}

export async function checkCrds(deps: ClusterDeps, ms: number): Promise<CheckResult[]> {
  const name = 'CRDs installed';
  const results: CheckResult[] = [];
  try {
    const states = await withDeadline(
      name,
      ms,
      Promise.all(smkCrds.map(async (crd) => [crd, await crdEstablished(deps.http, crd)] as const)),
    );
    const missing = states.filter(([, state]) => state === 'missing').map(([crd]) => crd);
    const pending = states.filter(([, state]) => state === 'pending').map(([crd]) => crd);
    if (missing.length > 0) {
      results.push(
        fail(
          name,
          `missing: ${missing.join(', ')}`,
          'install them with the chart (crds.install=true, the default) or kubectl apply -f deploy/crds/',
        ),
      );
    } else if (pending.length > 0) {
      results.push(
        fail(
          name,
          `not Established yet: ${pending.join(', ')}`,
          'kubectl get crd NAME -o yaml shows why (conditions)',
        ),
      );
    } else {
      results.push(pass(name, `${smkCrds.join(', ')} (Established)`));
    }
    const spc = await withDeadline(name, ms, crdEstablished(deps.http, secretProviderClassCrd));
    results.push(
      spc === 'established'
        ? pass(
            'SecretProviderClass CRD',
            `${secretProviderClassCrd} (the Secrets Store CSI driver is installed)`,
          )
        : warn(
            'SecretProviderClass CRD',
            `${secretProviderClassCrd} ${spc === 'missing' ? 'is not installed' : 'is not Established'}`,
            'only CSI mounts and the SecretProviderClass sync drop-in need it: install the Secrets Store CSI driver',
          ),
    );
  } catch (error) {
    results.push(fail(name, apiProblem(error), forbiddenHint('get customresourcedefinitions')));
  }
  return results;
}
