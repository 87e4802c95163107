/**
 * Which secrets a sync source reads, as watches for the detector, and which files (Secret keys
 * before mapping) each one produces, so a rollout can check the synced Secret already carries a
 * new version (SecretSync `status.syncedVersions` is per file). Pure; parsed with the sync
 * controller's own job parsers so both agree on what a source means.
 */
import { jmesPathFileName, objectFileName } from '../../core/naming.ts';
import { planRequests } from '../../core/payloads.ts';
import { followedStage } from '../../core/source.ts';
import { parseMountSpec, type SpecOptions } from '../../core/spec.ts';
import { type SourceKind, type SyncJob, secretSyncJob, secretSyncKind } from '../jobs.ts';
import { spcJob } from '../spc-job.ts';
import type { Watch } from './detector.ts';

export interface SourceRef {
  readonly kind: SourceKind;
  readonly namespace: string;
  readonly name: string;
}

export interface SecretUse {
  readonly watch: Watch;
  /** Files (payload names) this object produces: the keys of `status.syncedVersions`. */
  readonly files: readonly string[];
}

export interface SourceUsage {
  readonly source: SourceRef;
  readonly uses: readonly SecretUse[];
  /** Names of the Secrets the source writes. */
  readonly targets: readonly string[];
  /** The ServiceAccount the source reads as: whose role must be able to describe what it follows. */
  readonly serviceAccountName: string;
}

/** A SecretSync or opted-in SecretProviderClass → what it reads; undefined when it does not parse (the sync controller reports that). */
export function sourceUsage(
  kind: SourceKind,
  object: unknown,
  defaultRegion: string | undefined,
  specOptions: SpecOptions = {},
): SourceUsage | undefined {
  let job: SyncJob;
  try {
    job = kind === secretSyncKind ? secretSyncJob(object) : spcJob(object);
    const spec = parseMountSpec(
      job.params,
      `${kind} ${job.source.namespace}/${job.source.name}`,
      specOptions,
    );
    const planned = planRequests(spec, defaultRegion);
    const uses: SecretUse[] = [];
    for (const { object: spec_object, primary } of planned) {
      if (primary.objectType !== 'secretsmanager') continue;
      // core/source.ts's one rule: a version id pins the object (its stage then only guards the read).
      const stage = followedStage(primary);
      uses.push({
        watch: { region: primary.region, id: primary.id, stage },
        files: [
          objectFileName(spec_object, spec.pathTranslation),
          ...spec_object.jmesPath.map((entry) => jmesPathFileName(entry, spec.pathTranslation)),
        ],
      });
    }
    return {
      source: { kind, namespace: job.source.namespace, name: job.source.name },
      uses,
      targets: job.targets.map((target) => target.name),
      serviceAccountName: job.serviceAccountName,
    };
  } catch {
    return undefined;
  }
}
