/**
 * SecretsRotationMapping status: which secret it follows (ARN, current version), its last change,
 * the workloads rolled for it, and a Ready condition. A mapping is shown its secret only once a
 * workload it selects runs as a ServiceAccount that may describe it (permissions.ts); until then
 * Ready is False/NotPermitted and nothing else is written, not even whether the secret exists.
 * Writes of one mapping run one after another, each from the latest cached status.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { secretIdMatches } from '../../aws/index.ts';
import { describeError, InvalidInputError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { currentStage } from '../../core/source.ts';
import type { Objects, StatusRef } from '../../kube/apply.ts';
import type { EventRecorder, InvolvedObject } from '../../kube/events.ts';
import type { ChangeSink, SecretChange, SecretObservation, Watch } from './detector.ts';
import {
  mappingGroup,
  mappingKind,
  mappingMatches,
  mappingPlural,
  mappingVersion,
  parseMapping,
  type RotationMapping,
} from './mapping.ts';
import type { PermissionSubject, Permissions } from './permissions.ts';
import { regionOf } from './stages.ts';
import { type UsageIndex, workloadSubject } from './usage-index.ts';

export interface MappingStatus {
  observedGeneration: number;
  secretArn?: string;
  currentVersion?: string;
  lastChange?: {
    versionId?: string;
    previousVersionId?: string;
    detectedAt: string;
    source: string;
    reason: string;
  };
  workloadsRolled?: { kind: string; name: string; versionId: string; at: string }[];
  conditions: {
    type: string;
    status: 'True' | 'False';
    reason: string;
    message: string;
    lastTransitionTime: string;
  }[];
}

export interface StatusUpdate {
  readonly change?: SecretChange;
  readonly rolled?: { kind: string; name: string; versionId: string };
}

/** The mapping's Ready reason while no workload it matches may describe its secret. */
export const notPermitted = 'NotPermitted';
const maxRolledKept = 20;

export interface MappingStatusOptions {
  readonly index: Pick<UsageIndex, 'workloads' | 'mappings' | 'watchFor' | 'mappingObject'>;
  readonly permissions: Pick<Permissions, 'check'>;
  readonly observed: (watch: Watch) => SecretObservation | undefined;
  readonly objects: Pick<Objects, 'applyStatus'>;
  readonly events: EventRecorder;
  readonly logger: Logger;
  readonly defaultRegion: string | undefined;
  readonly leading: () => boolean;
  readonly now: () => number;
}

export interface MappingStatuses {
  /** Parses a mapping; an invalid one gets an InvalidSpec event and condition (leader only) and undefined. */
  parse(object: KubernetesObject): Promise<RotationMapping | undefined>;
  write(mapping: RotationMapping, update: StatusUpdate): Promise<void>;
  /** Mappings a workload just matched that showed nothing yet (no permitted workload seen) show their secret now. */
  showIfHidden(mappings: readonly RotationMapping[]): void;
  /** A permission answer changed: the namespace's mappings for that secret are written again. */
  permissionChanged(subject: PermissionSubject): void;
  /** On a change: the mappings following the secret record it. */
  readonly statusSink: ChangeSink;
}

export function mappingRef(mapping: Pick<RotationMapping, 'namespace' | 'name'>): StatusRef {
  return {
    group: mappingGroup,
    version: mappingVersion,
    plural: mappingPlural,
    kind: mappingKind,
    namespace: mapping.namespace,
    name: mapping.name,
  };
}

function readyOf(status: Partial<MappingStatus>): MappingStatus['conditions'][number] | undefined {
  return status.conditions?.find((condition) => condition.type === 'Ready');
}

/** The status of a mapping whose secret is seen as `seen` (pure; `before` is the current status). */
export function watchingStatus(
  mapping: RotationMapping,
  seen: SecretObservation | undefined,
  before: Partial<MappingStatus>,
  update: StatusUpdate,
  at: string,
): MappingStatus {
  const current = seen?.stages.get(currentStage);
  const status: MappingStatus = {
    observedGeneration: mapping.generation,
    ...(seen ? { secretArn: seen.arn } : before.secretArn ? { secretArn: before.secretArn } : {}),
    ...(current ? { currentVersion: current } : {}),
    ...(before.lastChange ? { lastChange: before.lastChange } : {}),
    workloadsRolled: [...(before.workloadsRolled ?? [])],
    conditions: [
      {
        type: 'Ready',
        status: seen && !seen.deleted ? 'True' : 'False',
        reason: !seen ? 'SecretNotSeen' : seen.deleted ? 'SecretDeleted' : 'Watching',
        message: !seen
          ? `secret ${mapping.secretId} not seen yet (ListSecrets/DescribeSecret)`
          : seen.deleted
            ? `secret ${seen.name} is deleted or scheduled for deletion`
            : `following ${seen.name} at ${currentStage}`,
        lastTransitionTime: at,
      },
    ],
  };
  const beforeReady = readyOf(before);
  const ready = status.conditions[0];
  if (ready && beforeReady?.status === ready.status && beforeReady.lastTransitionTime) {
    ready.lastTransitionTime = beforeReady.lastTransitionTime;
  }
  if (update.change) {
    const { change } = update;
    const versionId = change.secret.stages.get(currentStage);
    const previousVersionId = change.previous?.stages.get(currentStage);
    status.lastChange = {
      ...(versionId ? { versionId } : {}),
      ...(previousVersionId ? { previousVersionId } : {}),
      detectedAt: new Date(change.detectedAt).toISOString(),
      source: change.source,
      reason: change.reason,
    };
  }
  if (update.rolled) {
    status.workloadsRolled = [...(status.workloadsRolled ?? []), { ...update.rolled, at }].slice(
      -maxRolledKept,
    );
  }
  return status;
}

