/**
 * A ClusterSecretSync (smk.dev/v1alpha1, cluster-scoped) as plain values: which namespaces it
 * writes into (a label selector and/or an explicit list) and, for each, the SyncJob the one sync
 * pipeline runs (../sync/sync.ts). Identity, mode (a): each namespace's own ServiceAccount
 * (`spec.serviceAccountRef.name`) reads, so a namespace gets only what its own role may read.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import * as z from 'zod';
import { InvalidInputError } from '../../core/errors.ts';
import {
  type CreationPolicy,
  clusterSecretSyncKind,
  type DeletionPolicy,
  type SyncJob,
  secretSyncJob,
} from '../jobs.ts';

/** As the CRD's maxItems: status lists one entry per namespace, and an object has a size limit. */
export const maxNamespaces = 500;

const requirement = z.object({
  key: z.string().min(1),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()).optional(),
});
const selectorSchema = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z.array(requirement).optional(),
});
export type LabelSelector = z.infer<typeof selectorSchema>;

const clusterSecretSyncSchema = z.object({
  metadata: z.object({
    name: z.string().min(1),
    uid: z.string().default(''),
    generation: z.number().int().default(0),
  }),
  spec: z
    .object({
      namespaceSelector: selectorSchema.optional(),
      namespaces: z.array(z.string().min(1)).max(maxNamespaces).optional(),
      serviceAccountRef: z.object({ name: z.string().min(1), namespace: z.string().min(1).optional() }),
    })
    .passthrough(),
});

export interface ClusterSecretSyncObject extends KubernetesObject {
  metadata: NonNullable<KubernetesObject['metadata']> & { name: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** True when `labels` satisfy `selector` (Kubernetes' semantics; an empty selector matches all). */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    if (operator === 'Exists' && !has) return false;
    if (operator === 'DoesNotExist' && has) return false;
    if (operator === 'In' && !(has && value !== undefined && values.includes(value))) return false;
    if (operator === 'NotIn' && has && value !== undefined && values.includes(value)) return false;
  }
  return true;
}

export interface NamespaceView {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Being deleted: nothing is written into it (the API server would refuse anyway). */
  readonly terminating: boolean;
}

export interface Expansion {
  /** One job per selected namespace, sorted by namespace. */
  readonly jobs: readonly SyncJob[];
  /**
   * Mode (b): the namespace of the ServiceAccount every job reads as (the jobs name the account);
   * undefined in mode (a), where each job reads as its own namespace's account.
   */
  readonly identityNamespace: string | undefined;
  /** Listed in `spec.namespaces` but absent (or terminating): reported, not written. */
  readonly missing: readonly string[];
  /** More namespaces matched than `maxNamespaces`: the rest are left out and the status says so. */
  readonly truncated: number;
}

function invalid(label: string, field: string, why: string): InvalidInputError {
  return new InvalidInputError(`${label}: ${field}: ${why}`, { subject: label, field });
}

/** A ClusterSecretSync read and checked once: what every namespace's job is built from. */
interface CheckedClusterSync {
  readonly parsed: z.infer<typeof clusterSecretSyncSchema>;
  readonly identityNamespace: string | undefined;
}

/** Parses and checks the fields a ClusterSecretSync adds to a SecretSync's. Throws InvalidInputError naming the field. */
function checkClusterSecretSync(object: unknown): CheckedClusterSync {
  const rawName = (object as { metadata?: { name?: unknown } } | null)?.metadata?.name;
  const label = `${clusterSecretSyncKind} ${typeof rawName === 'string' ? rawName : '?'}`;
  const parsed = clusterSecretSyncSchema.safeParse(object);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') ?? 'spec';
    throw invalid(label, field, issue?.message ?? 'invalid');
  }
  const { spec } = parsed.data;
  if (!spec.namespaceSelector && !spec.namespaces) {
    throw invalid(label, 'spec', 'expected namespaceSelector or namespaces (or both)');
  }
  const identityNamespace = spec.serviceAccountRef.namespace;
  if (identityNamespace !== undefined && (spec.namespaceSelector || !spec.namespaces)) {
    throw invalid(
      label,
      spec.namespaceSelector ? 'spec.namespaceSelector' : 'spec.namespaces',
      'with serviceAccountRef.namespace (one identity for every namespace) the target namespaces must be listed in spec.namespaces, not selected by label: whoever may label a namespace would otherwise receive values its own roles cannot read',
    );
  }
  for (const field of ['serviceAccountName', 'creationPolicy'] as const) {
    if (field in spec) {
      throw invalid(
        label,
        `spec.${field}`,
        field === 'serviceAccountName'
          ? 'not a ClusterSecretSync field; expected serviceAccountRef.name (the ServiceAccount in each target namespace)'
          : 'not a ClusterSecretSync field; deletionPolicy decides it (Delete: the Secrets carry an owner reference; Retain: none)',
      );
    }
  }
  return { parsed: parsed.data, identityNamespace };
}

