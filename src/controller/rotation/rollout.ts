/**
 * The rollout: plans one workload from a fresh read (workloads.ts `planRollout`) and acts —
 * adopts (records versions, no restart), waits for its synced Secrets (the sync gate), or restarts
 * it the way its kind restarts (kinds.ts), with events on the workload and its mappings.
 * Keys on the queue are `Kind/namespace/name`; a change enqueues each workload that follows the
 * secret after the debounce, so changes inside the window make one rollout.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { describeError, InvalidInputError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { counter, histogram } from '../../core/metrics.ts';
import type { Objects } from '../../kube/apply.ts';
import type { EventRecorder, InvolvedObject } from '../../kube/events.ts';
import type { WorkQueue } from '../../kube/queue.ts';
import type { ChangeSink, SecretChange } from './detector.ts';
import { apiVersionOf, isRolloutKind, type RolloutKind } from './kinds.ts';
import {
  mappingGroup,
  mappingKind,
  mappingMatches,
  mappingVersion,
  type RotationMapping,
} from './mapping.ts';
import type { MappingStatuses } from './mapping-status.ts';
import type { ReferenceKind } from './references.ts';
import type { SyncGate } from './sync-gate.ts';
import type { UsageIndex } from './usage-index.ts';
import {
  parseWorkload,
  planRollout,
  type Workload,
  type WorkloadParseOptions,
  workloadKey,
} from './workloads.ts';

export const rollouts = counter(
  'smk_rotation_rollouts_total',
  'Workload rollouts for a secret change, by workload kind and outcome (restarted, adopted, waiting, failed).',
  ['kind', 'outcome'],
);
const rolloutLag = histogram(
  'smk_rotation_rollout_lag_seconds',
  'Time from detecting a change to starting the rollout it causes.',
  [],
  [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
);

export interface RolloutOptions {
  readonly index: UsageIndex;
  readonly gate: Pick<SyncGate, 'unsyncedSources' | 'askResync'>;
  readonly statuses: Pick<MappingStatuses, 'write' | 'showIfHidden'>;
  readonly objects: Pick<Objects, 'read' | 'mergePatch'>;
  readonly events: EventRecorder;
  readonly queue: Pick<WorkQueue, 'add' | 'addAfter'>;
  readonly logger: Logger;
  readonly leading: () => boolean;
  readonly now: () => number;
  /** Changes within this window after the first make one rollout per workload. */
  readonly debounceMs: number;
  /** How long a rollout waits for its synced Secrets before warning; it never rolls onto the old value. */
  readonly syncWaitMs: number;
  readonly parseOptions?: WorkloadParseOptions;
}

export interface Rollouts {
  /** Plans and acts on one queued workload (`Kind/namespace/name`). */
  reconcile(key: string): Promise<void>;
  /** Queues a workload whose object was seen, if it follows anything (only those are ever read or patched). */
  seen(kind: RolloutKind, object: KubernetesObject): void;
  /** Queues the workloads a mapping selects. */
  mappingChanged(mapping: RotationMapping): void;
  /** A namespace's permissions changed: its workloads are planned again. */
  namespaceChanged(namespace: string): void;
  /**
   * A synced Secret or its source moved: the workloads it concerns are looked at again — one
   * waiting for its synced Secrets (the sync may have landed), and one with secrets it has not
   * recorded yet, which is adopted now (else a workload reconciled before its Secret existed
   * stayed unadopted, and the next change was adopted rather than rolled). Rollouts themselves
   * stay driven by the change (rolloutSink, with its debounce).
   */
  wakeDependents(namespace: string | undefined, secretNames: readonly string[]): void;
  /**
   * A Secret or ConfigMap workloads may name changed ('changed': its readers roll after the
   * debounce) or appeared ('new': they are adopted now, so its first change is rolled, not adopted).
   */
  referenceChanged(kind: ReferenceKind, namespace: string, name: string, how: 'new' | 'changed'): void;
  /** Taking the lead: every workload naming Secrets or ConfigMaps is planned (one may have changed meanwhile). */
  leadershipTaken(): void;
  /** On a change: each workload following the secret is queued after the debounce. */
  readonly rolloutSink: ChangeSink;
}

