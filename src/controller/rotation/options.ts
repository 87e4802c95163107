/**
 * What the rotation controller is given: its clients and identities, its timings, and which
 * optional kinds it watches (RotationSettings); the namespaces, Lease and informers are the
 * process's manager's (kube/manager.ts). Parsed from flags by the CLI (src/cli/controller.ts).
 */
import type { QueueReader } from '../../aws/index.ts';
import type { Logger } from '../../core/log.ts';
import type { Objects } from '../../kube/apply.ts';
import type { KubeConfig } from '../../kube/client.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { LeaderElectionSettings } from '../../kube/manager.ts';
import type { IdentityResolver } from '../identity.ts';
import type { ChangeSink, VersionReader } from './detector.ts';
import type { RolloutKind } from './kinds.ts';
import type { ResyncRequest } from './sync-gate.ts';
import type { SourceRef } from './usage.ts';

export interface RotationSettings {
  /** DescribeSecret / ListSecrets as the controller's own identity. */
  readonly reader: VersionReader;
  /**
   * A namespace's identities (as the sync controller resolves them): what a namespace is shown
   * of a secret, and whether its workloads roll for it, waits for their own DescribeSecret.
   */
  readonly identities: IdentityResolver;
  /** How long such an answer is trusted (default 5 minutes). */
  readonly permissionTtlMs?: number;
  /** The rotation queue; without one, polling alone detects changes. */
  readonly queue?: Pick<QueueReader, 'receive' | 'delete' | 'queueUrl'>;
  readonly defaultRegion: string | undefined;
  /** Sinks run before re-sync and rollouts (e.g. the AWS cache's `stagesMoved`). */
  readonly sinks?: readonly ChangeSink[];
  /**
   * Makes a sync source sync now. Default: bump its `smk.dev/force-sync` annotation, which the
   * sync controller treats as "sync now" (works in the same process and across processes).
   */
  readonly resync?: (source: SourceRef, request: ResyncRequest) => Promise<void>;
  readonly pollIntervalMs?: number;
  readonly pollJitter?: number;
  /** Changes within this window after the first make one rollout per workload (default 500 ms). */
  readonly debounceMs?: number;
  /** How long a rollout waits for its synced Secrets before warning (default 2 min); it never rolls onto the old value. */
  readonly syncWaitMs?: number;
  /**
   * A rollout still waiting this long after asking a source to re-sync asks again (default 30 s).
   * The sync may run in another replica, whose cache this one's change cannot invalidate: its
   * stage cache (15 s) may answer the old version once, and that sync then succeeds with it.
   */
  readonly resyncRetryMs?: number;
  readonly queueWaitSeconds?: number;
  /** Watch SecretProviderClasses / mappings: true, false, or 'auto' (when the CRD is served; default). */
  readonly secretProviderClasses?: boolean | 'auto';
  /** Specs with full JMESPath expressions are read, as the sync controller does (same flag). */
  readonly allowJmesPathExpressions?: boolean;
  readonly mappings?: boolean | 'auto';
  /**
   * Follow the Secrets ClusterSecretSyncs write: true, false, or 'auto' (default: when the CRD is
   * served and the manager serves every namespace, as the ClusterSecretSync controller runs).
   */
  readonly clusterSecretSyncs?: boolean | 'auto';
  /**
   * Also honour Stakater Reloader's `secret.reloader.stakater.com/reload` and
   * `configmap.reloader.stakater.com/reload` (default false: with Reloader still installed, every
   * change would restart such a workload twice). smk's own `smk.dev/reload-secrets` and
   * `smk.dev/reload-configmaps` are always honoured.
   */
  readonly reloaderAnnotations?: boolean;
  /**
   * Rollout kinds whose row is `optional` (a custom resource such as Argo's Rollout) are watched
   * when served (default 'auto'); true or false here decides instead. Built-in kinds are always on.
   */
  readonly rolloutKinds?: { readonly [K in RolloutKind]?: boolean | 'auto' };
  readonly events?: EventRecorder;
  readonly objects?: Objects;
  readonly now?: () => number;
}

/** A rotation controller with a manager of its own (tests, benchmarks; `smk controller` shares one). */
export interface RotationControllerOptions extends RotationSettings {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Only these namespaces (default: all). */
  readonly namespaces?: readonly string[];
  readonly leaderElection?: LeaderElectionSettings;
  readonly onLostLeadership?: () => void;
  readonly relistIntervalMs?: number;
}
