/**
 * Per-namespace identity: a sync acts as the ServiceAccount its object names, in the object's own
 * namespace. The account's `eks.amazonaws.com/role-arn` annotation picks the IAM role; a
 * TokenRequest (audience sts.amazonaws.com) is the web identity the role is assumed with. So a
 * namespace reaches only what its own role may read, and the AWS layer's cache keys every value
 * by this identity (the session name names namespace and account).
 */
import { chainedIdentity, type Identity, sessionNameFor } from '../aws/identity.ts';
import { WeightedLru } from '../aws/lru.ts';
import { type RoleChain, roleChainKey } from '../aws/role-chain.ts';
import { NotFoundError } from '../core/errors.ts';
import type { SecretReader } from '../core/source.ts';
import {
  tokenSeconds as defaultTokenSeconds,
  podIdentityAudience,
  type ServiceAccountRef,
  type ServiceAccounts,
  stsAudience,
} from '../kube/service-accounts.ts';

export interface ResolvedIdentity {
  readonly reader: SecretReader;
  /** The role reads are made as: the chained role when one is asked for, else the account's own. */
  readonly roleArn: string;
  readonly sessionName: string;
}

export interface IdentityResolver {
  /**
   * The reader acting as `namespace/serviceAccountName`, then as `roleChain`'s role assumed with
   * that account's own credentials (never the controller's); throws a sentinel error naming the account.
   */
  resolve(
    namespace: string,
    serviceAccountName: string,
    roleChain?: { readonly chain: RoleChain; readonly field: string },
  ): Promise<ResolvedIdentity>;
}

export interface IdentityResolverOptions {
  readonly serviceAccounts: ServiceAccounts;
  /** Builds the reader for an identity (src/aws createSecretReader over the process's one cache). */
  readonly makeReader: (identity: Identity) => SecretReader;
  /** How long a looked-up role annotation is trusted before it is read again (default 30 s). */
  readonly roleTtlMs?: number;
  /**
   * Token lifetime asked for (default: service-accounts.ts tokenSeconds, the most the chart's
   * admission policy allows); a token is reused until 5 minutes before it expires.
   */
  readonly tokenSeconds?: number;
  readonly now?: () => number;
  /**
   * EKS Pod Identity for accounts without the IRSA annotation: a token with audience
   * pods.eks.amazonaws.com goes to the node's Pod Identity agent, which answers with the
   * credentials of the account's association. Off by default (without it, no annotation is a
   * RoleNotConfigured condition).
   */
  readonly podIdentity?: { readonly endpoint?: string } | undefined;
  /** ServiceAccounts whose role, token and reader are kept, least recently used dropped first (default 4096). */
  readonly maxAccounts?: number;
}

/** What ResolvedIdentity.roleArn says for an identity the Pod Identity agent decides. */
export const podIdentityRole = 'EKS Pod Identity association';

export function createIdentityResolver(options: IdentityResolverOptions): IdentityResolver {
  const now = options.now ?? Date.now;
  const roleTtlMs = options.roleTtlMs ?? 30_000;
  const tokenSeconds = options.tokenSeconds ?? defaultTokenSeconds;
  // Tenants create ServiceAccounts at will: every record is bounded, and a dropped one is looked up again.
  const maxAccounts = options.maxAccounts ?? 4096;
  const roles = new WeightedLru<string, { roleArn: Promise<string | undefined>; at: number }>(maxAccounts);
  const tokens = new WeightedLru<string, { token: Promise<string>; expiresAt: number }>(maxAccounts);
  const readers = new WeightedLru<string, ResolvedIdentity>(maxAccounts);

  /** The IRSA role, or undefined when the account has none and Pod Identity is on. */
  function roleOf(ref: ServiceAccountRef): Promise<string | undefined> {
    const key = `${ref.namespace}/${ref.name}`;
    const cached = roles.get(key);
    if (cached && now() - cached.at < roleTtlMs) return cached.roleArn;
    const lookup = options.podIdentity
      ? options.serviceAccounts.roleArnIfAny(ref)
      : options.serviceAccounts.roleArn(ref);
    const roleArn = lookup.catch((error: unknown) => {
      roles.delete(key);
      if (error instanceof NotFoundError) {
        throw new NotFoundError(
          `ServiceAccount ${ref.namespace}/${ref.name} not found; create it with an ${'eks.amazonaws.com/role-arn'} annotation`,
          { subject: `ServiceAccount ${ref.namespace}/${ref.name}`, cause: error },
        );
      }
      throw error;
    });
    roles.set(key, { roleArn, at: now() });
    return roleArn;
  }

  function tokenOf(ref: ServiceAccountRef, audience: string): Promise<string> {
    const key = `${ref.namespace}/${ref.name}\0${audience}`;
    const cached = tokens.get(key);
    if (cached && cached.expiresAt - now() > 5 * 60_000) return cached.token;
    const issued = options.serviceAccounts.token(ref, audience, tokenSeconds);
    const entry = { token: issued.then((answer) => answer.token), expiresAt: now() + tokenSeconds * 1000 };
    tokens.set(key, entry);
    issued.then(
      (answer) => {
        if (tokens.get(key) === entry) entry.expiresAt = answer.expiresAt.getTime();
      },
      () => {
        if (tokens.get(key) === entry) tokens.delete(key);
      },
    );
    return entry.token;
  }

  return {
    async resolve(namespace, serviceAccountName, roleChain) {
      const ref: ServiceAccountRef = { namespace, name: serviceAccountName };
      const roleArn = await roleOf(ref);
      const chainKey = roleChain ? `\0${roleChainKey(roleChain.chain)}\0${roleChain.field}` : '';
      const key = `${namespace}/${serviceAccountName}\0${roleArn ?? podIdentityRole}${chainKey}`;
      const known = readers.get(key);
      if (known) return known;
      const sessionName = sessionNameFor(namespace, serviceAccountName);
      const own: Identity =
        roleArn === undefined
          ? {
              kind: 'podIdentity',
              subject: `${namespace}/${serviceAccountName}`,
              token: () => tokenOf(ref, podIdentityAudience),
              ...(options.podIdentity?.endpoint ? { endpoint: options.podIdentity.endpoint } : {}),
            }
          : {
              kind: 'webIdentity',
              roleArn,
              subject: `${namespace}/${serviceAccountName}`,
              sessionName,
              token: () => tokenOf(ref, stsAudience),
            };
      const identity = chainedIdentity(own, roleChain?.chain, sessionName, roleChain?.field ?? '');
      const resolved = {
        reader: options.makeReader(identity),
        roleArn: roleChain?.chain.roleArn ?? roleArn ?? podIdentityRole,
        sessionName,
      };
      readers.set(key, resolved);
      return resolved;
    },
  };
}
