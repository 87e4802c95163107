/**
 * SDK v3 clients, built once per (identity, region) with adaptive retries, bounded attempts,
 * connection/socket timeouts and an overall deadline per call. `AWS_ENDPOINT_URL` is read by
 * the SDK itself (that is how tests reach moto); `endpoint` overrides it (tests' fault proxy).
 * Every call goes through `call()`: one place for the deadline, the metric and error mapping.
 */

import { Readable } from 'node:stream';
import { BatchGetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { STSClient } from '@aws-sdk/client-sts';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { isSmkError, type SmkError, TransientError } from '../core/errors.ts';
import { type AwsErrorContext, mapAwsError, outcomeLabel } from './errors.ts';
import {
  type CredentialProvider,
  cachedCredentials,
  fetchPodIdentityCredentials,
  type Identity,
  identityKey,
  podIdentityAgentUrl,
} from './identity.ts';
import { awsCallSeconds, awsCalls } from './metrics.ts';

/**
 * The exports of a dynamically imported CommonJS package. Node finds a CommonJS module's named
 * exports itself, but in the esbuild bundle (what the image ships) the namespace holds only
 * `default`: without this, every lazily loaded SDK class was undefined in dist/smk.mjs alone.
 */
export function commonJsExports<T extends object>(namespace: T): T {
  const inner = (namespace as { default?: unknown }).default;
  const onlyDefault = Object.keys(namespace).every((key) => key === 'default' || key === '__esModule');
  return onlyDefault && typeof inner === 'object' && inner !== null ? (inner as T) : namespace;
}

// SDK packages other than Secrets Manager load on first use, so a one-shot `smk fetch` of
// secrets does not pay for SSM, SQS and STS at start (each adds tens of ms to a cold start).
export const ssmSdk = async (): Promise<typeof import('@aws-sdk/client-ssm')> =>
  commonJsExports(await import('@aws-sdk/client-ssm'));
export const sqsSdk = async (): Promise<typeof import('@aws-sdk/client-sqs')> =>
  commonJsExports(await import('@aws-sdk/client-sqs'));
const stsSdk = async (): Promise<typeof import('@aws-sdk/client-sts')> =>
  commonJsExports(await import('@aws-sdk/client-sts'));

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
  /** Region of the STS endpoint used for AssumeRoleWithWebIdentity (default AWS_REGION, else us-east-1). */
  readonly stsRegion?: string;
  /** Refresh assumed credentials this long before they expire (default 10 min; at least the SDK's 5). */
  readonly credentialRefreshMarginMs?: number;
}

/** An SDK request handler that answers every request with `body`, for `preload`'s rehearsal. */
function answerFromMemory(contentType: string, body: string) {
  return {
    handle: () =>
      Promise.resolve({
        response: {
          statusCode: 200,
          reason: 'OK',
          headers: { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) },
          body: Readable.from([Buffer.from(body)]),
        },
      }),
    updateHttpClientConfig: (): void => {},
    httpHandlerConfigs: () => ({}),
    destroy: (): void => {},
  };
}

const rehearsalAssumeRoleAnswer =
  '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>' +
  '<Credentials><AccessKeyId>rehearsal</AccessKeyId><SecretAccessKey>rehearsal</SecretAccessKey>' +
  '<SessionToken>rehearsal</SessionToken><Expiration>2100-01-01T00:00:00Z</Expiration></Credentials>' +
  '</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>';

function rehearsalBatchAnswer(region: string): string {
  return JSON.stringify({
    SecretValues: [
      {
        ARN: `arn:aws:secretsmanager:${region}:000000000000:secret:rehearsal-AbCdEf`,
        Name: 'rehearsal',
        VersionId: '00000000-0000-4000-8000-000000000000',
        SecretString: '{"rehearsal":"rehearsal"}',
        VersionStages: ['AWSCURRENT'],
        CreatedDate: 1_700_000_000,
      },
    ],
    Errors: [],
  });
}

/** Socket timeout of SQS clients: a 20 s long poll plus room for the answer. */
export const longPollTimeoutMs = 25_000;

interface ResolvedOptions {
  readonly endpoint: string | undefined;
  readonly maxAttempts: number;
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly callTimeoutMs: number;
  readonly stsRegion: string;
  readonly credentialRefreshMarginMs: number;
}

/** Which token function and settings an identity key currently uses (the latest one given wins). */
type TokenIdentity = Extract<Identity, { kind: 'webIdentity' | 'podIdentity' }>;

export class AwsClients {
  readonly options: ResolvedOptions;
  readonly #secretsManager = new Map<string, SecretsManagerClient>();
  readonly #ssm = new Map<string, SSMClient>();
  readonly #sqs = new Map<string, SQSClient>();
  readonly #credentials = new Map<string, CredentialProvider>();
  readonly #tokenIdentities = new Map<string, TokenIdentity>();
  #sts: STSClient | undefined;

  constructor(options: AwsClientsOptions = {}) {
    this.options = {
      endpoint: options.endpoint,
      maxAttempts: options.maxAttempts ?? 3,
      connectionTimeoutMs: options.connectionTimeoutMs ?? 3_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      callTimeoutMs: options.callTimeoutMs ?? 15_000,
      stsRegion: options.stsRegion ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      credentialRefreshMarginMs: options.credentialRefreshMarginMs ?? 10 * 60_000,
    };
  }

