/**
 * What the AWS integration tests share: the runner's moto (connectMoto throws without it), an
 * admin SDK client for setup, unique names per test, and a reader wired through a per-test
 * counting/fault proxy.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { SecretCache, type SecretCacheOptions } from '../../src/aws/cache.ts';
import type { AwsClientsOptions } from '../../src/aws/client-options.ts';
import { AwsClients } from '../../src/aws/clients.ts';
import type { Identity } from '../../src/aws/identity.ts';
import { type AwsSecretReader, createSecretReader } from '../../src/aws/reader.ts';
import type { ReadResult, SecretValue } from '../../src/core/source.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto, type MotoEndpoint } from '../harness/moto.ts';

export const moto: MotoEndpoint = connectMoto();
export const region = 'us-east-1';

/** Setup clients: straight to moto through AWS_ENDPOINT_URL, with the runner's dummy keys. */
export const admin = {
  secrets: new SecretsManagerClient({ region }),
  ssm: new SSMClient({ region }),
};

/** A name prefix no other test (or run against the same moto) uses. */
export function uniquePrefix(label: string): string {
  return `smk-test-${label}-${randomBytes(5).toString('hex')}`;
}

export function staticIdentity(accessKeyId: string): Identity {
  return { kind: 'static', accessKeyId, secretAccessKey: 'testing' };
}

export async function createSecret(
  name: string,
  value: string | Uint8Array,
): Promise<{ arn: string; versionId: string }> {
  const answer = await admin.secrets.send(
    new CreateSecretCommand(
      typeof value === 'string' ? { Name: name, SecretString: value } : { Name: name, SecretBinary: value },
    ),
  );
  if (!answer.ARN || !answer.VersionId) throw new Error(`CreateSecret ${name}: no ARN or version`);
  return { arn: answer.ARN, versionId: answer.VersionId };
}

/** Rotation as moto can do it (moto.md #2): a new version at AWSPENDING, then AWSCURRENT moved to it. */
export async function rotateSecret(name: string, value: string, currentVersionId: string): Promise<string> {
  const put = await admin.secrets.send(
    new PutSecretValueCommand({ SecretId: name, SecretString: value, VersionStages: ['AWSPENDING'] }),
  );
  if (!put.VersionId) throw new Error(`PutSecretValue ${name}: no version`);
  await admin.secrets.send(
    new UpdateSecretVersionStageCommand({
      SecretId: name,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: put.VersionId,
      RemoveFromVersionId: currentVersionId,
    }),
  );
  return put.VersionId;
}

export interface Wired {
  readonly proxy: AwsProxy;
  readonly clients: AwsClients;
  readonly cache: SecretCache;
  reader(identity: Identity): AwsSecretReader;
}

/** A proxy in front of moto, a client factory pointed at it and one cache; all closed after the test. */
export async function wire(
  t: TestContext,
  options: { clients?: AwsClientsOptions; cache?: SecretCacheOptions } = {},
): Promise<Wired> {
  const proxy = await startAwsProxy({ target: moto.endpoint });
  const clients = new AwsClients({ maxAttempts: 1, ...options.clients, endpoint: proxy.endpoint });
  const cache = new SecretCache(options.cache);
  t.after(async () => {
    clients.destroy();
    await proxy.stop();
  });
  return { proxy, clients, cache, reader: (identity) => createSecretReader(identity, { cache, clients }) };
}

export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

export function expectValue(result: ReadResult | undefined): SecretValue {
  assert.ok(result, 'a result per request');
  if (!result.ok) assert.fail(`expected a value, got ${result.error.name}: ${result.error.message}`);
  return result.value;
}

export function expectError(result: ReadResult | undefined): ReadResult & { ok: false } {
  assert.ok(result, 'a result per request');
  if (result.ok) assert.fail(`expected an error, got version ${result.value.versionId}`);
  return result;
}
