/**
 * Who a reader acts as. Each identity has a stable `key` for the cache's authorisation records,
 * and a credential provider that caches credentials until shortly before they expire.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { AccessDeniedError, TransientError } from '../core/errors.ts';
import { type RoleChain, roleChainKey } from './role-chain.ts';

/**
 * The RoleSessionName smk assumes a ServiceAccount's role with, in every role (sync, CSI):
 * `smk.<namespace>.<serviceaccount>` (docs/iam.md), so CloudTrail shows whose read it was. AWS
 * allows 2–64 of [\w+=,.@-]: a longer name ends in a hash of the whole account (namespaces hold no
 * dots, so the readable form cannot collide). Never a cache key: Identity.subject is.
 */
export function sessionNameFor(namespace: string, serviceAccountName: string): string {
  const readable = `smk.${namespace}.${serviceAccountName}`.replace(/[^\w+=,.@-]/g, '-');
  if (readable.length <= maxSessionName) return readable;
  const hash = createHash('sha256').update(`${namespace}/${serviceAccountName}`).digest('hex').slice(0, 16);
  return `${readable.slice(0, maxSessionName - hash.length - 1)}-${hash}`;
}
const maxSessionName = 64;

export type Identity =
  /** The SDK's default chain: env, IRSA web identity token file, EKS Pod Identity / container credentials. */
  | { readonly kind: 'default' }
  /** Fixed keys (tests, local use). */
  | {
      readonly kind: 'static';
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken?: string;
    }
  /**
   * AssumeRoleWithWebIdentity with a token we obtain (e.g. a TokenRequest for a pod's service
   * account). `subject` names the principal in full (namespace/service account): it is the cache
   * key, so two principals never share one. `sessionName` is what CloudTrail shows; AWS allows it
   * 64 characters, so a long one ends in a shortened hash and cannot be the key.
   */
  | {
      readonly kind: 'webIdentity';
      readonly roleArn: string;
      readonly token: () => Promise<string>;
      readonly subject: string;
      readonly sessionName: string;
      readonly durationSeconds?: number;
    }
  /**
   * EKS Pod Identity with an explicit service account token sent to the Pod Identity agent.
   * `subject` names the principal (namespace/service account) for the cache key.
   */
  | {
      readonly kind: 'podIdentity';
      readonly token: () => Promise<string>;
      readonly subject: string;
      /** Agent URL; default AWS_CONTAINER_CREDENTIALS_FULL_URI, else the EKS agent address. */
      readonly endpoint?: string;
    }
  /**
   * sts:AssumeRole of `chain.roleArn`, signed with `source`'s credentials: the workload's own
   * identity, never a process's (the tenant rule). `field` names where the user set the role
   * (`assumeRoleArn`, `spec.assumeRole.roleArn`, an annotation) for errors.
   */
  | {
      readonly kind: 'assumeRole';
      readonly source: Identity;
      readonly chain: RoleChain;
      readonly sessionName: string;
      readonly field: string;
    };

/** `source`, or `source` then `chain` when a second role is asked for. */
export function chainedIdentity(
  source: Identity,
  chain: RoleChain | undefined,
  sessionName: string,
  field: string,
): Identity {
  return chain === undefined ? source : { kind: 'assumeRole', source, chain, sessionName, field };
}

/** A stable cache key per principal; never contains a token or a secret key. */
export function identityKey(identity: Identity): string {
  switch (identity.kind) {
    case 'default':
      return 'default';
    case 'static':
      return `static:${identity.accessKeyId}`;
    case 'webIdentity':
      return `webIdentity:${identity.roleArn}:${identity.subject}`;
    case 'podIdentity':
      return `podIdentity:${identity.endpoint ?? ''}:${identity.subject}`;
    case 'assumeRole':
      // The source's key is part of it: two workloads chaining to one role never share credentials.
      return `assumeRole:${roleChainKey(identity.chain)}:${identity.sessionName}<-${identityKey(identity.source)}`;
  }
}

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/** Structurally what the SDK accepts as `credentials`. */
export type CredentialProvider = () => Promise<Credentials>;

/** The SDK refreshes memoized credentials this long before their `expiration`. */
const sdkRefreshWindowMs = 5 * 60_000;
/** Fresh credentials are used at least this long, whatever the margin (no STS call per request). */
const minimumUseMs = 60_000;

/**
 * Cache credentials until `refreshMarginMs` before they expire; concurrent callers share one
 * fetch; a failed fetch is not cached. The SDK memoizes credentials too and asks again only
 * within 5 minutes of `expiration`, so the expiration we report is moved earlier by what our
 * margin exceeds that window: both caches then refresh at the same moment. Credentials that
 * would be due at once (margin ≥ lifetime) are still used for a minute.
 */
export function cachedCredentials(
  fetch: () => Promise<Credentials>,
  refreshMarginMs = 10 * 60_000,
  now: () => number = Date.now,
): CredentialProvider {
  const shift = Math.max(0, refreshMarginMs - sdkRefreshWindowMs);
  let current: Credentials | undefined;
  let pending: Promise<Credentials> | undefined;
  const fresh = (credentials: Credentials): boolean =>
    credentials.expiration === undefined || credentials.expiration.getTime() - sdkRefreshWindowMs > now();
  return () => {
    if (current && fresh(current)) return Promise.resolve(current);
    pending ??= fetch()
      .then((credentials) => {
        const expires = credentials.expiration?.getTime();
        if (expires === undefined) {
          current = credentials;
        } else {
          const floor = Math.min(expires, now() + sdkRefreshWindowMs + minimumUseMs);
          current = { ...credentials, expiration: new Date(Math.max(expires - shift, floor)) };
        }
        return current;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

const podIdentityAnswer = z.object({
  AccessKeyId: z.string().min(1),
  SecretAccessKey: z.string().min(1),
  Token: z.string().min(1),
  Expiration: z.string().min(1),
});

/** The EKS Pod Identity agent's address inside a pod. */
export const podIdentityAgentUrl = 'http://169.254.170.23/v1/credentials';

/** Credentials from the Pod Identity agent (or any container credentials endpoint) for an explicit token. */
export async function fetchPodIdentityCredentials(
  endpoint: string,
  token: string,
  timeoutMs: number,
): Promise<Credentials> {
  const subject = 'Pod Identity credentials';
  let response: Response;
  try {
    response = await fetch(endpoint, {
      headers: { Authorization: token, Accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch {
    throw new TransientError(`${subject}: agent unreachable or timed out`, { subject });
  }
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel();
    throw new AccessDeniedError(`${subject}: token refused (HTTP ${response.status})`, { subject });
  }
  if (!response.ok) {
    await response.body?.cancel();
    const kind = response.status >= 500 || response.status === 429 ? TransientError : AccessDeniedError;
    throw new kind(`${subject}: agent answered HTTP ${response.status}`, { subject });
  }
  let parsed: z.infer<typeof podIdentityAnswer>;
  try {
    parsed = podIdentityAnswer.parse(await response.json());
  } catch {
    throw new TransientError(`${subject}: answer is not the expected JSON credentials document`, { subject });
  }
  const expiration = new Date(parsed.Expiration);
  return {
    accessKeyId: parsed.AccessKeyId,
    secretAccessKey: parsed.SecretAccessKey,
    sessionToken: parsed.Token,
    ...(Number.isNaN(expiration.getTime()) ? {} : { expiration }),
  };
}
