/**
 * Registers the secret values of a run without the tests' help: at the end, every secret in the
 * run's moto (every region, every version, those scheduled for deletion restored first) and every
 * SSM parameter version. Secrets deleted without recovery are gone and cannot be registered.
 */
import {
  GetSecretValueCommand,
  ListSecretsCommand,
  ListSecretVersionIdsCommand,
  RestoreSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  DescribeParametersCommand,
  type DescribeParametersCommandOutput,
  GetParameterHistoryCommand,
  type GetParameterHistoryCommandOutput,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { SecretRecord } from './needles.ts';

/** Every region a test might use (moto keeps one backend per region). */
export const scannedRegions = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'ca-central-1',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-central-1',
  'eu-central-2',
  'eu-north-1',
  'eu-south-1',
  'ap-south-1',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ap-east-1',
  'sa-east-1',
  'me-south-1',
  'af-south-1',
  'us-gov-west-1',
  'us-gov-east-1',
  'cn-north-1',
  'cn-northwest-1',
] as const;

/**
 * Other accounts tests keep secrets in (the role-chaining tests: moto serves AssumeRole
 * credentials from the role's own account backend). Each is read through this role, assumed first.
 */
export const scannedAccountRoles = ['arn:aws:iam::222233334444:role/shared-secrets-reader'] as const;

type ScanCredentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** The default account's keys, then each other account's through an assumed role. */
async function accountCredentials(endpoint: string, problems: string[]): Promise<ScanCredentials[]> {
  const own = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const all: ScanCredentials[] = [own];
  const sts = new STSClient({ region: 'us-east-1', endpoint, credentials: own, maxAttempts: 5 });
  try {
    for (const roleArn of scannedAccountRoles) {
      try {
        const issued = (
          await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'leak-scan' }))
        ).Credentials;
        if (issued?.AccessKeyId && issued.SecretAccessKey) {
          all.push({
            accessKeyId: issued.AccessKeyId,
            secretAccessKey: issued.SecretAccessKey,
            ...(issued.SessionToken ? { sessionToken: issued.SessionToken } : {}),
          });
        }
      } catch (error) {
        problems.push(`account of ${roleArn}: ${error instanceof Error ? error.name : 'AssumeRole failed'}`);
      }
    }
  } finally {
    sts.destroy();
  }
  return all;
}

export interface MotoValues {
  readonly records: SecretRecord[];
  readonly secrets: number;
  readonly parameters: number;
  /** Reads that failed (named, never with a value). */
  readonly problems: string[];
}

async function inBatches<T>(
  items: readonly T[],
  size: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

export interface CollectOptions {
  /** Only secrets and parameters whose name starts with this (the proof test's own). */
  readonly namePrefix?: string;
  /**
   * Restore secrets scheduled for deletion to read them (default true). Only at the end of a
   * run: during one, it would undo another test's deletion.
   */
  readonly restoreDeleted?: boolean;
}

export async function collectMotoValues(endpoint: string, options: CollectOptions = {}): Promise<MotoValues> {
  const restoreDeleted = options.restoreDeleted ?? true;
  const prefix = options.namePrefix;
  const records: SecretRecord[] = [];
  const problems: string[] = [];
  let secrets = 0;
  let parameters = 0;
  const accounts = await accountCredentials(endpoint, problems);
  await Promise.all(
    accounts
      .flatMap((credentials) => scannedRegions.map((region) => ({ credentials, region })))
      .map(async ({ credentials, region }) => {
        const sm = new SecretsManagerClient({ region, endpoint, credentials, maxAttempts: 5 });
        const ssm = new SSMClient({ region, endpoint, credentials, maxAttempts: 5 });
        try {
          const arns: { arn: string; name: string; deleted: boolean }[] = [];
          let token: string | undefined;
          do {
            const page = await sm.send(
              new ListSecretsCommand({
                IncludePlannedDeletion: restoreDeleted,
                MaxResults: 100,
                NextToken: token,
                ...(prefix ? { Filters: [{ Key: 'name', Values: [prefix] }] } : {}),
              }),
            );
            for (const entry of page.SecretList ?? []) {
              if (entry.ARN && (prefix === undefined || entry.Name?.startsWith(prefix)))
                arns.push({
                  arn: entry.ARN,
                  name: entry.Name ?? entry.ARN,
                  deleted: entry.DeletedDate !== undefined,
                });
            }
            token = page.NextToken;
          } while (token);
          secrets += arns.length;
          await inBatches(arns, 8, async ({ arn, name, deleted }) => {
            try {
              if (deleted) await sm.send(new RestoreSecretCommand({ SecretId: arn }));
              const versions = await sm.send(
                new ListSecretVersionIdsCommand({ SecretId: arn, IncludeDeprecated: true, MaxResults: 100 }),
              );
              for (const version of versions.Versions ?? []) {
                if (!version.VersionId) continue;
                const value = await sm.send(
                  new GetSecretValueCommand({ SecretId: arn, VersionId: version.VersionId }),
                );
                const source = `secret ${region} ${name} @ ${version.VersionId}`;
                if (value.SecretString !== undefined) records.push({ source, value: value.SecretString });
                if (value.SecretBinary !== undefined) {
                  const bytes = Buffer.from(value.SecretBinary);
                  records.push({ source: `${source} (binary, base64)`, value: bytes.toString('base64') });
                  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
                  if (!text.includes('\uFFFD')) records.push({ source: `${source} (binary)`, value: text });
                }
              }
            } catch (error) {
              problems.push(
                `secret ${region} ${name}: ${error instanceof Error ? error.name : 'read failed'}`,
              );
            }
          });

          const names: string[] = [];
          token = undefined;
          do {
            const page: DescribeParametersCommandOutput = await ssm.send(
              new DescribeParametersCommand({ MaxResults: 50, NextToken: token }),
            );
            for (const entry of page.Parameters ?? []) {
              if (entry.Name && (prefix === undefined || entry.Name.startsWith(prefix)))
                names.push(entry.Name);
            }
            token = page.NextToken;
          } while (token);
          parameters += names.length;
          await inBatches(names, 8, async (name) => {
            try {
              let next: string | undefined;
              do {
                const page: GetParameterHistoryCommandOutput = await ssm.send(
                  new GetParameterHistoryCommand({
                    Name: name,
                    WithDecryption: true,
                    MaxResults: 50,
                    NextToken: next,
                  }),
                );
                for (const entry of page.Parameters ?? []) {
                  if (entry.Value !== undefined) {
                    records.push({
                      source: `parameter ${region} ${name} @ ${entry.Version ?? '?'}`,
                      value: entry.Value,
                    });
                  }
                }
                next = page.NextToken;
              } while (next);
            } catch (error) {
              problems.push(
                `parameter ${region} ${name}: ${error instanceof Error ? error.name : 'read failed'}`,
              );
            }
          });
        } catch (error) {
          problems.push(`region ${region}: ${error instanceof Error ? error.name : 'listing failed'}`);
        } finally {
          sm.destroy();
          ssm.destroy();
        }
      }),
  );
  return { records, secrets, parameters, problems };
}
