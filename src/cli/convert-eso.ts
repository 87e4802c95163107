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
  extract: remoteRef.optional(),
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
  extractKeys?: true;
  jmesPath?: { path: string; objectAlias: string }[];
}

type RemoteRef = z.infer<typeof remoteRef>;

/** What a remote ref asks of the value that smk does not do, as issues under `field`. */
function refIssues(ref: RemoteRef, field: string, subject: string): ConvertIssue[] {
  const issues: ConvertIssue[] = [];
  const unsupported = (where: string, message: string): void => {
    issues.push({ severity: 'unsupported', subject, field: `${field}.${where}`, message });
  };
  if (ref.metadataPolicy === 'Fetch')
    unsupported('metadataPolicy', 'smk does not read tags or metadata as values');
  if (ref.decodingStrategy !== undefined && ref.decodingStrategy !== 'None') {
    unsupported('decodingStrategy', 'smk writes values as stored (no Base64 decoding)');
  }
  // Default keeps the keys as they are, as smk does; Unicode renames invalid ones, smk refuses them.
  if (ref.conversionStrategy === 'Unicode') {
    unsupported(
      'conversionStrategy',
      'no Unicode key conversion: smk fails an object whose key is not a valid Secret key',
    );
  }
  return issues;
}

/** The ASCP object a remote key (and version) becomes; one per distinct pair. */
function remoteObject(
  byRemote: Map<string, SmkObject>,
  ref: RemoteRef,
  settings: { objectType: string; prefix: string },
): SmkObject {
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
  return object;
}

/**
 * `spec.data` and `spec.dataFrom[].extract` → ASCP objects (one per remote key and version) and
 * the Secret keys `spec.data` fills. An extract becomes `extractKeys: true` (on the same object as
 * `spec.data` entries of that key, so no whole-value file appears beside them).
 */
