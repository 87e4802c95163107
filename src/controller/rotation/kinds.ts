/**
 * Rollout kinds: every kind of workload rotation can restart, one row each. Adding a kind is
 * adding a row here: `RolloutKind` grows, and the type checker then points at every table keyed by
 * it (this one; the chart's RBAC is compared with `verbs` by test/deploy). Nothing outside this
 * file spells a workload's group, version or resource.
 */

export type RolloutKind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob' | 'Rollout';

export interface RolloutKindRow {
  /** API group ('' would be the core group). */
  readonly group: string;
  readonly version: string;
  /** The resource (plural) in URLs and RBAC rules. */
  readonly resource: string;
  /** What rotation does with it: watch (informer), get (fresh read before planning), patch (restart). */
  readonly verbs: readonly ('get' | 'list' | 'watch' | 'patch')[];
  /** Where the pod template sits in the object: what it consumes and which labels it carries. */
  readonly podTemplate: readonly string[];
  /**
   * The merge patch (besides rotation's record in metadata) that makes this kind start pods with
   * the current values. `at` is the restart's time, as an ISO string goes into the object.
   */
  restart(at: Date): Record<string, unknown>;
  /**
   * Served only when this custom resource is installed: probed at start, watched only then.
   * Absent for built-in kinds.
   */
  readonly optional?: true;
}

/** On the pod template: when smk last restarted it (as `kubectl rollout restart` does with its own). */
export const restartedAtAnnotation = 'smk.dev/restartedAt';

/** A merge patch that sets the restart annotation at `path` (the pod template's place). */
function templateAnnotation(path: readonly string[], at: Date): Record<string, unknown> {
  let patch: Record<string, unknown> = {
    metadata: { annotations: { [restartedAtAnnotation]: at.toISOString() } },
  };
  for (const key of [...path].reverse()) patch = { [key]: patch };
  return patch;
}

const appsTemplate = ['spec', 'template'] as const;
/** A CronJob's pods come from the Job template: the next Job it starts carries the new value. */
const cronJobTemplate = ['spec', 'jobTemplate', 'spec', 'template'] as const;

export const rolloutKinds: { readonly [K in RolloutKind]: RolloutKindRow } = {
  Deployment: {
    group: 'apps',
    version: 'v1',
    resource: 'deployments',
    verbs: ['get', 'list', 'watch', 'patch'],
    podTemplate: appsTemplate,
    restart: (at) => templateAnnotation(appsTemplate, at),
  },
  StatefulSet: {
    group: 'apps',
    version: 'v1',
    resource: 'statefulsets',
    verbs: ['get', 'list', 'watch', 'patch'],
    podTemplate: appsTemplate,
    restart: (at) => templateAnnotation(appsTemplate, at),
  },
  DaemonSet: {
    group: 'apps',
    version: 'v1',
    resource: 'daemonsets',
    verbs: ['get', 'list', 'watch', 'patch'],
    podTemplate: appsTemplate,
    restart: (at) => templateAnnotation(appsTemplate, at),
  },
  // A running Job is left to finish (restarting it could repeat its work); the next one reads anew.
  CronJob: {
    group: 'batch',
    version: 'v1',
    resource: 'cronjobs',
    verbs: ['get', 'list', 'watch', 'patch'],
    podTemplate: cronJobTemplate,
    restart: (at) => templateAnnotation(cronJobTemplate, at),
  },
  // Argo Rollouts: restarted through its own API (`spec.restartAt`, what `kubectl argo rollouts
  // restart` sets), so the Rollout's strategy replaces its pods; a template edit would start a
  // new revision (canary analysis, a new ReplicaSet) for what is not a new release.
  Rollout: {
    group: 'argoproj.io',
    version: 'v1alpha1',
    resource: 'rollouts',
    verbs: ['get', 'list', 'watch', 'patch'],
    podTemplate: appsTemplate,
    restart: (at) => ({ spec: { restartAt: at.toISOString() } }),
    optional: true,
  },
};

export const rolloutKindNames = Object.keys(rolloutKinds) as RolloutKind[];

export function isRolloutKind(kind: string): kind is RolloutKind {
  return Object.hasOwn(rolloutKinds, kind);
}

/** `apps/v1`, or `v1` for the core group. */
export function apiVersionOf(kind: RolloutKind): string {
  const row = rolloutKinds[kind];
  return row.group === '' ? row.version : `${row.group}/${row.version}`;
}

/** The value at `path` in an object from the API (undefined where any step is missing). */
export function valueAt(object: unknown, path: readonly string[]): unknown {
  let value: unknown = object;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
