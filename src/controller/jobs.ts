/**
 * What the sync controller is asked to do, from either source, as one shape (a SyncJob):
 *   - a `SecretSync` (smk.dev/v1alpha1), smk's own resource;
 *   - a `SecretProviderClass` (secrets-store.csi.x-k8s.io/v1) opted in with `smk.dev/sync: "true"`,
 *     whose `secretObjects` are synced without any pod mounting it (the seeds' drop-in).
 * Both are parsed once, with zod, into plain values (a SecretSync here, a SecretProviderClass in
 * ./spc-job.ts, sharing this file's field rules); errors name the object and field.
 */
import * as z from 'zod';
import { normaliseRoleChain, type RoleChain, roleChainSchema } from '../aws/role-chain.ts';
import { parseDuration } from '../core/duration.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { MountParams } from '../core/spec.ts';

export const group = 'smk.dev';
export const version = 'v1alpha1';
export const secretSyncKind = 'SecretSync';
export const secretSyncPlural = 'secretsyncs';
export const clusterSecretSyncKind = 'ClusterSecretSync';
export const clusterSecretSyncPlural = 'clustersecretsyncs';
export const spcGroup = 'secrets-store.csi.x-k8s.io';
export const spcVersion = 'v1';
export const spcKind = 'SecretProviderClass';
export const spcPlural = 'secretproviderclasses';

/** Opt-in and settings of the SecretProviderClass drop-in. */
export const annotations = {
  sync: 'smk.dev/sync',
  serviceAccount: 'smk.dev/service-account',
  refreshInterval: 'smk.dev/refresh-interval',
  creationPolicy: 'smk.dev/creation-policy',
  deletionPolicy: 'smk.dev/deletion-policy',
  /** On a Secret smk writes: which object it was synced from (`SecretSync/name`). */
  owner: 'smk.dev/owner',
  /**
   * On a Secret smk did not create, set by someone who may write it: the sources allowed to merge
   * keys into it (`SecretSync/name`, `SecretProviderClass/name`, or a bare SecretSync name).
   */
  mergeFrom: 'smk.dev/merge-from',
  /**
   * On a Secret a SecretProviderClass owns: which version of each object it holds (JSON, object
   * name → versionId). A SecretSync keeps this in `status.syncedVersions`; a SecretProviderClass
   * has no status of ours, so the rotation controller reads it here.
   */
  versions: 'smk.dev/versions',
} as const;

export const managedByLabel = 'app.kubernetes.io/managed-by';
export const managedByValue = 'smk';
/** Holds a SecretSync until its deletionPolicy has been carried out. */
export const finalizer = 'smk.dev/secret-sync';

/**
 * The Secret types smk writes: Opaque, and the kubernetes.io types that only fix the shape of
 * their keys (the API server checks it). Every other type is read by some component as a
 * credential or a record — `kubernetes.io/service-account-token` gets an API token minted into it,
 * `bootstrap.kubernetes.io/token` joins nodes, `helm.sh/release.v1` is Helm's release history — so
 * writing one for a tenant would act with that component's authority.
 */
export const writableSecretTypes: readonly string[] = [
  'Opaque',
  'kubernetes.io/basic-auth',
  'kubernetes.io/ssh-auth',
  'kubernetes.io/tls',
  'kubernetes.io/dockerconfigjson',
  'kubernetes.io/dockercfg',
];
/** Merge writes only into Opaque Secrets: the others carry meaning for the component that made them. */
export const mergeableSecretType = 'Opaque';

/** `smk.dev/`, `kubernetes.io/`, `k8s.io/` and their subdomains (case as the API server ignores it). */
const reservedPrefix = /^(?:[a-z0-9-]+\.)*(?:smk\.dev|kubernetes\.io|k8s\.io)\//i;
/** Kubernetes' recommended labels are meant for users; managed-by is smk's own ownership label. */
const userPrefix = 'app.kubernetes.io/';

/**
 * Why a target may not set `key` as a label or annotation of its Secret, or undefined when it may.
 * `smk.dev/` keys steer smk itself (write-through, owner, merge opt-in, rollouts); the
 * `kubernetes.io/` and `k8s.io/` prefixes are Kubernetes' own (the token controller's
 * service-account.name, kubectl's last-applied-configuration). The CRD's CEL rule says the same.
 */
export function reservedKeyReason(key: string): string | undefined {
  if (key.toLowerCase() === managedByLabel) return `it is smk's ownership label`;
  if (!reservedPrefix.test(key) || key.toLowerCase().startsWith(userPrefix)) return undefined;
  return /^(?:[a-z0-9-]+\.)*smk\.dev\//i.test(key)
    ? 'smk.dev/ keys steer smk itself'
    : 'kubernetes.io/ and k8s.io/ keys belong to Kubernetes components';
}

export type CreationPolicy = 'Owner' | 'Orphan' | 'Merge';
/**
 * When a source is synced again: Periodic (every refreshInterval, and on a change), OnChange (only
 * when its spec changes, or a rotation asks), CreatedOnce (until its Secrets exist, then never).
 */