function objectsOf(
  data: z.infer<typeof dataEntry>[],
  extracts: { ref: RemoteRef; field: string }[],
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
      ...refIssues(entry.remoteRef, `${field}.remoteRef`, subject),
    );
    const ref = entry.remoteRef;
    if (entry.sourceRef !== undefined)
      unsupported('sourceRef', 'smk reads one store per object (no generators or per-key stores)');
    const object = remoteObject(byRemote, ref, settings);
    if (ref.property === undefined) {
      if (object.objectAlias !== undefined) {
        unsupported(
          'secretKey',
          `the whole value of ${object.objectName} is already written as ${object.objectAlias}; smk writes one file per object`,
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
  for (const { ref, field } of extracts) {
    issues.push(...unknownFields(remoteRef, ref, subject, field), ...refIssues(ref, field, subject));
    if (ref.property !== undefined) {
      issues.push({
        severity: 'unsupported',
        subject,
        field: `${field}.property`,
        message: 'extractKeys takes the top-level keys of the whole value, not of a nested object',
      });
      continue;
    }
    const object = remoteObject(byRemote, ref, settings);
    if (object.objectAlias !== undefined) {
      issues.push({
        severity: 'unsupported',
        subject,
        field,
        message: `the whole value of ${object.objectName} is also written as ${object.objectAlias}; an extractKeys object writes only its keys`,
      });
      continue;
    }
    object.extractKeys = true;
  }
  return { objects: [...byRemote.values()], keys, issues };
}

/** ESO's "never refresh": a Go duration that is zero ("0", "0s", "0h0m0s"). */
export function isZeroDuration(text: string): boolean {
  return /^(?:0+(?:\.0*)?(?:ns|us|µs|ms|s|m|h)?)+$/.test(text);
}

const goReference = /^\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

/**
 * An ESO (Go) template → smk's, when it only inserts keys: `{{ .name }}` → `{{ name }}`.
 * Undefined for anything else (functions, pipelines, trim markers, `{{ .a.b }}`) and for text smk's
 * engine would read as its own syntax (`{%`), so the output never means something else.
 */
export function smkTemplateOf(text: string): string | undefined {
  if (text.includes('{%')) return undefined;
  let result = '';
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('{{', at);
    const stray = text.indexOf('}}', at);
    if (open === -1) {
      if (stray !== -1) return undefined;
      break;
    }
    if (stray !== -1 && stray < open) return undefined;
    const close = text.indexOf('}}', open + 2);
    if (close === -1) return undefined;
    const name = goReference.exec(text.slice(open, close + 2))?.[1];
    if (name === undefined) return undefined;
    result += `${text.slice(at, open)}{{ ${name} }}`;
    at = close + 2;
  }
  return result + text.slice(at);
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

  const extracts: { ref: RemoteRef; field: string }[] = [];
  for (const [index, entry] of (spec.dataFrom ?? []).entries()) {
    const field = `spec.dataFrom[${index}]`;
    if (entry.extract !== undefined) extracts.push({ ref: entry.extract, field: `${field}.extract` });
    else if (entry.find !== undefined)
      unsupported(`${field}.find`, 'discovery by name or tags: not in smk yet; list each secret');
    else unsupported(`${field}.sourceRef`, 'generators have no smk equivalent');
    if (entry.rewrite !== undefined) unsupported(`${field}.rewrite`, 'no key rewriting in smk');
  }
  const data = objectsOf(spec.data ?? [], extracts, settings, subject);
  issues.push(...data.issues);
  if (data.objects.length === 0) {
    unsupported('spec.data', 'nothing smk can fetch is left; a SecretSync needs at least one object');
    return { issues };
  }
  const extracted = data.objects.some((object) => object.extractKeys === true);
  if (extracted) {
    issues.push({
      severity: 'note',
      subject,
      field: 'spec.dataFrom',
      message:
        'extract → extractKeys: a non-string JSON value is written as smk re-serialises it (5432.0 → 5432, nested objects compact), ESO copies its JSON text; a key produced twice fails the SecretSync (ESO lets the later one win)',
    });
  }

  const target = spec.target ?? {};
  const template = target.template;
  const templates: Record<string, string> = {};
  for (const [key, text] of Object.entries(template?.data ?? {})) {
    const converted = smkTemplateOf(text);
    if (converted === undefined) {
      unsupported(
        `spec.target.template.data.${key}`,
        'only {{ .key }} references convert ({{ key }} in smk); functions, pipelines and other Go template syntax have no equivalent',
      );
    } else templates[key] = converted;
  }
  if (template?.templateFrom !== undefined)
    unsupported(
      'spec.target.template.templateFrom',
      'templates from ConfigMaps or Secrets have no smk equivalent',
    );
  if (template?.engineVersion === 'v1' && template.data !== undefined)
    unsupported(
      'spec.target.template.engineVersion',
      'v1 templates (values as bytes) have no smk equivalent',
    );
  // ESO's default mergePolicy (Replace) gives a Secret of only the template's keys.
  const templated = template?.data !== undefined && template.mergePolicy !== 'Merge';
  if (!templated && extracted) {
    // Keys of an extract are known only after the read, so no target.data: every file becomes a
    // key, and an object with only jmesPath entries would add its whole value as one more.
    for (const object of data.objects) {
      if (object.extractKeys || object.objectAlias !== undefined) continue;
      unsupported(
        'spec.data',
        `beside dataFrom extract, the Secret would also get the whole value of ${object.objectName}; extract that key too, or name its whole value`,
      );
    }
  }
  if (!templated) {
    for (const key of Object.keys(templates).filter((name) =>
      data.keys.some((entry) => entry.key === name),
    )) {
      unsupported(
        `spec.target.template.data.${key}`,
        'mergePolicy Merge with a template key that spec.data also fills: ESO lets the template win, smk fails a key produced twice',
      );
    }
  }
  const keys = [
    ...(templated ? [] : data.keys),
    ...Object.keys(templates).map((key) => ({ objectName: key, key })),
  ];

  if (target.immutable === true && target.creationPolicy === 'Merge')
    unsupported(
      'spec.target.immutable',
      'smk does not make a Secret it merges into (creationPolicy Merge) immutable',
    );
  if (target.creationPolicy === 'None')
    unsupported('spec.target.creationPolicy', '"None" (no Secret written) has no SecretSync equivalent');
  if (target.deletionPolicy === 'Merge')
    unsupported('spec.target.deletionPolicy', '"Merge" has no equivalent: Retain or Delete');

  const refresh = spec.refreshInterval;
  // ESO: interval 0 under Periodic means "create once"; OnChange ignores the interval.
  const policy =
    spec.refreshPolicy === 'OnChange'
      ? 'OnChange'
      : spec.refreshPolicy === 'CreatedOnce' || (refresh !== undefined && isZeroDuration(refresh))
        ? 'CreatedOnce'
        : 'Periodic';
  if (policy !== 'Periodic' && refresh !== undefined && !isZeroDuration(refresh)) {
    issues.push({
      severity: 'note',
      subject,
      field: 'spec.refreshInterval',
      message: `dropped: refreshPolicy ${policy} reads no value periodically`,
    });
  }
  if (policy === 'CreatedOnce') {
    issues.push({
      severity: 'note',
      subject,
      field: spec.refreshPolicy === 'CreatedOnce' ? 'spec.refreshPolicy' : 'spec.refreshInterval',
      message:
        'CreatedOnce: smk reads until its Secret exists, then never; ESO also rewrites the Secret when someone changes it',
    });
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
        ...(extracted && !templated ? {} : { data: keys }),
        ...(Object.keys(templates).length === 0 ? {} : { templates }),
        ...(target.immutable === true ? { immutable: true } : {}),
      },
      ...(policy === 'Periodic' ? {} : { refreshPolicy: policy }),
      ...(policy === 'Periodic' && refresh !== undefined ? { refreshInterval: refresh } : {}),
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
    if (kind === 'ClusterExternalSecret') {
      issues.push({
        severity: 'unsupported',
        subject: describe(object),
        field: 'kind',
        message:
          "no cluster-scoped SecretSync in smk yet: nothing writes one Secret into each namespace matched by spec.namespaceSelectors / namespaces, re-checks them every spec.refreshTime, or reports provisioned and failed namespaces; convert spec.externalSecretSpec as one ExternalSecret per namespace, each reading as that namespace's ServiceAccount",
      });
      continue;
    }
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
