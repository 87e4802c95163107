/**
 * Which secrets a sync source reads, as watches for the detector, and which files (Secret keys
 * before mapping) each one produces, so a rollout can check the synced Secret already carries a
 * new version (SecretSync `status.syncedVersions` is per file, as is each namespace's entry in a
 * ClusterSecretSync's status). Pure; parsed with the sync controllers' own job parsers so both
 * agree on what a source means.
 */
import { jmesPathFileName, objectFileName } from '../../core/naming.ts';
import { planRequests } from '../../core/payloads.ts';
import { followedStage } from '../../core/source.ts';
import { parseMountSpec, type SpecOptions } from '../../core/spec.ts';
import { clusterSecretSyncJob } from '../cluster-sync/expand.ts';
import { type SourceKind, type SyncJob, secretSyncJob, secretSyncKind, type spcKind } from '../jobs.ts';
import { spcJob } from '../spc-job.ts';
import type { Watch } from './detector.ts';

/** A sync source; a ClusterSecretSync's is its run in one namespace (the object itself is cluster-scoped). */
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
  /**
   * That ServiceAccount's namespace: the source's own, but for a ClusterSecretSync naming one
   * identity for every namespace (`serviceAccountRef.namespace`, mode (b)).
   */
  readonly identityNamespace: string;
}

/** A SecretSync or opted-in SecretProviderClass → what it reads; undefined when it does not parse (the sync controller reports that). */
export function sourceUsage(
  kind: typeof secretSyncKind | typeof spcKind,
  object: unknown,
  defaultRegion: string | undefined,
  specOptions: SpecOptions = {},
): SourceUsage | undefined {
  try {
    const job = kind === secretSyncKind ? secretSyncJob(object) : spcJob(object);
    return jobUsage(job, job.source.namespace, defaultRegion, specOptions);
  } catch {
    return undefined;
  }
}

/**
 * A ClusterSecretSync's runs in `namespaces` → what each reads there, as whom; empty when it does
 * not parse (the cluster sync controller reports that). The objects spec is the same in every
 * namespace, so it is parsed once (500 namespaces: one parse, not 500).
 */
export function clusterSyncUsages(
  object: unknown,
  namespaces: readonly string[],
  defaultRegion: string | undefined,
  specOptions: SpecOptions = {},
): Map<string, SourceUsage> {
  const byNamespace = new Map<string, SourceUsage>();
  const [first] = namespaces;
  if (first === undefined) return byNamespace;
  let base: SourceUsage;
  let named: string | undefined;
  try {
    const { job, identityNamespace } = clusterSecretSyncJob(object, first);
    named = identityNamespace;
    base = jobUsage(job, identityNamespace ?? first, defaultRegion, specOptions);
  } catch {
    return byNamespace;
  }
  for (const namespace of namespaces) {
    byNamespace.set(namespace, {
      ...base,
      source: { ...base.source, namespace },
      identityNamespace: named ?? namespace,
    });
  }
  return byNamespace;
}

/** Throws when the job's objects spec does not parse. */
function jobUsage(
  job: SyncJob,
  identityNamespace: string,
  defaultRegion: string | undefined,
  specOptions: SpecOptions,
): SourceUsage {
  const { kind } = job.source;
  const spec = parseMountSpec(job.params, `${kind} ${job.source.namespace}/${job.source.name}`, specOptions);
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
    identityNamespace,
  };
}