export type RefreshPolicy = 'Periodic' | 'OnChange' | 'CreatedOnce';
export type DeletionPolicy = 'Retain' | 'Delete';
export type SourceKind = typeof secretSyncKind | typeof spcKind | typeof clusterSecretSyncKind;

export interface SyncTarget {
  /** Secret name. */
  readonly name: string;
  readonly type: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** `immutable: true` on the Secret: once written its data never changes (the API server holds it). */
  readonly immutable?: boolean;
  /** Which produced file goes under which key; undefined: one key per file, named as the file. */
  readonly data?: readonly { readonly objectName: string; readonly key: string }[];
}

export interface SyncSource {
  readonly kind: SourceKind;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
}

export interface SyncJob {
  readonly source: SyncSource;
  readonly serviceAccountName: string;
  /**
   * A second role assumed with the ServiceAccount's own credentials (SecretSync `spec.assumeRole`,
   * a class's `assumeRole*` parameters); `field` is where it was set, for errors.
   */
  readonly roleChain?: { readonly chain: RoleChain; readonly field: string } | undefined;
  /** The objects spec and its region settings, for core's parseMountSpec. */
  readonly params: MountParams;
  readonly targets: readonly SyncTarget[];
  /** Keys rendered from the objects' files (SecretSync spec.target.templates), key → template text. */
  readonly templates: Readonly<Record<string, string>>;
  readonly refreshIntervalMs: number;
  readonly refreshPolicy: RefreshPolicy;
  readonly creationPolicy: CreationPolicy;
  readonly deletionPolicy: DeletionPolicy;
}

export const defaultRefreshIntervalMs = 60 * 60 * 1000;
/** As the CRD's maxProperties: a template is rendered on every sync, so their number is bounded. */
const maxTemplates = 64;
/** Refreshing more often than this would only burn API calls. */
export const minRefreshIntervalMs = 1000;

const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const secretKeyPattern = /^[-._a-zA-Z0-9]+$/;

export const name = z
  .string()
  .max(253)
  .regex(dnsSubdomain, 'expected a DNS subdomain name (lower case, digits, "-", ".")');
export const stringMap = z.record(z.string(), z.string());
const secretKey = z
  .string()
  .max(253)
  .regex(secretKeyPattern, 'expected a Secret key (letters, digits, "-", "_", ".")');
export const dataEntry = z.object({ objectName: z.string().min(1), key: secretKey });
export const duration = z.string().refine(
  (text) => {
    const ms = parseDuration(text);
    return ms !== undefined && ms >= minRefreshIntervalMs;
  },
  `expected a duration of at least ${minRefreshIntervalMs / 1000}s like "30s", "15m" or "1h"`,
);

export const metadataSchema = z.object({
  name: z.string().min(1),
  namespace: z.string().min(1),
  uid: z.string().default(''),
  generation: z.number().int().default(0),
  annotations: stringMap.optional(),
  deletionTimestamp: z.unknown().optional(),
  finalizers: z.array(z.string()).optional(),
});

const secretSyncSchema = z.object({
  metadata: metadataSchema,
  spec: z.object({
    serviceAccountName: name,
    assumeRole: roleChainSchema.optional(),
    region: z.string().optional(),
    failoverRegion: z.string().optional(),
    pathTranslation: z.string().optional(),
    objects: z.array(z.unknown()).min(1, 'expected at least one object'),
    target: z
      .object({
        name: name.optional(),
        type: z.string().min(1).default('Opaque'),
        labels: stringMap.default({}),
        annotations: stringMap.default({}),
        data: z.array(dataEntry).min(1).optional(),
        templates: z
          .record(z.string(), z.string())
          .refine(
            (templates) => Object.keys(templates).length <= maxTemplates,
            `expected at most ${maxTemplates} templates`,
          )
          .optional(),
        immutable: z.boolean().optional(),
      })
      .default({ type: 'Opaque', labels: {}, annotations: {} }),
    refreshInterval: duration.optional(),
    refreshPolicy: z.enum(['Periodic', 'OnChange', 'CreatedOnce']).default('Periodic'),
    creationPolicy: z.enum(['Owner', 'Orphan', 'Merge']).default('Owner'),
    deletionPolicy: z.enum(['Retain', 'Delete']).optional(),
  }),
});

export type SecretSyncObject = z.input<typeof secretSyncSchema>;

