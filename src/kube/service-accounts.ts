/**
 * ServiceAccount identity: which IAM role a ServiceAccount names (IRSA annotation) and a
 * projected token for it (TokenRequest). The sync controller and the CSI provider both act as a
 * namespace's ServiceAccount through these two calls.
 */
import type { AuthenticationV1TokenRequest, V1ServiceAccount } from '@kubernetes/client-node';
import { InvalidInputError } from '../core/errors.ts';
import { type KubeConfig, kubeError } from './client.ts';
import { createKubeHttp, resourcePath } from './http.ts';

export const irsaRoleAnnotation = 'eks.amazonaws.com/role-arn';
export const stsAudience = 'sts.amazonaws.com';
/** The audience EKS Pod Identity's node agent takes (a token it exchanges for the association's credentials). */
export const podIdentityAudience = 'pods.eks.amazonaws.com';
/**
 * Lifetime of the tokens smk asks for: one hour, reused until five minutes before expiry. The
 * chart's ValidatingAdmissionPolicy (controller-token-policy.yaml) refuses the controller any
 * longer token and any other audience, so these two names are the whole contract with it.
 */
export const tokenSeconds = 3600;
const roleArnPattern = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

export interface ServiceAccounts {
  /** The role ARN in the account's `eks.amazonaws.com/role-arn` annotation; InvalidInputError when absent or malformed. */
  roleArn(ref: ServiceAccountRef): Promise<string>;
  /** As roleArn, but undefined when the account has no such annotation (EKS Pod Identity may apply). */
  roleArnIfAny(ref: ServiceAccountRef): Promise<string | undefined>;
  /** A short-lived projected token for the account with the given audience. */
  token(
    ref: ServiceAccountRef,
    audience?: string,
    expirationSeconds?: number,
  ): Promise<{ token: string; expiresAt: Date }>;
}

export function createServiceAccounts(kubeConfig: KubeConfig): ServiceAccounts {
  const http = createKubeHttp(kubeConfig);
  async function annotatedRole(ref: ServiceAccountRef): Promise<string | undefined> {
    const what = `ServiceAccount ${ref.namespace}/${ref.name}`;
    const account = await http
      .send<V1ServiceAccount>({
        method: 'GET',
        path: resourcePath('v1', 'serviceaccounts', ref.namespace, { name: ref.name }),
      })
      .catch((error: unknown) => {
        throw kubeError(error, what);
      });
    const roleArn = account.metadata?.annotations?.[irsaRoleAnnotation];
    if (roleArn === undefined || roleArn.trim() === '') return undefined;
    if (!roleArnPattern.test(roleArn.trim())) {
      throw new InvalidInputError(
        `${what}: annotation ${irsaRoleAnnotation} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`,
        {
          subject: what,
          field: `metadata.annotations["${irsaRoleAnnotation}"]`,
        },
      );
    }
    return roleArn.trim();
  }

  return {
    async roleArn(ref) {
      const roleArn = await annotatedRole(ref);
      if (roleArn !== undefined) return roleArn;
      const what = `ServiceAccount ${ref.namespace}/${ref.name}`;
      throw new InvalidInputError(
        `${what} has no ${irsaRoleAnnotation} annotation naming the IAM role to assume`,
        {
          subject: what,
          field: `metadata.annotations["${irsaRoleAnnotation}"]`,
        },
      );
    },
    roleArnIfAny: annotatedRole,
    async token(ref, audience = stsAudience, expirationSeconds = tokenSeconds) {
      const what = `ServiceAccount ${ref.namespace}/${ref.name}`;
      const request = await http
        .send<AuthenticationV1TokenRequest>({
          method: 'POST',
          path: resourcePath('v1', 'serviceaccounts', ref.namespace, {
            name: ref.name,
            subresource: 'token',
          }),
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: { audiences: [audience], expirationSeconds },
          },
        })
        .catch((error: unknown) => {
          throw kubeError(error, `TokenRequest for ${what}`);
        });
      const token = request.status?.token;
      if (!token) throw kubeError(new Error('empty TokenRequest status'), `TokenRequest for ${what}`);
      return {
        token,
        expiresAt: new Date(request.status?.expirationTimestamp ?? Date.now() + expirationSeconds * 1000),
      };
    },
  };
}