/**
 * Not even whether the secret exists: the status is written whole, so what an earlier status
 * showed (ARN, versions, rollouts) goes too.
 */
export function notPermittedStatus(mapping: RotationMapping, at: string): MappingStatus {
  return {
    observedGeneration: mapping.generation,
    conditions: [
      {
        type: 'Ready',
        status: 'False',
        reason: notPermitted,
        message: `no workload this mapping selects runs as a ServiceAccount whose role may secretsmanager:DescribeSecret ${mapping.secretId}; nothing is shown or rolled for it`,
        lastTransitionTime: at,
      },
    ],
  };
}

export function createMappingStatuses(options: MappingStatusOptions): MappingStatuses {
  const { index, objects, logger, now } = options;
  const writes = new Map<string, Promise<void>>();

  function cachedStatus(mapping: RotationMapping): Partial<MappingStatus> {
    const current = index.mappingObject(mapping.namespace, mapping.name) as
      | { status?: Partial<MappingStatus> }
      | undefined;
    return current?.status ?? {};
  }

  /** True when a workload the mapping selects runs as a ServiceAccount that may describe its secret. */
  async function permitted(mapping: RotationMapping, watch: Watch): Promise<boolean> {
    const selected = index.workloads().filter((workload) => mappingMatches(mapping, workload));
    const answers = await Promise.all(
      selected.map((workload) => options.permissions.check(workloadSubject(workload, watch))),
    );
    return answers.some(Boolean);
  }

  async function apply(mapping: RotationMapping, update: StatusUpdate): Promise<void> {
    const before = cachedStatus(mapping);
    const at = new Date(now()).toISOString();
    const watch = index.watchFor(mapping.secretId);
    if (watch && !(await permitted(mapping, watch))) {
      if (readyOf(before)?.reason === notPermitted && before.observedGeneration === mapping.generation)
        return;
      await objects.applyStatus(mappingRef(mapping), { ...notPermittedStatus(mapping, at) });
      return;
    }
    const seen = watch ? options.observed(watch) : undefined;
    await objects.applyStatus(mappingRef(mapping), { ...watchingStatus(mapping, seen, before, update, at) });
  }

  function write(mapping: RotationMapping, update: StatusUpdate): Promise<void> {
    const key = `${mapping.namespace}/${mapping.name}`;
    const previous = writes.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => apply(mapping, update))
      .catch((error: unknown) => {
        logger.warn({ mapping: key, err: describeError(error) }, 'mapping status not written');
      });
    writes.set(key, next);
    return next;
  }

  return {
    async parse(object) {
      try {
        return parseMapping(object);
      } catch (error) {
        if (!options.leading()) return undefined;
        const involved: InvolvedObject = {
          apiVersion: `${mappingGroup}/${mappingVersion}`,
          kind: mappingKind,
          namespace: object.metadata?.namespace ?? '',
          name: object.metadata?.name ?? '',
          ...(object.metadata?.uid ? { uid: object.metadata.uid } : {}),
        };
        void options.events.record(involved, 'Warning', 'InvalidSpec', describeError(error));
        await objects
          .applyStatus(mappingRef(involved), {
            observedGeneration: object.metadata?.generation ?? 0,
            conditions: [
              {
                type: 'Ready',
                status: 'False',
                reason: 'InvalidSpec',
                message: describeError(error),
                lastTransitionTime: new Date(now()).toISOString(),
              },
            ],
          })
          .catch((failure: unknown) => {
            logger.warn(
              { mapping: involved.name, err: describeError(failure) },
              'mapping status not written',
            );
          });
        return undefined;
      }
    },
    write,
    showIfHidden(mappings) {
      if (!options.leading()) return;
      for (const mapping of mappings) {
        const reason = readyOf(cachedStatus(mapping))?.reason;
        if (reason === undefined || reason === notPermitted) void write(mapping, {});
      }
    },
    permissionChanged(subject) {
      for (const { mapping } of index.mappings()) {
        if (mapping instanceof InvalidInputError || mapping.namespace !== subject.namespace) continue;
        if (index.watchFor(mapping.secretId)?.id === subject.id) void write(mapping, {});
      }
    },
    statusSink: {
      async secretChanged(change) {
        const { arn, name } = change.secret;
        for (const { mapping } of index.mappings()) {
          if (mapping instanceof InvalidInputError || !secretIdMatches(mapping.secretId, arn, name)) continue;
          if (regionOf(mapping.secretId, options.defaultRegion) !== change.secret.region) continue;
          await write(mapping, change.previous ? { change } : {});
        }
      },
    },
  };
}