  secretsManager(identity: Identity, region: string): SecretsManagerClient {
    const key = `${identityKey(identity)}\0${region}`;
    let client = this.#secretsManager.get(key);
    if (!client) {
      client = new SecretsManagerClient(this.#config(region, this.credentials(identity)));
      this.#secretsManager.set(key, client);
    }
    return client;
  }

  async ssm(identity: Identity, region: string): Promise<SSMClient> {
    const key = `${identityKey(identity)}\0${region}`;
    let client = this.#ssm.get(key);
    if (!client) {
      const { SSMClient } = await ssmSdk();
      client = this.#ssm.get(key) ?? new SSMClient(this.#config(region, this.credentials(identity)));
      this.#ssm.set(key, client);
    }
    return client;
  }

  /**
   * SQS for the rotation queue. Long polls hold a request open for up to 20 s, so its socket
   * timeout is at least `longPollTimeoutMs` (callers pass a matching deadline to `call()`).
   */
  async sqs(identity: Identity, region: string): Promise<SQSClient> {
    const key = `${identityKey(identity)}\0${region}`;
    let client = this.#sqs.get(key);
    if (!client) {
      const { SQSClient } = await sqsSdk();
      const config = this.#config(region, this.credentials(identity));
      const requestTimeout = Math.max(config.requestHandler.requestTimeout, longPollTimeoutMs);
      client = new SQSClient({ ...config, requestHandler: { ...config.requestHandler, requestTimeout } });
      this.#sqs.set(key, client);
    }
    return client;
  }

  /** One caching credential provider per identity key, shared by all of its clients. */
  credentials(identity: Identity): CredentialProvider {
    const key = identityKey(identity);
    if (identity.kind === 'webIdentity' || identity.kind === 'podIdentity') {
      this.#tokenIdentities.set(key, identity);
    }
    let provider = this.#credentials.get(key);
    if (!provider) {
      provider = this.#buildProvider(identity, key);
      this.#credentials.set(key, provider);
    }
    return provider;
  }

  /**
   * Run one AWS call with the deadline (default callTimeoutMs; a long poll passes its own), count
   * it in `smk_aws_calls_total{api,outcome}` and map any failure to a sentinel error (thrown).
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
      awsCalls.inc({ api: context.api, outcome: outcomeLabel(failure) });
    }
  }

  /**
   * Loads the SDK packages that otherwise load on first use (STS, SSM) and sends one
   * AssumeRoleWithWebIdentity and one BatchGetSecretValue through clients whose handler answers
   * from memory (nothing leaves the process; the clients are dropped). A long-running role calls
   * this before it reports ready, so its first real request does not pay for module loading and the
   * SDK's one-time work on a first call (middleware, endpoint rules, signing, (de)serialisers).
   */
  async preload(region = this.options.stsRegion): Promise<void> {
    const [{ STSClient, AssumeRoleWithWebIdentityCommand }] = await Promise.all([stsSdk(), ssmSdk()]);
    const unsigned = (): Promise<never> => Promise.reject(new Error('a rehearsal is not signed'));
    const sts = new STSClient({
      ...this.#config(this.options.stsRegion, unsigned),
      requestHandler: answerFromMemory('text/xml', rehearsalAssumeRoleAnswer),
    });
    const secretsManager = new SecretsManagerClient({
      ...this.#config(region, () =>
        Promise.resolve({
          accessKeyId: 'rehearsal',
          secretAccessKey: 'rehearsal',
          sessionToken: 'rehearsal',
        }),
      ),
      requestHandler: answerFromMemory('application/x-amz-json-1.1', rehearsalBatchAnswer(region)),
    });
    try {
      await sts.send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: 'arn:aws:iam::000000000000:role/rehearsal',
          RoleSessionName: 'rehearsal',
          WebIdentityToken: 'rehearsal',
        }),
      );
      await secretsManager.send(new BatchGetSecretValueCommand({ SecretIdList: ['rehearsal'] }));
    } finally {
      sts.destroy();
      secretsManager.destroy();
    }
    await this.#stsClient();
  }

  /** Close every client's sockets (process shutdown, tests). */
  destroy(): void {
    for (const client of [...this.#secretsManager.values(), ...this.#ssm.values(), ...this.#sqs.values()]) {
      client.destroy();
    }
    this.#sts?.destroy();
    this.#secretsManager.clear();
    this.#ssm.clear();
    this.#sqs.clear();
    this.#sts = undefined;
  }

  #config(region: string, credentials: CredentialProvider | undefined) {
    return {
      region,
      retryMode: 'adaptive' as const,
      maxAttempts: this.options.maxAttempts,
      requestHandler: {
        connectionTimeout: this.options.connectionTimeoutMs,
        requestTimeout: this.options.requestTimeoutMs,
        // Without it a request past requestTimeout only logs a warning and keeps waiting.
        throwOnRequestTimeout: true,
      },
      ...(credentials ? { credentials } : {}),
      ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
    };
  }

  #buildProvider(identity: Identity, key: string): CredentialProvider {
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
        return cachedCredentials(() => this.#assumeRoleWithWebIdentity(key), margin);
      case 'podIdentity':
        return cachedCredentials(async () => {
          const current = this.#tokenIdentities.get(key);
          if (current?.kind !== 'podIdentity') throw new Error('pod identity vanished');
          const endpoint =
            current.endpoint ?? process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI ?? podIdentityAgentUrl;
          return fetchPodIdentityCredentials(endpoint, await current.token(), this.options.callTimeoutMs);
        }, margin);
    }
  }

  async #assumeRoleWithWebIdentity(key: string) {
    const current = this.#tokenIdentities.get(key);
    if (current?.kind !== 'webIdentity') throw new Error('web identity vanished');
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
