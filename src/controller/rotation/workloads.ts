/**
 * Workloads (every row of kinds.ts) as rotation sees them, and the rollout decision as a pure
 * function.
 *
 * A workload opts in by annotation:
 *   smk.dev/rollout-on: "db-creds, arn:aws:secretsmanager:…:secret:api-key-AbCdEf"  (secret ids)
 *   smk.dev/rollout-on-sync: "true"   (any smk-synced Secret it consumes through env, envFrom,
 *                                      volumes or projected volumes)
 * or is matched by a SecretsRotationMapping in its namespace.
 *
 * What it was last rolled for is kept in its own metadata (`smk.dev/rolled-versions`, secret →
 * version). A rollout is ONE merge patch, conditional on the resourceVersion read, that restarts
 * the workload the way its kind restarts (kinds.ts: the pod-template annotation `smk.dev/restartedAt`
 * for Deployments) and sets the record together: a second leader, a duplicate event or a late poll then finds the
 * record already at the new version and does nothing.
 */
import * as z from 'zod';
import { InvalidInputError } from '../../core/errors.ts';
import { currentStage } from '../../core/source.ts';
import { type RolloutKind, restartedAtAnnotation, rolloutKinds, valueAt } from './kinds.ts';
import { parseReferences, type Reference } from './references.ts';

export type WorkloadKind = RolloutKind;

export const rotationAnnotations = {
  rolloutOn: 'smk.dev/rollout-on',
  rolloutOnSync: 'smk.dev/rollout-on-sync',
  /** On the workload: secret (ARN, plus `@LABEL` when not AWSCURRENT) → version it was rolled for. */
  rolledVersions: 'smk.dev/rolled-versions',
  /** On the pod template: when smk last restarted it. */
  restartedAt: restartedAtAnnotation,
} as const;

export interface Workload {
  readonly kind: WorkloadKind;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly templateLabels: Readonly<Record<string, string>>;
  /** Secret ids from `smk.dev/rollout-on`. */
  readonly rolloutOn: readonly string[];
  readonly rolloutOnSync: boolean;
  /** Secrets and ConfigMaps in its namespace it names for restarts (references.ts). */
  readonly references: readonly Reference[];
  /** Kubernetes Secrets the pod template reads (env, envFrom, volumes, projected volumes). */
  readonly consumedSecrets: readonly string[];
  /** The ServiceAccount its pods run as: whose role must be able to describe a secret it follows. */
  readonly serviceAccountName: string;
  readonly record: ReadonlyMap<string, string>;
}

const stringMap = z.record(z.string(), z.string()).nullish();
const envSource = z
  .object({
    valueFrom: z
      .object({ secretKeyRef: z.object({ name: z.string().nullish() }).loose().nullish() })
      .loose()
      .nullish(),
  })
  .loose();
const container = z
  .object({
    env: z.array(envSource).nullish(),
    envFrom: z
      .array(z.object({ secretRef: z.object({ name: z.string().nullish() }).loose().nullish() }).loose())
      .nullish(),
  })
  .loose();
const volume = z
  .object({
    secret: z.object({ secretName: z.string().nullish() }).loose().nullish(),
    projected: z
      .object({
        sources: z
          .array(z.object({ secret: z.object({ name: z.string().nullish() }).loose().nullish() }).loose())
          .nullish(),
      })
      .loose()
      .nullish(),
  })
  .loose();
const metadataSchema = z.object({
  metadata: z.object({
    name: z.string(),
    namespace: z.string(),
    uid: z.string().nullish(),
    resourceVersion: z.string().nullish(),
    labels: stringMap,
    annotations: stringMap,
  }),
});
/** A pod template, wherever its kind keeps it (kinds.ts `podTemplate`). */
const templateSchema = z
  .object({
    metadata: z.object({ labels: stringMap }).loose().nullish(),
    spec: z
      .object({
        serviceAccountName: z.string().nullish(),
        serviceAccount: z.string().nullish(),
        containers: z.array(container).nullish(),
        initContainers: z.array(container).nullish(),
        volumes: z.array(volume).nullish(),
      })
      .loose()
      .nullish(),
  })
  .loose()
  .nullish();

const recordSchema = z.record(z.string(), z.string());

/** The record key of a followed secret: its ARN, with `@LABEL` when the label is not AWSCURRENT. */
export function recordKey(arn: string, stage: string): string {
  return stage === currentStage ? arn : `${arn}@${stage}`;
}

function parseRecord(text: string | undefined): Map<string, string> {
  if (!text) return new Map();
  try {
    const parsed = recordSchema.safeParse(JSON.parse(text));
    return parsed.success ? new Map(Object.entries(parsed.data)) : new Map();
  } catch {
    return new Map();
  }
}

