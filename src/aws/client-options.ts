/**
 * What AwsClients (./clients.ts) is built with: the caller's options, their resolved values, and the
 * SDK configuration every client gets.
 */
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { CredentialProvider, Identity } from './identity.ts';

export interface AwsClientsOptions {
  /** Endpoint for every service; default: what the SDK reads (AWS_ENDPOINT_URL, else AWS). */
  readonly endpoint?: string;
  /** Attempts per call including the first (default 3). */
  readonly maxAttempts?: number;
  /** TCP connect timeout (default 3 s). */
  readonly connectionTimeoutMs?: number;
  /** Socket idle timeout per attempt (default 5 s). */
  readonly requestTimeoutMs?: number;
  /** Deadline for one call including retries (default 15 s). */
  readonly callTimeoutMs?: number;
  /** Region of the STS endpoint used for AssumeRoleWithWebIdentity (the CLI passes config.ts's region; default us-east-1). */
  readonly stsRegion?: string;
  /** Refresh assumed credentials this long before they expire (default 10 min; at least the SDK's 5). */
  readonly credentialRefreshMarginMs?: number;
  /** Clients kept per service, least recently used dropped first (default 256). */
  readonly maxClients?: number;
  /** Identities whose credential providers are kept (default 4096). */
  readonly maxIdentities?: number;
  /** Connections per endpoint host, shared by every client (default 64). */
  readonly maxSockets?: number;
}

/** Socket timeout of SQS clients: a 20 s long poll plus room for the answer. */
export const longPollTimeoutMs = 25_000;

export interface ResolvedOptions {
  readonly endpoint: string | undefined;
  readonly maxAttempts: number;
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly callTimeoutMs: number;
  readonly stsRegion: string;
  readonly credentialRefreshMarginMs: number;
  readonly maxClients: number;
  readonly maxIdentities: number;
  readonly maxSockets: number;
}

/**
 * One identity's credential provider. `latest` is the token function and settings last given for
 * its key (a CSI mount brings a fresh token each time); the provider reads it when it fetches.
 */
export interface KnownIdentity {
  readonly provider: CredentialProvider;
  readonly holder: { latest: Identity };
}

export interface HeldClient<C> {
  readonly client: C;
  readonly credentials: CredentialProvider;
}

/** What every client is built with (the fields are the SDK's own config names). */
export interface ClientConfig {
  readonly region: string;
  readonly retryMode: 'adaptive';
  readonly maxAttempts: number;
  readonly requestHandler: {
    readonly connectionTimeout: number;
    readonly requestTimeout: number;
    readonly throwOnRequestTimeout: boolean;
    readonly httpAgent: HttpAgent;
    readonly httpsAgent: HttpsAgent;
  };
  readonly credentials?: CredentialProvider;
  readonly endpoint?: string;
}

export interface ConnectionPools {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
}