export function createRollouts(options: RolloutOptions): Rollouts {
  const { index, gate, statuses, objects, events, queue, logger, now } = options;
  /** Workload key → when it first had to wait for a sync. */
  const waitingSince = new Map<string, number>();
  /** The last change per secret ARN (rollout lag). */
  const lastChange = new Map<string, SecretChange>();

  const enqueue = (workload: Workload, delayMs = 0): void =>
    delayMs > 0
      ? queue.addAfter(workloadKey(workload.kind, workload.namespace, workload.name), delayMs)
      : queue.add(workloadKey(workload.kind, workload.namespace, workload.name));

  function followsAnything(kind: RolloutKind, object: KubernetesObject): boolean {
    let workload: Workload;
    try {
      workload = parseWorkload(kind, object, options.parseOptions);
    } catch {
      return true; // reconcile reports the bad annotation
    }
    if (workload.rolloutOn.length > 0 || workload.rolloutOnSync || workload.references.length > 0)
      return true;
    if (workload.record.size > 0) return true;
    return index
      .mappings()
      .some(({ mapping }) => !(mapping instanceof InvalidInputError) && mappingMatches(mapping, workload));
  }

  async function restarted(
    workload: Workload,
    involved: InvolvedObject,
    changed: readonly { name: string; versionId: string | undefined; via: readonly string[]; key: string }[],
    matched: readonly RotationMapping[],
  ): Promise<void> {
    const { kind, name } = workload;
    rollouts.inc({ kind, outcome: 'restarted' });
    for (const dependency of changed) {
      const change = lastChange.get(dependency.key.split('@')[0] ?? '');
      if (change) rolloutLag.observe(Math.max(0, now() - change.detectedAt) / 1000);
    }
    const what = changed.map((d) => `${d.name} (version ${d.versionId}, via ${d.via.join(', ')})`).join('; ');
    logger.info(
      { workload: workloadKey(kind, workload.namespace, name), secrets: changed.map((d) => d.name) },
      'rollout restarted',
    );
    void events.record(involved, 'Normal', 'RolloutRestarted', `Restarted for a new secret version: ${what}`);
    for (const mapping of matched) {
      const dependency = changed.find((d) =>
        d.via.includes(`${mappingKind} ${mapping.namespace}/${mapping.name}`),
      );
      if (!dependency?.versionId) continue;
      void events.record(
        {
          apiVersion: `${mappingGroup}/${mappingVersion}`,
          kind: mappingKind,
          namespace: mapping.namespace,
          name: mapping.name,
          ...(mapping.uid ? { uid: mapping.uid } : {}),
        },
        'Normal',
        'WorkloadRestarted',
        `Restarted ${kind} ${name} for ${dependency.name} version ${dependency.versionId}`,
      );
      await statuses.write(mapping, { rolled: { kind, name, versionId: dependency.versionId } });
    }
  }

  async function reconcile(key: string): Promise<void> {
    const [kind, namespace, name] = key.split('/') as [string, string, string];
    if (!isRolloutKind(kind)) return;
    const ref = { apiVersion: apiVersionOf(kind), kind, namespace, name };
    const fresh = await objects.read<KubernetesObject>(ref);
    if (!fresh) {
      waitingSince.delete(key);
      return;
    }
    let workload: Workload;
    try {
      workload = parseWorkload(kind, fresh, options.parseOptions);
    } catch (error) {
      void events.record(ref, 'Warning', 'InvalidRolloutAnnotation', describeError(error));
      return;
    }
    await index.settlePermissions(workload);
    const { dependencies, mappings: matched } = index.dependenciesOf(workload);
    statuses.showIfHidden(matched);
    const plan = planRollout(workload, dependencies, new Date(now()));
    if (plan.action === 'none') {
      waitingSince.delete(key);
      return;
    }
    const involved: InvolvedObject = { ...ref, ...(workload.uid ? { uid: workload.uid } : {}) };
    if (plan.action === 'adopt') {
      await objects.mergePatch(ref, plan.patch);
      rollouts.inc({ kind, outcome: 'adopted' });
      logger.info({ workload: key }, 'workload adopted: versions recorded without a restart');
      return;
    }
    // Never start pods on the old value: every synced Secret it consumes must hold the new version.
    const pending = plan.changed.flatMap((dependency) =>
      gate.unsyncedSources(workload, dependency).map((owner) => ({ owner, dependency })),
    );
    if (pending.length > 0) {
      const since = waitingSince.get(key) ?? now();
      waitingSince.set(key, since);
      for (const { owner, dependency } of pending) {
        await gate.askResync(owner.source, dependency.versionId ?? '');
      }
      const waited = now() - since;
      const names = [...new Set(pending.map(({ owner }) => `${owner.source.kind} ${owner.source.name}`))];
      if (waited >= options.syncWaitMs) {
        rollouts.inc({ kind, outcome: 'waiting' });
        void events.record(
          involved,
          'Warning',
          'WaitingForSync',
          `Rollout held: ${names.join(', ')} has not synced the new version yet (waited ${Math.round(waited / 1000)}s)`,
        );
        queue.addAfter(key, 30_000);
      } else {
        queue.addAfter(key, Math.min(2_000, 100 + waited / 4));
      }
      return;
    }
    waitingSince.delete(key);
    await objects.mergePatch(ref, plan.patch);
    await restarted(workload, involved, plan.changed, matched);
  }

  return {
    reconcile,
    seen(kind, object) {
      const { namespace, name } = object.metadata ?? {};
      if (namespace && name && followsAnything(kind, object)) queue.add(workloadKey(kind, namespace, name));
    },
    mappingChanged(mapping) {
      for (const workload of index.workloads()) if (mappingMatches(mapping, workload)) enqueue(workload);
    },
    namespaceChanged(namespace) {
      if (!options.leading()) return;
      for (const workload of index.workloads()) if (workload.namespace === namespace) enqueue(workload);
    },
    wakeDependents(namespace, secretNames) {
      if (!options.leading() || !namespace) return;
      for (const key of waitingSince.keys()) if (key.split('/')[1] === namespace) queue.add(key);
      for (const workload of index.workloads()) {
        if (workload.namespace !== namespace || !workload.rolloutOnSync) continue;
        if (!workload.consumedSecrets.some((name) => secretNames.includes(name))) continue;
        const { dependencies } = index.dependenciesOf(workload);
        if (planRollout(workload, dependencies, new Date(now())).action === 'adopt') enqueue(workload);
      }
    },
    referenceChanged(kind, namespace, name, how) {
      if (!options.leading()) return;
      for (const workload of index.workloads()) {
        if (workload.namespace !== namespace) continue;
        if (!workload.references.some((reference) => reference.kind === kind && reference.name === name))
          continue;
        enqueue(workload, how === 'changed' ? options.debounceMs : 0);
      }
    },
    leadershipTaken() {
      for (const workload of index.workloads()) if (workload.references.length > 0) enqueue(workload);
    },
    rolloutSink: {
      secretChanged(change) {
        if (change.previous) lastChange.set(change.secret.arn, change);
        const delay = change.previous ? options.debounceMs : 0;
        for (const workload of index.workloads()) {
          const { dependencies } = index.dependenciesOf(workload);
          if (dependencies.some((dependency) => dependency.key.split('@')[0] === change.secret.arn)) {
            enqueue(workload, delay);
          }
        }
      },
    },
  };
}