/** `a, b c` → [a, b, c]; ids contain neither commas nor spaces. */
function parseIds(text: string | undefined): string[] {
  return (text ?? '')
    .split(/[\s,]+/)
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

export interface WorkloadParseOptions {
  /** Honour Stakater Reloader's `secret/configmap.reloader.stakater.com/reload` too (references.ts). */
  readonly reloaderAnnotations?: boolean;
}

/** A workload from the API → what rotation needs. Throws InvalidInputError for a bad opt-in annotation. */
export function parseWorkload(
  kind: WorkloadKind,
  object: unknown,
  options: WorkloadParseOptions = {},
): Workload {
  const parsed = metadataSchema.safeParse(object);
  if (!parsed.success) {
    throw new InvalidInputError(`${kind}: not a workload object`, { subject: kind, field: 'metadata' });
  }
  const { metadata } = parsed.data;
  const templatePath = rolloutKinds[kind].podTemplate;
  const template = templateSchema.safeParse(valueAt(object, templatePath));
  if (!template.success) {
    throw new InvalidInputError(
      `${kind} ${metadata.namespace}/${metadata.name}: ${templatePath.join('.')}: not a pod template`,
      {
        subject: `${kind} ${metadata.namespace}/${metadata.name}`,
        field: templatePath.join('.'),
      },
    );
  }
  const annotations = metadata.annotations ?? {};
  const label = `${kind} ${metadata.namespace}/${metadata.name}`;
  const syncFlag = annotations[rotationAnnotations.rolloutOnSync]?.trim().toLowerCase();
  if (syncFlag !== undefined && syncFlag !== 'true' && syncFlag !== 'false') {
    throw new InvalidInputError(
      `${label}: annotation ${rotationAnnotations.rolloutOnSync} is "${syncFlag.slice(0, 20)}"; expected "true" or "false"`,
      { subject: label, field: `metadata.annotations.${rotationAnnotations.rolloutOnSync}` },
    );
  }
  const podSpec = template.data?.spec;
  const consumed = new Set<string>();
  for (const c of [...(podSpec?.containers ?? []), ...(podSpec?.initContainers ?? [])]) {
    for (const env of c.env ?? []) {
      const name = env.valueFrom?.secretKeyRef?.name;
      if (name) consumed.add(name);
    }
    for (const from of c.envFrom ?? []) if (from.secretRef?.name) consumed.add(from.secretRef.name);
  }
  for (const v of podSpec?.volumes ?? []) {
    if (v.secret?.secretName) consumed.add(v.secret.secretName);
    for (const source of v.projected?.sources ?? [])
      if (source.secret?.name) consumed.add(source.secret.name);
  }
  return {
    kind,
    namespace: metadata.namespace,
    name: metadata.name,
    uid: metadata.uid ?? '',
    resourceVersion: metadata.resourceVersion ?? '',
    labels: metadata.labels ?? {},
    templateLabels: template.data?.metadata?.labels ?? {},
    rolloutOn: parseIds(annotations[rotationAnnotations.rolloutOn]),
    rolloutOnSync: syncFlag === 'true',
    references: parseReferences(label, annotations, options),
    consumedSecrets: [...consumed].sort(),
    // As the API server defaults it: the deprecated serviceAccount alias, else `default`.
    serviceAccountName: podSpec?.serviceAccountName || podSpec?.serviceAccount || 'default',
    record: parseRecord(annotations[rotationAnnotations.rolledVersions]),
  };
}

/** One secret a workload follows, where it points now, and why the workload follows it. */
export interface Dependency {
  readonly key: string;
  readonly name: string;
  /** Version at the followed stage now; undefined while unknown, deleted or unlabelled (never rolls). */
  readonly versionId: string | undefined;
  /** `SecretsRotationMapping ns/name`, `annotation`, `Secret db-env`. */
  readonly via: readonly string[];
}

export type RolloutPlan =
  | { readonly action: 'none' }
  /** First sight: remember the versions the workload runs with, without a restart. */
  | { readonly action: 'adopt'; readonly patch: Record<string, unknown> }
  | {
      readonly action: 'roll';
      readonly patch: Record<string, unknown>;
      readonly changed: readonly Dependency[];
    };

/**
 * Roll when a followed secret's version differs from the version the workload was last rolled
 * for (or adopted with). Secrets never recorded are adopted silently; nothing is ever rolled for
 * a deleted or unknown version.
 */
export function planRollout(workload: Workload, dependencies: readonly Dependency[], at: Date): RolloutPlan {
  const changed: Dependency[] = [];
  const next = new Map(workload.record);
  let adopted = false;
  for (const dependency of dependencies) {
    if (dependency.versionId === undefined) continue;
    const recorded = workload.record.get(dependency.key);
    if (recorded === dependency.versionId) continue;
    next.set(dependency.key, dependency.versionId);
    if (recorded === undefined) adopted = true;
    else changed.push(dependency);
  }
  if (changed.length === 0 && !adopted) return { action: 'none' };
  const record = JSON.stringify(Object.fromEntries([...next].sort(([a], [b]) => a.localeCompare(b))));
  const metadata = {
    resourceVersion: workload.resourceVersion,
    annotations: { [rotationAnnotations.rolledVersions]: record },
  };
  if (changed.length === 0) return { action: 'adopt', patch: { metadata } };
  return {
    action: 'roll',
    changed,
    patch: { ...rolloutKinds[workload.kind].restart(at), metadata },
  };
}

/** A workload's work-queue key: `Kind/namespace/name`. */
export function workloadKey(kind: WorkloadKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}
