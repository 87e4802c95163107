/**
 * A second AWS account in moto, for the role-chaining tests. moto keeps one backend per account
 * and answers with AssumeRole credentials from the role's own account, so a secret created here is
 * found only by a reader that chained to `otherAccountRole`. The leak scan reads this account too
 * (test/leak/moto-values.ts scannedAccountRoles).
 */
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { scannedAccountRoles } from '../leak/moto-values.ts';

export const [otherAccountRole] = scannedAccountRoles;

/** Creates a secret in `otherAccountRole`'s account (us-east-1); returns its ARN. */
export async function createSecretInOtherAccount(
  endpoint: string,
  name: string,
  value: string,
): Promise<string> {
  const own = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const sts = new STSClient({ region: 'us-east-1', endpoint, credentials: own });
  let issued: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string } | undefined;
  try {
    issued = (
      await sts.send(new AssumeRoleCommand({ RoleArn: otherAccountRole, RoleSessionName: 'test-setup' }))
    ).Credentials;
  } finally {
    sts.destroy();
  }
  if (!issued?.AccessKeyId || !issued.SecretAccessKey)
    throw new Error('moto answered AssumeRole without credentials');
  const client = new SecretsManagerClient({
    region: 'us-east-1',
    endpoint,
    credentials: {
      accessKeyId: issued.AccessKeyId,
      secretAccessKey: issued.SecretAccessKey,
      ...(issued.SessionToken ? { sessionToken: issued.SessionToken } : {}),
    },
  });
  try {
    return (await client.send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN ?? '';
  } finally {
    client.destroy();
  }
}
