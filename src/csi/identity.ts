/**
 * Who a mount reads as: the pod's ServiceAccount, never the provider's own role. The token is
 * the one the driver passes in the mount (CSIDriver `tokenRequests`), so the provider needs no
 * right to mint tokens; the IRSA role is read from the ServiceAccount's annotation.
 */
import { createHash } from 'node:crypto';
import type { Identity } from '../aws/identity.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { ServiceAccountRef } from '../kube/service-accounts.ts';
import { type AddressPreference, type MountAttributes, serviceAccountTokensKey } from './attributes.ts';

export const irsaAudience = 'sts.amazonaws.com';
export const podIdentityAudience = 'pods.eks.amazonaws.com';

/** The EKS Pod Identity agent's addresses (ASCP tries IPv4 first unless told otherwise). */
export const podIdentityAgentUrls = {
  ipv4: 'http://169.254.170.23/v1/credentials',
  ipv6: 'http://[fd00:ec2::23]/v1/credentials',
} as const;

export interface IdentityResolver {
  /** The IAM role named by the ServiceAccount's `eks.amazonaws.com/role-arn` annotation. */
  roleArn(ref: ServiceAccountRef): Promise<string>;
  /** Overrides the Pod Identity agent address (tests); else chosen by preferredAddressType. */
  readonly podIdentityEndpoint?: string | undefined;
}

const maxSessionName = 64;

/**
 * RoleSessionName for a ServiceAccount: readable in CloudTrail and unique per account. Namespaces
 * hold no dots, so `namespace.name` cannot collide; names too long for 64 characters end in a hash.
 */
export function sessionNameFor(ref: ServiceAccountRef): string {
  const readable = `${ref.namespace}.${ref.name}`.replace(/[^\w+=,.@-]/g, '-');
  if (readable.length <= maxSessionName) return readable;
  const hash = createHash('sha256').update(`${ref.namespace}/${ref.name}`).digest('hex').slice(0, 16);
  return `${readable.slice(0, maxSessionName - hash.length - 1)}-${hash}`;
}

function tokenFor(attributes: MountAttributes, audience: string, how: string): string {
  const token = attributes.tokens.get(audience);
  if (token) return token.token;
  const present = [...attributes.tokens.keys()];
  throw new InvalidInputError(
    `${attributes.subject}: the mount carries no ServiceAccount token for audience ${audience} ` +
      `(${present.length === 0 ? 'no tokens at all' : `only for ${present.join(', ')}`}); ${how} needs the ` +
      `CSIDriver secrets-store.csi.k8s.io to request it: spec.tokenRequests: [{audience: "${audience}"}] ` +
      `(driver Helm chart: --set tokenRequests[0].audience=${audience})`,
    { subject: attributes.subject, field: serviceAccountTokensKey },
  );
}

function agentUrl(preference: AddressPreference): string | undefined {
  if (preference === 'ipv4') return podIdentityAgentUrls.ipv4;
  if (preference === 'ipv6') return podIdentityAgentUrls.ipv6;
  return undefined;
}

export async function identityFor(
  attributes: MountAttributes,
  resolver: IdentityResolver,
): Promise<Identity> {
  const ref: ServiceAccountRef = { namespace: attributes.pod.namespace, name: attributes.pod.serviceAccount };
  if (attributes.usePodIdentity) {
    const token = tokenFor(attributes, podIdentityAudience, 'Pod Identity (usePodIdentity: "true")');
    const endpoint = resolver.podIdentityEndpoint ?? agentUrl(attributes.preferredAddressType);
    return {
      kind: 'podIdentity',
      token: () => Promise.resolve(token),
      subject: `${ref.namespace}/${ref.name}`,
      ...(endpoint ? { endpoint } : {}),
    };
  }
  // The token is checked first: without it the annotation lookup would be wasted work.
  const token = tokenFor(attributes, irsaAudience, 'IRSA');
  const roleArn = await resolver.roleArn(ref);
  return {
    kind: 'webIdentity',
    roleArn,
    token: () => Promise.resolve(token),
    sessionName: sessionNameFor(ref),
  };
}
