/** An ESO store (SecretStore / ClusterSecretStore) → the identity, region and role a SecretSync uses. */
import {
  awsProvider,
  describeObject,
  type EsoStore,
  isEsoObject,
  storeSchema,
  zodIssue,
} from './convert-eso-schema.ts';
import { type ConvertIssue, unknownFields } from './convert-output.ts';

/** Stores by `Kind namespace/name` (a ClusterSecretStore without namespace). */
export function collectStores(objects: readonly unknown[]): {
  stores: Map<string, EsoStore>;
  issues: ConvertIssue[];
} {
  const stores = new Map<string, EsoStore>();
  const issues: ConvertIssue[] = [];
  for (const object of objects) {
    const kind = (object as { kind?: unknown }).kind;
    if (!isEsoObject(object) || (kind !== 'SecretStore' && kind !== 'ClusterSecretStore')) continue;
    const parsed = storeSchema.safeParse(object);
    if (!parsed.success) {
      issues.push(zodIssue(describeObject(object), parsed.error));
      continue;
    }
    const store = parsed.data;
    const namespace = store.kind === 'ClusterSecretStore' ? '' : (store.metadata.namespace ?? '');
    stores.set(`${store.kind} ${namespace}/${store.metadata.name}`, store);
  }
  return { stores, issues };
}

/** What a store contributes to a SecretSync, and what of it cannot be carried over. */
export function storeSettings(
  store: EsoStore,
  namespace: string,
  subject: string,
  serviceAccountOverride: string | undefined,
): { spec: Record<string, unknown>; objectType: string; prefix: string; issues: ConvertIssue[] } {
  const storeSubject = `${store.kind} ${store.kind === 'SecretStore' && namespace !== '' ? `${namespace}/` : ''}${store.metadata.name}`;
  const issues: ConvertIssue[] = [];
  const providers = Object.keys(store.spec.provider);
  const aws = store.spec.provider.aws;
  if (aws === undefined) {
    issues.push({
      severity: 'unsupported',
      subject: storeSubject,
      field: `spec.provider.${providers[0] ?? ''}`,
      message: 'smk reads only AWS Secrets Manager and SSM Parameter Store (provider aws)',
    });
    return { spec: {}, objectType: 'secretsmanager', prefix: '', issues };
  }
  issues.push(
    ...unknownFields(awsProvider, aws, storeSubject, 'spec.provider.aws'),
    ...unknownFields(
      storeSchema.shape.spec,
      store.spec,
      storeSubject,
      'spec',
      'no smk equivalent (store-wide setting)',
    ),
  );
  const spec: Record<string, unknown> = {};
  const account = aws.auth?.jwt?.serviceAccountRef;
  if (serviceAccountOverride !== undefined) {
    spec.serviceAccountName = serviceAccountOverride;
  } else if (account !== undefined && (account.namespace === undefined || account.namespace === namespace)) {
    spec.serviceAccountName = account.name;
  } else {
    issues.push({
      severity: 'unsupported',
      subject,
      field: 'spec.secretStoreRef',
      message:
        account === undefined
          ? `${storeSubject} reads with the operator's own credentials (no auth.jwt.serviceAccountRef); smk reads as a ServiceAccount of the ExternalSecret's namespace: give --service-account NAME`
          : `${storeSubject} reads as ServiceAccount ${account.namespace}/${account.name}, another namespace; smk reads only as this namespace's accounts: give --service-account NAME`,
    });
  }
  if (aws.auth?.jwt?.serviceAccountRef.audiences !== undefined) {
    issues.push({
      severity: 'note',
      subject: storeSubject,
      field: 'spec.provider.aws.auth.jwt.serviceAccountRef.audiences',
      message: 'smk asks for its own token audience (sts.amazonaws.com)',
    });
  }
  if (aws.auth?.secretRef !== undefined) {
    issues.push({
      severity: 'unsupported',
      subject: storeSubject,
      field: 'spec.provider.aws.auth.secretRef',
      message:
        'smk never uses long-lived access keys; give the ServiceAccount an IRSA role or Pod Identity association',
    });
  }
  if (aws.region !== undefined) spec.region = aws.region;
  if (aws.role !== undefined) {
    spec.assumeRole = {
      roleArn: aws.role,
      ...(aws.externalID === undefined ? {} : { externalId: aws.externalID }),
      ...(aws.sessionTags === undefined || aws.sessionTags.length === 0
        ? {}
        : { sessionTags: Object.fromEntries(aws.sessionTags.map((tag) => [tag.key, tag.value])) }),
    };
  } else if (aws.externalID !== undefined || aws.sessionTags !== undefined) {
    issues.push({
      severity: 'unsupported',
      subject: storeSubject,
      field: 'spec.provider.aws.externalID',
      message:
        'external id and session tags apply to an assumed role; the store names none (spec.provider.aws.role)',
    });
  }
  for (const field of ['transitiveTagKeys', 'additionalRoles'] as const) {
    if (aws[field] !== undefined) {
      issues.push({
        severity: 'unsupported',
        subject: storeSubject,
        field: `spec.provider.aws.${field}`,
        message:
          field === 'additionalRoles'
            ? 'smk chains one role (spec.assumeRole), not several'
            : 'smk sets no transitive session tags',
      });
    }
  }
  if (aws.secretsManager !== undefined) {
    issues.push({
      severity: 'note',
      subject: storeSubject,
      field: 'spec.provider.aws.secretsManager',
      message: "PushSecret/deletion settings; smk's SecretSync only reads",
    });
  }
  return {
    spec,
    objectType: aws.service === 'ParameterStore' ? 'ssmparameter' : 'secretsmanager',
    prefix: aws.prefix ?? '',
    issues,
  };
}
