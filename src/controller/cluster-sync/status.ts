/**
 * What a ClusterSecretSync shows of its last run, as a pure function: one bounded entry per
 * namespace (Ready, reason, message, syncedVersions), counts, and one Ready condition that is True
 * only when every selected namespace is. Messages come from the sync pipeline: value-free.
 * Read back by rotation (namespaceStatuses): which namespaces it ran for, what each holds.
 */
import * as z from 'zod';
import type { Condition } from '../kinds.ts';
import type { SyncedVersion, SyncOutcome } from '../sync/sync.ts';
import { maxNamespaces } from './expand.ts';

export interface NamespaceStatus {
  namespace: string;
  ready: boolean;
  reason: string;
  message: string;
  syncedVersions?: SyncedVersion[];
}

export interface ClusterSyncStatus {
  observedGeneration: number;
  lastSyncTime?: string;
  /** Namespaces selected (and listed ones missing); of them, how many hold the current Secret. */
  namespaceCount: number;
  readyCount: number;
  failedCount: number;
  namespaces: NamespaceStatus[];
  conditions: Condition[];
}

export interface RunResult {
  readonly generation: number;
  readonly outcomes: ReadonlyMap<string, SyncOutcome>;
  readonly missing: readonly string[];
  readonly truncated: number;
  /** The spec could not be read: no namespace was touched. */
  readonly invalid?: { readonly reason: string; readonly message: string };
}

function entryOf(namespace: string, outcome: SyncOutcome): NamespaceStatus {
  if (outcome.ok) {
    const names = outcome.targets.map((target) => target.name).join(', ');
    return {
      namespace,
      ready: true,
      reason: 'Synced',
      message: `Secret ${names} holds ${outcome.keys} key${outcome.keys === 1 ? '' : 's'} from AWS (role ${outcome.roleArn})`,
      syncedVersions: [...outcome.versions],
    };
  }
  return { namespace, ready: false, reason: outcome.reason, message: outcome.message };
}

export function clusterSyncStatus(
  result: RunResult,
  previous: Condition | undefined,
  now: number,
): ClusterSyncStatus {
  const entries = [...result.outcomes].map(([namespace, outcome]) => entryOf(namespace, outcome));
  for (const namespace of result.missing) {
    entries.push({
      namespace,
      ready: false,
      reason: 'NamespaceNotFound',
      message: `namespace ${namespace} is listed in spec.namespaces but does not exist (or is being deleted)`,
    });
  }
  entries.sort((a, b) => a.namespace.localeCompare(b.namespace));
  const readyCount = entries.filter((entry) => entry.ready).length;
  const failed = entries.filter((entry) => !entry.ready);
  let condition: Omit<Condition, 'lastTransitionTime'>;
  if (result.invalid) {
    condition = { type: 'Ready', status: 'False', ...result.invalid };
  } else if (result.truncated > 0) {
    condition = {
      type: 'Ready',
      status: 'False',
      reason: 'TooManyNamespaces',
      message: `${result.truncated} selected namespace(s) beyond the first ${maxNamespaces} (by name) were not written; narrow the selector`,
    };
  } else if (failed.length > 0) {
    const first = failed[0];
    condition = {
      type: 'Ready',
      status: 'False',
      reason: first?.reason ?? 'Failed',
      message: `${failed.length} of ${entries.length} namespace(s) not synced; first: ${first?.namespace}: ${first?.message}`,
    };
  } else {
    condition = {
      type: 'Ready',
      status: 'True',
      reason: 'Synced',
      message: `synced into ${readyCount} namespace(s)`,
    };
  }
  const lastTransitionTime =
    previous && previous.status === condition.status && previous.lastTransitionTime
      ? previous.lastTransitionTime
      : new Date(now).toISOString();
  return {
    observedGeneration: result.generation,
    ...(readyCount > 0 ? { lastSyncTime: new Date(now).toISOString() } : {}),
    namespaceCount: entries.length,
    readyCount,
    failedCount: failed.length,
    namespaces: entries.slice(0, maxNamespaces),
    conditions: [{ ...condition, observedGeneration: result.generation, lastTransitionTime }],
  };
}

const statusEntries = z.object({
  status: z.object({
    namespaces: z.array(
      z.looseObject({
        namespace: z.string().min(1),
        syncedVersions: z.array(z.object({ objectName: z.string(), versionId: z.string() })).optional(),
      }),
    ),
  }),
});

/**
 * A ClusterSecretSync's status as written here, read back: each namespace it last ran for (in the
 * status's order) → its entry, and the versions its Secret holds (file → version; empty when that
 * namespace did not sync). Empty for an object without a status, or one this code did not write.
 */
export function namespaceStatuses(
  object: unknown,
): Map<string, { readonly entry: object; readonly versions: ReadonlyMap<string, string> }> {
  const parsed = statusEntries.safeParse(object);
  const byNamespace = new Map<string, { entry: object; versions: ReadonlyMap<string, string> }>();
  for (const entry of parsed.success ? parsed.data.status.namespaces : []) {
    const versions = new Map((entry.syncedVersions ?? []).map((item) => [item.objectName, item.versionId]));
    byNamespace.set(entry.namespace, { entry, versions });
  }
  return byNamespace;
}