/** The SecretSync-shaped job a checked ClusterSecretSync runs in `namespace`. */
function jobIn({ parsed }: CheckedClusterSync, namespace: string): SyncJob {
  const { metadata, spec } = parsed;
  const { namespaceSelector: _selector, namespaces: _listed, serviceAccountRef, ...syncSpec } = spec;
  const deletionPolicy = deletionPolicyOf(parsed);
  return secretSyncJob(
    {
      metadata: { name: metadata.name, namespace, uid: metadata.uid, generation: metadata.generation },
      spec: {
        ...syncSpec,
        serviceAccountName: serviceAccountRef.name,
        // An unknown value stays as written, for the job's schema to refuse naming the field.
        deletionPolicy: syncSpec.deletionPolicy ?? deletionPolicy,
        creationPolicy: creationPolicyFor(deletionPolicy),
      },
    },
    clusterSecretSyncKind,
  );
}

/**
 * The job a ClusterSecretSync runs in one namespace, whether or not it selects it now (rotation
 * reads what a namespace's Secret came from), and, as in an Expansion, the namespace of the one
 * ServiceAccount that reads for every namespace in mode (b) (undefined in mode (a): each its own).
 * Throws InvalidInputError naming the field.
 */
export function clusterSecretSyncJob(
  object: unknown,
  namespace: string,
): { readonly job: SyncJob; readonly identityNamespace: string | undefined } {
  const checked = checkClusterSecretSync(object);
  return { job: jobIn(checked, namespace), identityNamespace: checked.identityNamespace };
}

/**
 * The namespaces a ClusterSecretSync selects among `namespaces`, each with its SyncJob. A namespace
 * is selected when the selector matches its labels, or `spec.namespaces` names it; with neither
 * field set nothing is selected (a cluster-wide write must be asked for, never a default).
 * Throws InvalidInputError naming the field.
 */
export function expandClusterSecretSync(object: unknown, namespaces: readonly NamespaceView[]): Expansion {
  const checked = checkClusterSecretSync(object);
  const { namespaceSelector, namespaces: listed } = checked.parsed.spec;
  const wanted = new Set(listed ?? []);
  const live = namespaces.filter((ns) => !ns.terminating);
  const selected = live
    .filter(
      (ns) => wanted.has(ns.name) || (namespaceSelector && selectorMatches(namespaceSelector, ns.labels)),
    )
    .map((ns) => ns.name)
    .sort();
  const present = new Set(live.map((ns) => ns.name));
  const missing = [...wanted].filter((name) => !present.has(name)).sort();
  const kept = selected.slice(0, maxNamespaces);
  const jobs = kept.map((namespace) => jobIn(checked, namespace));
  return {
    jobs,
    identityNamespace: checked.identityNamespace,
    missing,
    truncated: selected.length - kept.length,
  };
}

/** A ClusterSecretSync's deletionPolicy (Delete unless it says Retain), even when its spec is invalid. */
export function deletionPolicyOf(object: { spec?: unknown }): DeletionPolicy {
  const spec = object.spec as { deletionPolicy?: unknown } | undefined;
  return spec?.deletionPolicy === 'Retain' ? 'Retain' : 'Delete';
}

/**
 * How a ClusterSecretSync writes its Secrets, from its deletionPolicy. Delete: with an owner
 * reference, so the garbage collector removes them even while the controller is down. Retain:
 * with none (Orphan), so no deletion of the ClusterSecretSync (background, foreground, controller
 * down or uninstalled) can take them; the owner marker still says whose they are. No finalizer, so
 * a ClusterSecretSync can always be deleted. A switch Delete → Retain drops the references at the
 * next run (a deletion before the controller has seen the switch still cascades).
 */
export function creationPolicyFor(deletionPolicy: DeletionPolicy): CreationPolicy {
  return deletionPolicy === 'Retain' ? 'Orphan' : 'Owner';
}

/**
 * Whether `object` selects `namespace` (a Namespace event re-runs only the ClusterSecretSyncs whose
 * selection it changes). An unreadable spec selects nothing.
 */
export function selectsNamespace(object: unknown, namespace: NamespaceView): boolean {
  const parsed = clusterSecretSyncSchema.safeParse(object);
  if (!parsed.success || namespace.terminating) return false;
  const { namespaceSelector, namespaces } = parsed.data.spec;
  if (namespaces?.includes(namespace.name)) return true;
  return namespaceSelector !== undefined && selectorMatches(namespaceSelector, namespace.labels);
}
