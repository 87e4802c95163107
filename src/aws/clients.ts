/**
 * SDK v3 clients, built per (identity, region) with adaptive retries, bounded attempts,
 * connection/socket timeouts and an overall deadline per call. `AWS_ENDPOINT_URL` is read by
 * the SDK itself (that is how tests reach moto); `endpoint` overrides it (tests' fault proxy).
 * Every call goes through `call()`: one place for the deadline, the metric and error mapping.
 *
 * Tenants choose identities and regions, so nothing here grows with them: clients and
 * credential providers live in LRUs, and every client shares one pair of connection pools
 * (a connection carries no identity: each request is signed). A client is then only
 * configuration and middleware; an evicted one is dropped, and its in-flight calls finish.
 */

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { AssumeRoleCommandOutput, STSClient } from '@aws-sdk/client-sts';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { InvalidInputError, isSmkError, type SmkError, TransientError } from '../core/errors.ts';
import { errorLabels } from '../core/metrics.ts';
import { awsRegionExpectation, isAwsRegion } from '../core/regions.ts';
import type {
  AwsClientsOptions,
  ClientConfig,
  ConnectionPools,
  HeldClient,
  KnownIdentity,
  ResolvedOptions,
} from './client-options.ts';
import { longPollTimeoutMs } from './client-options.ts';
import { type AwsErrorContext, mapAwsError } from './errors.ts';
import {
  type CredentialProvider,
  type Credentials,
  cachedCredentials,
  fetchPodIdentityCredentials,
  type Identity,
  identityKey,
  podIdentityAgentUrl,
} from './identity.ts';
import { WeightedLru } from './lru.ts';
import { awsCallSeconds, awsCalls } from './metrics.ts';
import { sqsSdk, ssmSdk, stsSdk } from './sdk.ts';

/**
 * An AssumeRole failure, re-made to name the field the role came from. Errors of the source
 * identity (its own AssumeRoleWithWebIdentity, its token) are kept as they are: they are not
 * about the second role.
 */
function chainFailure(error: unknown, field: string, roleArn: string): SmkError {
  const mapped = mapAwsError(error, { api: 'AssumeRole', subject: roleArn });
  if (mapped.subject !== roleArn) return mapped;
  const Kind = mapped.constructor as new (
    message: string,
    options?: { subject?: string; field?: string },
  ) => SmkError;
  return new Kind(`${field}: ${mapped.message}`, { subject: roleArn, field });
}

export class AwsClients {
  readonly options: ResolvedOptions;
  readonly #secretsManager: WeightedLru<string, HeldClient<SecretsManagerClient>>;
  readonly #ssm: WeightedLru<string, HeldClient<SSMClient>>;
  readonly #sqs: WeightedLru<string, HeldClient<SQSClient>>;
  readonly #identities: WeightedLru<string, KnownIdentity>;
  /** Signed STS clients for AssumeRole, one per source identity (the chain's first link). */
  readonly #signedSts: WeightedLru<string, HeldClient<STSClient>>;
  #pools: ConnectionPools;
  #sts: STSClient | undefined;

  constructor(options: AwsClientsOptions = {}) {
    this.options = {
      endpoint: options.endpoint,
      maxAttempts: options.maxAttempts ?? 3,
      connectionTimeoutMs: options.connectionTimeoutMs ?? 3_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      callTimeoutMs: options.callTimeoutMs ?? 15_000,
      stsRegion: options.stsRegion ?? 'us-east-1',
      credentialRefreshMarginMs: options.credentialRefreshMarginMs ?? 10 * 60_000,
      maxClients: options.maxClients ?? 256,
      maxIdentities: options.maxIdentities ?? 4096,
      maxSockets: options.maxSockets ?? 64,
    };
    this.#secretsManager = new WeightedLru(this.options.maxClients);
    this.#ssm = new WeightedLru(this.options.maxClients);
    this.#sqs = new WeightedLru(this.options.maxClients);
    this.#identities = new WeightedLru(this.options.maxIdentities);
    this.#signedSts = new WeightedLru(this.options.maxClients);
    this.#pools = this.#newPools();
  }

  /** How many clients and identities are held now (tests, metrics). */
  get held(): { readonly clients: number; readonly identities: number } {
    return {
      clients: this.#secretsManager.size + this.#ssm.size + this.#sqs.size + this.#signedSts.size,
      identities: this.#identities.size,
    };
  }

  /** Throws InvalidInputError for a region the SDK does not list (callers validate first; this is the backstop). */
  secretsManager(identity: Identity, region: string): SecretsManagerClient {
    return this.#held(this.#secretsManager, identity, region, (config) => new SecretsManagerClient(config));
  }

  async ssm(identity: Identity, region: string): Promise<SSMClient> {
    const { SSMClient } = await ssmSdk();
    return this.#held(this.#ssm, identity, region, (config) => new SSMClient(config));
  }

