/**
 * External Secrets Operator → smk: an `ExternalSecret` (external-secrets.io/v1, also v1beta1) and
 * the AWS `SecretStore` / `ClusterSecretStore` it names become one `SecretSync`. The schemas below
 * are ESO v1's fields as its API reference gives them (loose: a field they do not list is kept, so
 * it can be reported); every unknown field, and every listed one smk cannot honour, is reported by its path.
 */
import { z } from 'zod';
import { type ConvertIssue, unknownFields } from './convert-output.ts';

const esoGroup = 'external-secrets.io';

const metadataSchema = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const serviceAccountRef = z.object({
  name: z.string().min(1),
  namespace: z.string().optional(),
  audiences: z.array(z.string()).optional(),
});
const awsAuth = z.object({
  jwt: z.object({ serviceAccountRef }).optional(),
  secretRef: z.unknown().optional(),
});
const awsProvider = z.looseObject({
  service: z.enum(['SecretsManager', 'ParameterStore']),
  region: z.string().optional(),
  role: z.string().optional(),
  externalID: z.string().optional(),
  sessionTags: z.array(z.object({ key: z.string(), value: z.string() })).optional(),
  transitiveTagKeys: z.array(z.string()).optional(),
  additionalRoles: z.array(z.string()).optional(),
  prefix: z.string().optional(),
  auth: awsAuth.optional(),
  secretsManager: z.unknown().optional(),
});
const storeSchema = z.object({
  apiVersion: z.string(),
  kind: z.enum(['SecretStore', 'ClusterSecretStore']),
  metadata: metadataSchema,
  spec: z.looseObject({ provider: z.looseObject({ aws: awsProvider.optional() }) }),
});
export type EsoStore = z.infer<typeof storeSchema>;

const remoteRef = z.looseObject({
  key: z.string().min(1),
  property: z.string().optional(),
  version: z.string().optional(),
  metadataPolicy: z.enum(['None', 'Fetch']).optional(),
  conversionStrategy: z.enum(['Default', 'Unicode']).optional(),
  decodingStrategy: z.enum(['None', 'Base64', 'Base64URL', 'Auto']).optional(),
  nullBytePolicy: z.string().optional(),
});
const dataEntry = z.looseObject({
  secretKey: z.string().min(1),
  remoteRef,
  sourceRef: z.unknown().optional(),
});
const dataFromEntry = z.object({
  extract: z.unknown().optional(),
  find: z.unknown().optional(),
  rewrite: z.unknown().optional(),
  sourceRef: z.unknown().optional(),
});
const templateSchema = z.looseObject({
  type: z.string().optional(),
  engineVersion: z.string().optional(),
  metadata: z
    .object({
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  mergePolicy: z.string().optional(),
  data: z.record(z.string(), z.string()).optional(),
  templateFrom: z.array(z.unknown()).optional(),
});
const targetSchema = z.looseObject({
  name: z.string().optional(),
  creationPolicy: z.enum(['Owner', 'Orphan', 'Merge', 'None']).optional(),
  deletionPolicy: z.enum(['Delete', 'Merge', 'Retain']).optional(),
  template: templateSchema.optional(),
  immutable: z.boolean().optional(),
});
const externalSecretSpec = z.looseObject({
  secretStoreRef: z
    .object({ name: z.string().min(1), kind: z.enum(['SecretStore', 'ClusterSecretStore']).optional() })
    .optional(),
  target: targetSchema.optional(),
  refreshInterval: z.string().optional(),
  refreshPolicy: z.enum(['CreatedOnce', 'Periodic', 'OnChange']).optional(),
  data: z.array(dataEntry).optional(),
  dataFrom: z.array(dataFromEntry).optional(),
});
const externalSecretSchema = z.object({
  apiVersion: z.string(),
  kind: z.literal('ExternalSecret'),
  metadata: metadataSchema,
  spec: externalSecretSpec,
});

export function isEsoObject(object: unknown): object is { apiVersion: string; kind: string } {
  const apiVersion = (object as { apiVersion?: unknown } | null)?.apiVersion;
  return typeof apiVersion === 'string' && apiVersion.startsWith(`${esoGroup}/`);
}

function describe(object: unknown): string {
  const { kind, metadata } = (object ?? {}) as {
    kind?: unknown;
    metadata?: { name?: unknown; namespace?: unknown };
  };
  const namespace = typeof metadata?.namespace === 'string' ? `${metadata.namespace}/` : '';
  return `${typeof kind === 'string' ? kind : 'object'} ${namespace}${typeof metadata?.name === 'string' ? metadata.name : '?'}`;
}

function zodIssue(subject: string, error: z.ZodError): ConvertIssue {
  const first = error.issues[0];
  return {
    severity: 'unsupported',
    subject,
    field: first?.path.join('.') || 'object',
    message: `not a valid ESO object: ${first?.message ?? 'invalid'}`,
  };
}

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
      issues.push(zodIssue(describe(object), parsed.error));
      continue;
    }
    const store = parsed.data;
    const namespace = store.kind === 'ClusterSecretStore' ? '' : (store.metadata.namespace ?? '');
    stores.set(`${store.kind} ${namespace}/${store.metadata.name}`, store);
  }
  return { stores, issues };
}

