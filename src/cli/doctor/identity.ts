/**
 * Doctor's identity checks: the ServiceAccount names an IAM role (IRSA), and that role, assumed as
 * smk assumes it (a TokenRequest token, the same session name), can DescribeSecret the secret.
 * DescribeSecret only: nothing here reads or prints a secret value.
 */

import { sessionNameFor } from '../../aws/identity.ts';
import { createSecretReader, type Identity, SecretCache } from '../../aws/index.ts';
import { parseArn } from '../../core/arn.ts';
import { isSmkError, NotFoundError } from '../../core/errors.ts';
import { currentStage } from '../../core/source.ts';
import { createServiceAccounts } from '../../kube/service-accounts.ts';
import { describeCliError } from '../errors.ts';
import {
  type CheckResult,
  type ClusterDeps,
  type DoctorOptions,
  fail,
  pass,
  skip,
  withDeadline,
} from './verdict.ts';

export async function checkIdentity(
  deps: ClusterDeps,
  options: DoctorOptions,
  ms: number,
): Promise<CheckResult[]> {
  const roleName = 'ServiceAccount IAM role';
  const readName = 'role can describe the secret';
  const ref = options.serviceAccount;
  if (!ref) {
    return [
      skip(roleName, 'give --service-account NAMESPACE/NAME'),
      skip(readName, 'give --service-account NAMESPACE/NAME and --secret NAME|ARN'),
    ];
  }
  const account = `ServiceAccount ${ref.namespace}/${ref.name}`;
  const serviceAccounts = createServiceAccounts(deps.kubeConfig);
  let roleArn: string;
  try {
    roleArn = await withDeadline(roleName, ms, serviceAccounts.roleArn(ref));
  } catch (error) {
    return [
      fail(
        roleName,
        error instanceof NotFoundError ? `${account} not found` : describeCliError(error),
        error instanceof NotFoundError
          ? `kubectl -n ${ref.namespace} create serviceaccount ${ref.name}, then annotate it`
          : `kubectl -n ${ref.namespace} annotate serviceaccount ${ref.name} eks.amazonaws.com/role-arn=arn:aws:iam::ACCOUNT:role/ROLE (docs/iam.md); doctor checks IRSA only`,
      ),
      skip(readName, 'no role to assume'),
    ];
  }
  const results = [pass(roleName, `${account} → ${roleArn}`)];
  if (!options.secret) return [...results, skip(readName, 'give --secret NAME|ARN')];
  const arn = parseArn(options.secret);
  const region = arn?.service === 'secretsmanager' && arn.region !== '' ? arn.region : options.region;
  if (!region) {
    return [
      ...results,
      fail(
        readName,
        `no region for ${options.secret}`,
        'give --region REGION or set AWS_REGION, or pass the ARN',
      ),
    ];
  }
  const identity: Identity = {
    kind: 'webIdentity',
    roleArn,
    subject: `${ref.namespace}/${ref.name}`,
    // The session name smk itself uses, so a trust policy conditioned on it is checked as it applies.
    sessionName: sessionNameFor(ref.namespace, ref.name),
    token: async () => (await serviceAccounts.token(ref)).token,
  };
  const reader = createSecretReader(identity, { cache: new SecretCache(), clients: deps.clients });
  try {
    const versions = await withDeadline(
      readName,
      ms * 2,
      reader.describe({ objectType: 'secretsmanager', id: options.secret, region }),
    );
    const current = [...versions.versionsToStages].find(([, stages]) => stages.includes(currentStage))?.[0];
    return [
      ...results,
      pass(
        readName,
        `as ${account}: DescribeSecret ${versions.name} in ${region} → ${versions.versionsToStages.size} version(s), AWSCURRENT ${current ?? 'none'}`,
      ),
    ];
  } catch (error) {
    const kind = isSmkError(error) ? error.kind : undefined;
    const hint =
      kind === 'NotFound'
        ? `no secret ${options.secret} in ${region}: check the name, or pass its ARN (the ARN picks its own region)`
        : kind === 'AccessDenied'
          ? `allow secretsmanager:DescribeSecret and secretsmanager:GetSecretValue on this secret in the role's policy, and let the role's trust policy accept system:serviceaccount:${ref.namespace}:${ref.name} from the cluster's OIDC provider (docs/iam.md)`
          : 'STS or Secrets Manager could not be reached: check the region, AWS_ENDPOINT_URL and the network';
    return [...results, fail(readName, `as ${account} (${roleArn}): ${describeCliError(error)}`, hint)];
  }
}