  /**
   * SQS for the rotation queue. Long polls hold a request open for up to 20 s, so its socket
   * timeout is at least `longPollTimeoutMs` (callers pass a matching deadline to `call()`).
   */
  async sqs(identity: Identity, region: string): Promise<SQSClient> {
    const { SQSClient } = await sqsSdk();
    return this.#held(this.#sqs, identity, region, (config) => {
      const requestTimeout = Math.max(config.requestHandler.requestTimeout, longPollTimeoutMs);
      return new SQSClient({ ...config, requestHandler: { ...config.requestHandler, requestTimeout } });
    });
  }

  /**
   * The held client for (identity, region), or a new one. A client is reused only while it uses
   * the identity's current credential provider: one whose identity was dropped from the LRU
   * would otherwise keep an old token function.
   */
  #held<C>(
    pool: WeightedLru<string, HeldClient<C>>,
    identity: Identity,
    region: string,
    make: (config: ClientConfig) => C,
  ): C {
    const key = this.#clientKey(identity, region);
    const credentials = this.credentials(identity);
    const held = pool.get(key);
    if (held?.credentials === credentials) return held.client;
    const client = make(this.#config(region, credentials));
    pool.set(key, { client, credentials });
    return client;
  }

  /**
   * One caching credential provider per identity key, shared by all of its clients. The token
   * function given last is the one used.
   */
  credentials(identity: Identity): CredentialProvider {
    const key = identityKey(identity);
    const known = this.#identities.get(key);
    if (known) {
      known.holder.latest = identity;
      return known.provider;
    }
    const holder = { latest: identity };
    const provider = this.#buildProvider(identity, holder);
    this.#identities.set(key, { provider, holder });
    return provider;
  }

  /**
   * Run one AWS call with the deadline (default callTimeoutMs; a long poll passes its own), count
   * it in `smk_aws_calls_total{api,outcome,reason}` and map any failure to a sentinel error (thrown).
   */
  async call<T>(
    context: AwsErrorContext,
    run: (abortSignal: AbortSignal) => Promise<T>,
    timeoutMs = this.options.callTimeoutMs,
  ): Promise<T> {
    const stop = awsCallSeconds.startTimer({ api: context.api });
    let failure: SmkError | undefined;
    try {
      return await run(AbortSignal.timeout(timeoutMs));
    } catch (error) {
      failure = mapAwsError(error, context);
      throw failure;
    } finally {
      stop();
      awsCalls.inc({ api: context.api, ...errorLabels(failure) });
    }
  }

  /** Close every connection (process shutdown, tests). Clients made later get fresh pools. */
  destroy(): void {
    // Not client.destroy(): that would close the shared pools once per client.
    this.#pools.http.destroy();
    this.#pools.https.destroy();
    this.#sts?.destroy();
    this.#secretsManager.clear();
    this.#ssm.clear();
    this.#sqs.clear();
    this.#signedSts.clear();
    this.#sts = undefined;
    this.#pools = this.#newPools();
  }

  #newPools(): ConnectionPools {
    const options = { keepAlive: true, maxSockets: this.options.maxSockets };
    return { http: new HttpAgent(options), https: new HttpsAgent(options) };
  }

  #clientKey(identity: Identity, region: string): string {
    if (!isAwsRegion(region)) {
      throw new InvalidInputError(`region ${JSON.stringify(region)}: expected ${awsRegionExpectation}`, {
        subject: `region ${region}`,
        field: 'region',
      });
    }
    return `${identityKey(identity)}\0${region}`;
  }

  #config(region: string, credentials: CredentialProvider | undefined): ClientConfig {
    return {
      region,
      retryMode: 'adaptive',
      maxAttempts: this.options.maxAttempts,
      requestHandler: {
        connectionTimeout: this.options.connectionTimeoutMs,
        requestTimeout: this.options.requestTimeoutMs,
        // Without it a request past requestTimeout only logs a warning and keeps waiting.
        throwOnRequestTimeout: true,
        httpAgent: this.#pools.http,
        httpsAgent: this.#pools.https,
      },
      ...(credentials ? { credentials } : {}),
      ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
    };
  }

  #buildProvider(identity: Identity, holder: { readonly latest: Identity }): CredentialProvider {
    const margin = this.options.credentialRefreshMarginMs;
    switch (identity.kind) {
      case 'default':
        return defaultProvider();
      case 'static': {
        const credentials = {
          accessKeyId: identity.accessKeyId,
          secretAccessKey: identity.secretAccessKey,
          ...(identity.sessionToken ? { sessionToken: identity.sessionToken } : {}),
        };
        return () => Promise.resolve(credentials);
      }
      case 'webIdentity':
        return cachedCredentials(() => this.#assumeRoleWithWebIdentity(holder), margin);
      case 'podIdentity':
        return cachedCredentials(async () => {
          const current = holder.latest;
          if (current.kind !== 'podIdentity') throw new Error('identity key reused for another kind');
          const endpoint =
            current.endpoint ?? process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI ?? podIdentityAgentUrl;
          return fetchPodIdentityCredentials(endpoint, await current.token(), this.options.callTimeoutMs);
        }, margin);
      case 'assumeRole':
        // Cached per identity key (source, role, external id, tags), in the identities LRU like the rest.
        return cachedCredentials(() => this.#assumeRole(holder), margin);
    }
  }

  /**
   * sts:AssumeRole signed with the source identity's own credentials, so the second role trusts
   * (or refuses) the workload, never this process. A failure names the role and the field that
   * asked for it; the source's own failure (its token, its role) passes through unchanged.
   */
  async #assumeRole(holder: { readonly latest: Identity }): Promise<Credentials> {
    const current = holder.latest;
    if (current.kind !== 'assumeRole') throw new Error('identity key reused for another kind');
    const { chain } = current;
    const { STSClient, AssumeRoleCommand } = await stsSdk();
    const sts = this.#held(
      this.#signedSts,
      current.source,
      this.options.stsRegion,
      (config) => new STSClient(config),
    );
    const context = { api: 'AssumeRole', subject: chain.roleArn, region: this.options.stsRegion };
    let answer: AssumeRoleCommandOutput;
    try {
      answer = await this.call(context, (abortSignal) =>
        sts.send(
          new AssumeRoleCommand({
            RoleArn: chain.roleArn,
            RoleSessionName: current.sessionName,
            ...(chain.externalId === undefined ? {} : { ExternalId: chain.externalId }),
            ...(chain.durationSeconds === undefined ? {} : { DurationSeconds: chain.durationSeconds }),
            ...(chain.sessionTags === undefined
              ? {}
              : { Tags: Object.entries(chain.sessionTags).map(([Key, Value]) => ({ Key, Value })) }),
          }),
          { abortSignal },
        ),
      );
    } catch (error) {
      throw chainFailure(error, current.field, chain.roleArn);
    }
    const issued = answer.Credentials;
    if (!issued?.AccessKeyId || !issued.SecretAccessKey) {
      throw new TransientError(`${current.field} ${chain.roleArn}: AssumeRole answered without credentials`, {
        subject: chain.roleArn,
        field: current.field,
      });
    }
    return {
      accessKeyId: issued.AccessKeyId,
      secretAccessKey: issued.SecretAccessKey,
      ...(issued.SessionToken ? { sessionToken: issued.SessionToken } : {}),
      ...(issued.Expiration ? { expiration: issued.Expiration } : {}),
    };
  }

  async #assumeRoleWithWebIdentity(holder: { readonly latest: Identity }) {
    const current = holder.latest;
    if (current.kind !== 'webIdentity') throw new Error('identity key reused for another kind');
    const context = {
      api: 'AssumeRoleWithWebIdentity',
      subject: current.roleArn,
      region: this.options.stsRegion,
    };
    let token: string;
    try {
      token = await current.token();
    } catch (error) {
      if (isSmkError(error)) throw error;
      throw new TransientError(`web identity token for ${current.roleArn}: could not be obtained`, {
        subject: current.roleArn,
      });
    }
    const { AssumeRoleWithWebIdentityCommand } = await stsSdk();
    const sts = await this.#stsClient();
    const answer = await this.call(context, (abortSignal) =>
      sts.send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: current.roleArn,
          RoleSessionName: current.sessionName,
          WebIdentityToken: token,
          ...(current.durationSeconds ? { DurationSeconds: current.durationSeconds } : {}),
        }),
        { abortSignal },
      ),
    );
    const issued = answer.Credentials;
    if (!issued?.AccessKeyId || !issued.SecretAccessKey) {
      throw new TransientError(`AssumeRoleWithWebIdentity ${current.roleArn}: answer without credentials`, {
        subject: current.roleArn,
      });
    }
    return {
      accessKeyId: issued.AccessKeyId,
      secretAccessKey: issued.SecretAccessKey,
      ...(issued.SessionToken ? { sessionToken: issued.SessionToken } : {}),
      ...(issued.Expiration ? { expiration: issued.Expiration } : {}),
    };
  }

  /** AssumeRoleWithWebIdentity is unsigned: this client has no credentials and must not need any. */
  async #stsClient(): Promise<STSClient> {
    const { STSClient } = await stsSdk();
    this.#sts ??= new STSClient(
      this.#config(this.options.stsRegion, () =>
        Promise.reject(new Error('AssumeRoleWithWebIdentity must be sent unsigned')),
      ),
    );
    return this.#sts;
  }
}