export function describeIssues(subject: string, error: z.ZodError): InvalidInputError {
  const issues = error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`));
    return `${path.join('').replace(/^\./, '') || 'object'}: ${issue.message}`;
  });
  const first = error.issues[0];
  return new InvalidInputError(`${subject}: ${issues.join('; ')}`, {
    subject,
    ...(first ? { field: first.path.join('.') } : {}),
  });
}

/**
 * A target may write only a Secret type smk writes and no reserved label or annotation: checked
 * here for both sources (a SecretProviderClass has no CEL of ours, and a CRD may be older than
 * the controller). The message names the Secret, the field and why; `field` is the target's path.
 */
export function checkTarget(label: string, namespace: string, target: SyncTarget, field: string): void {
  const refuse = (where: string, why: string): never => {
    throw new InvalidInputError(
      `${label}: ${where}: ${why}; not writing Secret ${namespace}/${target.name}`,
      {
        subject: label,
        field: where,
      },
    );
  };
  if (!writableSecretTypes.includes(target.type)) {
    refuse(
      `${field}.type`,
      `type ${JSON.stringify(target.type)} is not one smk writes (${writableSecretTypes.join(', ')})`,
    );
  }
  for (const section of ['labels', 'annotations'] as const) {
    for (const key of Object.keys(target[section])) {
      const reason = reservedKeyReason(key);
      if (reason) refuse(`${field}.${section}`, `key ${JSON.stringify(key)} is reserved (${reason})`);
    }
  }
}

/** A SecretSync as the API server stores it → a SyncJob. Throws InvalidInputError naming the field. */
export function secretSyncJob(
  object: unknown,
  kind: typeof secretSyncKind | typeof clusterSecretSyncKind = secretSyncKind,
): SyncJob {
  // A ClusterSecretSync expands into one SecretSync-shaped object per namespace (cluster-sync/).
  const label = labelOf(kind, object);
  const parsed = secretSyncSchema.safeParse(object);
  if (!parsed.success) throw describeIssues(label, parsed.error);
  const { metadata, spec } = parsed.data;
  const target: SyncTarget = {
    name: spec.target.name ?? metadata.name,
    type: spec.target.type,
    labels: spec.target.labels,
    annotations: spec.target.annotations,
    ...(spec.target.data ? { data: spec.target.data } : {}),
    ...(spec.target.immutable ? { immutable: true } : {}),
  };
  checkTarget(label, metadata.namespace, target, 'spec.target');
  // The CRD's CEL says the same; checked here too, as a CRD may be older than the controller.
  if (target.immutable && spec.creationPolicy === 'Merge') {
    throw new InvalidInputError(
      `${label}: spec.target.immutable: creationPolicy Merge adds keys to a Secret smk does not own, so it cannot make it immutable; expected Owner or Orphan`,
      { subject: label, field: 'spec.target.immutable' },
    );
  }
  if (spec.refreshInterval !== undefined && spec.refreshPolicy !== 'Periodic') {
    throw new InvalidInputError(
      `${label}: spec.refreshInterval is set but refreshPolicy is ${spec.refreshPolicy}; expected refreshInterval only with refreshPolicy Periodic`,
      { subject: label, field: 'spec.refreshInterval' },
    );
  }
  return {
    source: {
      kind,
      apiVersion: `${group}/${version}`,
      namespace: metadata.namespace,
      name: metadata.name,
      uid: metadata.uid,
      generation: metadata.generation,
    },
    serviceAccountName: spec.serviceAccountName,
    ...(spec.assumeRole
      ? { roleChain: { chain: normaliseRoleChain(spec.assumeRole), field: 'spec.assumeRole.roleArn' } }
      : {}),
    params: {
      objects: spec.objects,
      region: spec.region,
      failoverRegion: spec.failoverRegion,
      pathTranslation: spec.pathTranslation,
    },
    targets: [target],
    templates: spec.target.templates ?? {},
    refreshIntervalMs: spec.refreshInterval
      ? (parseDuration(spec.refreshInterval) ?? 0)
      : defaultRefreshIntervalMs,
    refreshPolicy: spec.refreshPolicy,
    creationPolicy: spec.creationPolicy,
    deletionPolicy: spec.deletionPolicy ?? defaultDeletionPolicy(spec.creationPolicy),
  };
}

/** An owned Secret goes with its owner (as an owner reference says); an orphan or merged one stays. */
export function defaultDeletionPolicy(creationPolicy: CreationPolicy): DeletionPolicy {
  return creationPolicy === 'Owner' ? 'Delete' : 'Retain';
}

/**
 * Whether deleting the source needs smk to act before it is gone (a finalizer): not when the
 * garbage collector's handling of the owner reference is exactly the policy (Owner + Delete) or
 * when nothing is to be done (Orphan/Merge + Retain).
 */
export function needsFinalizer(job: Pick<SyncJob, 'creationPolicy' | 'deletionPolicy'>): boolean {
  if (job.creationPolicy === 'Owner') return job.deletionPolicy === 'Retain';
  return job.deletionPolicy === 'Delete';
}

/** `SecretSync team-a/db` — how messages name a source object. */
export function labelOf(kind: string, object: unknown): string {
  const metadata = (object as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
  const namespace = typeof metadata?.namespace === 'string' ? metadata.namespace : '?';
  const objectName = typeof metadata?.name === 'string' ? metadata.name : '?';
  return `${kind} ${namespace}/${objectName}`;
}

export function sourceLabel(source: Pick<SyncSource, 'kind' | 'namespace' | 'name'>): string {
  return `${source.kind} ${source.namespace}/${source.name}`;
}

/** The value of the owner annotation smk puts on every Secret it writes for this source. */
export function ownerMarker(source: Pick<SyncSource, 'kind' | 'name'>): string {
  return `${source.kind}/${source.name}`;
}
