/**
 * Who a mount reads as: the pod's ServiceAccount, never the provider's own role. The token is
 * the one the driver passes in the mount (CSIDriver `tokenRequests`), so the provider needs no
 * right to mint tokens; the IRSA role is read from the ServiceAccount's annotation.
 */
import { chainedIdentity, type Identity, sessionNameFor } from '../aws/identity.ts';
import { parseRoleChain, roleChainKeys } from '../aws/role-chain.ts';
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

/**
 * Where a mount's role comes from. Not an identity resolver (controller/identity.ts has the one):
 * the mount itself carries the token, so only the ServiceAccount's role is looked up.
 */
export interface RoleLookup {
  /** The IAM role named by the ServiceAccount's `eks.amazonaws.com/role-arn` annotation. */
  roleArn(ref: ServiceAccountRef): Promise<string>;
  /** Overrides the Pod Identity agent address (tests); else chosen by preferredAddressType. */
  readonly podIdentityEndpoint?: string | undefined;
}

/**
 * Remembers each ServiceAccount's role for `ttlMs` (concurrent asks share one lookup; failures are
 * not kept). The API read costs more than the rest of a cached mount; a changed annotation takes
 * effect within the TTL, well inside the lifetime of credentials already assumed for the old role.
 */
export function rememberRoleArns(
  lookup: (ref: ServiceAccountRef) => Promise<string>,
  ttlMs: number,
  now: () => number = Date.now,
): (ref: ServiceAccountRef) => Promise<string> {
  const known = new Map<string, { roleArn: string; expiresAt: number }>();
  const pending = new Map<string, Promise<string>>();
  return (ref) => {
    const key = `${ref.namespace}/${ref.name}`;
    const entry = known.get(key);
    if (entry && entry.expiresAt > now()) return Promise.resolve(entry.roleArn);
    let running = pending.get(key);
    if (!running) {
      running = lookup(ref)
        .then((roleArn) => {
          if (known.size >= 10_000) known.clear();
          known.set(key, { roleArn, expiresAt: now() + ttlMs });
          return roleArn;
        })
        .finally(() => pending.delete(key));
      pending.set(key, running);
    }
    return running;
  };
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

/**
 * The pod's own identity, then (with `assumeRoleArn`, ASCP's parameter) the second role assumed
 * with it. The chain never starts from the provider's own role: a pod reaches only what its own
 * role's trust allows.
 */
export async function identityFor(attributes: MountAttributes, resolver: RoleLookup): Promise<Identity> {
  const chain = parseRoleChain(attributes.parameters, attributes.subject);
  const own = await podIdentityOf(attributes, resolver);
  const { namespace, serviceAccount } = attributes.pod;
  return chainedIdentity(own, chain, sessionNameFor(namespace, serviceAccount), roleChainKeys.roleArn);
}

async function podIdentityOf(attributes: MountAttributes, resolver: RoleLookup): Promise<Identity> {
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
    subject: `${ref.namespace}/${ref.name}`,
    sessionName: sessionNameFor(ref.namespace, ref.name),
  };
}
