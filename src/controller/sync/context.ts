/**
 * What the sync controller's pieces share: its queue (keys `Kind/namespace/name`), caches, the
 * Secret writes and releases, and the clock. Built once by ./controller.ts.
 */
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../../core/log.ts';
import type { Objects } from '../../kube/apply.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { SharedInformer } from '../../kube/manager.ts';
import type { WorkQueue } from '../../kube/queue.ts';
import { type SourceKind, type SyncJob, secretSyncKind, spcKind } from '../jobs.ts';
import type { OwnedSecrets } from './owned-secrets.ts';
import type { Release } from './release.ts';
import type { SyncDeps } from './sync.ts';

export interface SyncContext {
  readonly logger: Logger;
  readonly queue: WorkQueue;
  readonly objects: Objects;
  readonly events: EventRecorder;
  readonly owned: OwnedSecrets;
  readonly release: Release;
  readonly deps: SyncDeps;
  readonly managedSecrets: SharedInformer<V1Secret>;
  /** The last job of a source that was deleted, so its Secrets can be released. */
  readonly tombstones: Map<string, SyncJob | undefined>;
  readonly inScope: (namespace: string | undefined) => boolean;
  readonly now: () => number;
  readonly random: () => number;
  /** Fraction of the refresh interval added or taken at random. */
  readonly jitter: number;
}

export function keyOf(kind: SourceKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export function parseKey(key: string): { kind: SourceKind; namespace: string; name: string } | undefined {
  const [kind, namespace, name] = key.split('/');
  if ((kind !== secretSyncKind && kind !== spcKind) || !namespace || !name) return undefined;
  return { kind, namespace, name };
}