/** What a store contributes to a SecretSync, and what of it cannot be carried over. */
function storeSettings(
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

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * ESO's `property` (a gjson path: dots, `\.` for a literal dot, numbers for array items) as smk's
 * plain field path; undefined for gjson's wildcards and queries.
 */
export function fieldPathOf(property: string): string | undefined {
  if (/[*?#|@]/.test(property)) return undefined;
  const segments = property.split(/(?<!\\)\./).map((segment) => segment.replaceAll('\\.', '.'));
  if (segments.some((segment) => segment === '')) return undefined;
  return segments
    .map((segment, index) => {
      if (/^\d+$/.test(segment) && index > 0) return `[${segment}]`;
      return identifier.test(segment) ? segment : JSON.stringify(segment);
    })
    .join('.')
    .replaceAll('.[', '[');
}

interface SmkObject {
  objectName: string;
  objectType: string;
  objectAlias?: string;
  objectVersion?: string;
  objectVersionLabel?: string;
  jmesPath?: { path: string; objectAlias: string }[];
}

/** `spec.data` → ASCP objects (one per remote key and version) and the Secret keys they fill. */
function objectsOf(
  data: z.infer<typeof dataEntry>[],
  settings: { objectType: string; prefix: string },
  subject: string,
): { objects: SmkObject[]; keys: { objectName: string; key: string }[]; issues: ConvertIssue[] } {
  const byRemote = new Map<string, SmkObject>();
  const keys: { objectName: string; key: string }[] = [];
  const issues: ConvertIssue[] = [];
  for (const [index, entry] of data.entries()) {
    const field = `spec.data[${index}]`;
    const unsupported = (where: string, message: string): void => {
      issues.push({ severity: 'unsupported', subject, field: `${field}.${where}`, message });
    };
    issues.push(
      ...unknownFields(dataEntry, entry, subject, field),
      ...unknownFields(remoteRef, entry.remoteRef, subject, `${field}.remoteRef`),
    );
    const ref = entry.remoteRef;
    if (entry.sourceRef !== undefined)
      unsupported('sourceRef', 'smk reads one store per object (no generators or per-key stores)');
    if (ref.metadataPolicy === 'Fetch')
      unsupported('remoteRef.metadataPolicy', 'smk does not read tags or metadata as values');
    if (ref.decodingStrategy !== undefined && ref.decodingStrategy !== 'None') {
      unsupported('remoteRef.decodingStrategy', 'smk writes values as stored (no Base64 decoding)');
    }
    if (ref.conversionStrategy === 'Unicode')
      unsupported('remoteRef.conversionStrategy', 'no Unicode key conversion');
    const version = ref.version;
    const name = `${settings.prefix}${ref.key}`;
    const remote = `${name}\0${version ?? ''}`;
    let object = byRemote.get(remote);
    if (object === undefined) {
      object = { objectName: name, objectType: settings.objectType };
      if (version !== undefined) {
        if (version.startsWith('uuid/')) object.objectVersion = version.slice('uuid/'.length);
        else if (settings.objectType === 'ssmparameter' && /^\d+$/.test(version))
          object.objectVersion = version;
        else object.objectVersionLabel = version;
      }
      byRemote.set(remote, object);
    }
    if (ref.property === undefined) {
      if (object.objectAlias !== undefined) {
        unsupported(
          'secretKey',
          `the whole value of ${name} is already written as ${object.objectAlias}; smk writes one file per object`,
        );
        continue;
      }
      object.objectAlias = entry.secretKey;
    } else {
      const path = fieldPathOf(ref.property);
      if (path === undefined) {
        unsupported('remoteRef.property', 'gjson wildcards and queries have no plain field path equivalent');
        continue;
      }
      object.jmesPath = [...(object.jmesPath ?? []), { path, objectAlias: entry.secretKey }];
    }
    keys.push({ objectName: entry.secretKey, key: entry.secretKey });
  }
  return { objects: [...byRemote.values()], keys, issues };
}

/** One ExternalSecret → a SecretSync (or nothing, with the reasons). */
export function convertExternalSecret(
  object: unknown,
  stores: ReadonlyMap<string, EsoStore>,
  options: { readonly serviceAccount?: string | undefined } = {},
): { object?: Record<string, unknown>; issues: ConvertIssue[] } {
  const subject = describe(object);
  const parsed = externalSecretSchema.safeParse(object);
  if (!parsed.success) return { issues: [zodIssue(subject, parsed.error)] };
  const { metadata, spec } = parsed.data;
  // No namespace in the input: the one `kubectl apply -n` gives, the same for the store.
  const namespace = metadata.namespace ?? '';
  const issues: ConvertIssue[] = [
    ...unknownFields(externalSecretSpec, spec, subject, 'spec'),
    ...unknownFields(targetSchema, spec.target, subject, 'spec.target'),
    ...unknownFields(templateSchema, spec.target?.template, subject, 'spec.target.template'),
  ];
  const unsupported = (field: string, message: string): void => {
    issues.push({ severity: 'unsupported', subject, field, message });
  };
  const ref = spec.secretStoreRef;
  if (ref === undefined) {
    unsupported(
      'spec.secretStoreRef',
      'required: smk needs the store to know the service, region and ServiceAccount',
    );
    return { issues };
  }
  const kind = ref.kind ?? 'SecretStore';
  const store = stores.get(`${kind} ${kind === 'ClusterSecretStore' ? '' : namespace}/${ref.name}`);
  if (store === undefined) {
    unsupported(
      'spec.secretStoreRef',
      `${kind} ${ref.name} is not among the inputs; give its manifest too (-f)`,
    );
    return { issues };
  }
  const settings = storeSettings(store, namespace, subject, options.serviceAccount);
  issues.push(...settings.issues);

  for (const [index, entry] of (spec.dataFrom ?? []).entries()) {
    const what = entry.extract !== undefined ? 'extract' : entry.find !== undefined ? 'find' : 'sourceRef';
    unsupported(
      `spec.dataFrom[${index}].${what}`,
      what === 'extract'
        ? 'every key of a JSON secret: not in smk yet; list each key in spec.data (one jmesPath each)'
        : what === 'find'
          ? 'discovery by name or tags: not in smk yet; list each secret'
          : 'generators have no smk equivalent',
    );
    if (entry.rewrite !== undefined)
      unsupported(`spec.dataFrom[${index}].rewrite`, 'no key rewriting in smk');
  }
  const data = objectsOf(spec.data ?? [], settings, subject);
  issues.push(...data.issues);
  if (data.objects.length === 0) {
    unsupported('spec.data', 'nothing smk can fetch is left; a SecretSync needs at least one object');
    return { issues };
  }

  const target = spec.target ?? {};
  const template = target.template;
  if (template?.data !== undefined || template?.templateFrom !== undefined) {
    unsupported(
      'spec.target.template.data',
      'templates: not in smk yet; the Secret gets the values themselves',
    );
  }
  if (template?.engineVersion !== undefined || template?.mergePolicy !== undefined) {
    issues.push({
      severity: 'note',
      subject,
      field: 'spec.target.template',
      message: 'engineVersion / mergePolicy dropped (no templates)',
    });
  }
  if (target.immutable === true)
    unsupported('spec.target.immutable', 'smk keeps synced Secrets mutable (it updates them)');
  if (target.creationPolicy === 'None')
    unsupported('spec.target.creationPolicy', '"None" (no Secret written) has no SecretSync equivalent');
  if (target.deletionPolicy === 'Merge')
    unsupported('spec.target.deletionPolicy', '"Merge" has no equivalent: Retain or Delete');
  if (spec.refreshPolicy !== undefined && spec.refreshPolicy !== 'Periodic') {
    unsupported(
      'spec.refreshPolicy',
      `${spec.refreshPolicy}: smk refreshes periodically (and on rotation events)`,
    );
  }
  const refresh = spec.refreshInterval;
  if (refresh !== undefined && /^0+(s|m|h)?$/.test(refresh)) {
    unsupported(
      'spec.refreshInterval',
      '"0" (never refresh) has no equivalent; smk refreshes at least every interval',
    );
  }

  const secretSync = {
    apiVersion: 'smk.dev/v1alpha1',
    kind: 'SecretSync',
    metadata: { name: metadata.name, ...(metadata.namespace === undefined ? {} : { namespace }) },
    spec: {
      ...settings.spec,
      objects: data.objects,
      target: {
        name: target.name ?? metadata.name,
        ...(template?.type === undefined ? {} : { type: template.type }),
        ...(template?.metadata?.labels === undefined ? {} : { labels: template.metadata.labels }),
        ...(template?.metadata?.annotations === undefined
          ? {}
          : { annotations: template.metadata.annotations }),
        data: data.keys,
      },
      ...(refresh === undefined || /^0+(s|m|h)?$/.test(refresh) ? {} : { refreshInterval: refresh }),
      ...(target.creationPolicy === undefined || target.creationPolicy === 'None'
        ? {}
        : { creationPolicy: target.creationPolicy }),
      ...(target.deletionPolicy === 'Delete' || target.deletionPolicy === 'Retain'
        ? { deletionPolicy: target.deletionPolicy }
        : {}),
    },
  };
  return { object: secretSync, issues };
}

/** Every ESO object of the input: ExternalSecrets converted, stores consumed, others reported. */
export function convertEso(
  objects: readonly unknown[],
  options: { readonly serviceAccount?: string | undefined } = {},
): { objects: Record<string, unknown>[]; issues: ConvertIssue[] } {
  const { stores, issues } = collectStores(objects);
  const converted: Record<string, unknown>[] = [];
  for (const object of objects) {
    if (!isEsoObject(object)) continue;
    const kind = (object as { kind?: unknown }).kind;
    if (kind === 'SecretStore' || kind === 'ClusterSecretStore') continue;
    if (kind !== 'ExternalSecret') {
      issues.push({
        severity: 'unsupported',
        subject: describe(object),
        field: 'kind',
        message: 'smk converts ExternalSecret, SecretStore and ClusterSecretStore only',
      });
      continue;
    }
    const result = convertExternalSecret(object, stores, options);
    issues.push(...result.issues);
    if (result.object) converted.push(result.object);
  }
  return { objects: converted, issues };
}
