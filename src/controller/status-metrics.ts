/**
 * Each object's Ready condition as a gauge people alert on (External Secrets Operator's
 * `externalsecret_status_condition`), and a sync's outcome as a counter and a log line. Labels are
 * bounded — kind, namespace, name, condition, status; a failure's reason from a closed set — and
 * never carry a value or a message: the message is in the object's status, Events and the log.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../core/log.ts';
import { counter, gauge } from '../core/metrics.ts';
import type { InformerHandlers } from '../kube/informer.ts';
import type { SyncOutcome } from './sync/sync.ts';

export type StatusKind =
  | 'SecretSync'
  | 'SecretProviderClass'
  | 'SecretsRotationMapping'
  | 'ClusterSecretSync';

export interface StatusObject {
  readonly kind: StatusKind;
  readonly namespace: string;
  readonly name: string;
}

const statusCondition = gauge(
  'smk_status_condition',
  'Ready condition of each SecretSync, synced SecretProviderClass and SecretsRotationMapping: 1 on the series of its current status.',
  ['kind', 'namespace', 'name', 'condition', 'status'],
);

const syncs = counter('smk_sync_reconciles_total', 'Syncs run, by source kind, outcome and failure reason.', [
  'kind',
  'outcome',
  'reason',
]);

/** Both series exist while the object does, as ESO's do, so `status="False"` can be alerted on as `== 1`. */
const statuses = ['True', 'False'] as const;

function seriesOf(object: StatusObject, status: (typeof statuses)[number]) {
  return { kind: object.kind, namespace: object.namespace, name: object.name, condition: 'Ready', status };
}

export function reportReady(object: StatusObject, ready: boolean): void {
  for (const status of statuses)
    statusCondition.set(seriesOf(object, status), (status === 'True') === ready ? 1 : 0);
}

/** The object is gone (or no longer synced): its series go, so deleted objects do not pile up. */
export function forgetStatus(object: StatusObject): void {
  for (const status of statuses) statusCondition.remove(seriesOf(object, status));
}

type SyncKind = Extract<StatusKind, 'SecretSync' | 'SecretProviderClass' | 'ClusterSecretSync'>;

/**
 * One sync's outcome: the Ready gauge, `smk_sync_reconciles_total`, and for a failure a warning
 * naming the object, the field when known, and the reason; the message is value-free by
 * construction (it is also the status condition's and the Event's).
 */
export function recordSync(
  object: StatusObject & { readonly kind: SyncKind },
  outcome: SyncOutcome,
  logger: Logger,
): void {
  reportReady(object, outcome.ok);
  if (!outcome.ok) {
    syncs.inc({ kind: object.kind, outcome: 'failed', reason: outcome.reason });
    logger.warn(
      {
        kind: object.kind,
        namespace: object.namespace,
        name: object.name,
        reason: outcome.reason,
        ...(outcome.field ? { field: outcome.field } : {}),
        retry: outcome.retry,
      },
      `sync failed: ${outcome.message}`,
    );
    return;
  }
  const action = outcome.targets.some((t) => t.action === 'created')
    ? 'created'
    : outcome.targets.some((t) => t.action === 'updated')
      ? 'updated'
      : 'unchanged';
  syncs.inc({ kind: object.kind, outcome: action });
}

interface WithConditions extends KubernetesObject {
  status?: { conditions?: { type?: string; status?: string }[] };
}

function readyOf(object: WithConditions): boolean | undefined {
  const status = object.status?.conditions?.find((condition) => condition.type === 'Ready')?.status;
  return status === 'True' ? true : status === 'False' ? false : undefined;
}

export interface ConditionGauge {
  /** Informer handlers that follow each object's Ready condition as its status shows it. */
  readonly handlers: InformerHandlers<KubernetesObject>;
  /** Export from now on (the leader): only the process that writes the status reports it. */
  activate(): void;
}

/**
 * The gauge of a kind whose status another part writes (SecretsRotationMapping): followed from the
 * informer, so every path that writes a Ready condition is covered without a call at each one.
 */
export function conditionGauge(kind: StatusKind): ConditionGauge {
  const known = new Map<string, { object: StatusObject; ready: boolean | undefined }>();
  let active = false;
  const show = (entry: { object: StatusObject; ready: boolean | undefined }): void => {
    if (entry.ready === undefined) forgetStatus(entry.object);
    else reportReady(entry.object, entry.ready);
  };
  const seen = (object: KubernetesObject): void => {
    const namespace = object.metadata?.namespace;
    const name = object.metadata?.name;
    if (!namespace || !name) return;
    const entry = { object: { kind, namespace, name }, ready: readyOf(object as WithConditions) };
    known.set(`${namespace}/${name}`, entry);
    if (active) show(entry);
  };
  return {
    handlers: {
      add: seen,
      update: seen,
      delete: (object) => {
        const key = `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
        const entry = known.get(key);
        known.delete(key);
        if (entry) forgetStatus(entry.object);
      },
    },
    activate() {
      active = true;
      for (const entry of known.values()) show(entry);
    },
  };
}
