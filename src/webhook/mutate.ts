/**
 * The one pod mutation, shared by the admission webhook and `smk inject`: pod in → pod out (or a
 * denial naming the annotation or field at fault). Pure: it edits a copy and never calls AWS or
 * Kubernetes, so the admission path stays fast and the CLI prints exactly what the webhook does.
 *
 * Idempotent by construction: a pod that carries the injected-status marker has its injected
 * containers and volume rebuilt exactly as smk makes them now, with the identity env/mounts of the
 * app containers (what a reinvocation after the EKS identity webhook needs); applying twice is a
 * no-op. The marker is an annotation anyone creating a pod can write, so it is never trusted: a
 * container under a reserved name keeps nothing its author put there (args, envFrom, lifecycle…),
 * only what the API server defaults.
 */
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { roleChainSettings } from '../aws/role-chain.ts';
import {
  agentArguments,
  agentEnv,
  agentRoleChainEnv,
  initContainerName,
  refreshContainerName,
  volumeName,
} from '../core/agent-contract.ts';
import { smkVersion } from '../core/version.ts';
import {
  annotations,
  type InjectionPlan,
  injectedStatus,
  planFromAnnotations,
  type Resources,
} from './annotations.ts';
import { podIdentity } from './identity.ts';
import {
  type Container,
  describeSchemaError,
  type EnvVar,
  type Pod,
  podSchema,
  rawAnnotations,
  type VolumeMount,
} from './pod.ts';

export interface InjectorConfig {
  /** The smk image (the injected containers run `smk agent …` from it). */
  readonly agentImage: string;
  /** How the image starts smk; the mode (`agent init`/`agent refresh`) is appended. */
  readonly agentCommand: readonly string[];
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Default resources of the injected containers; `smk.dev/resources` overrides per list. */
  readonly resources: Resources;
  /** sizeLimit of the memory emptyDir. */
  readonly volumeSizeLimit: string;
  /** Native sidecar (init container with restartPolicy Always, Kubernetes ≥ 1.29), else a regular container. */
  readonly nativeSidecar: boolean;
  /** UID/GID of the agent when the app sets none (or root). */
  readonly agentUser: number;
  /**
   * AWS_ENDPOINT_URL of the injected agents when the pod sets none (the cluster's LocalStack or
   * proxy, the same one smk's own pods use); undefined = the AWS default endpoints.
   */
  readonly awsEndpointUrl: string | undefined;
  /**
   * --allow-jmespath-expressions: admit specs with full JMESPath expressions and let the agent
   * run them (SMK_JMESPATH_EXPRESSIONS), as the controller and CSI provider do with the same flag.
   */
  readonly allowJmesPathExpressions: boolean;
}

export const defaultInjectorConfig: InjectorConfig = {
  // This release's image, so the injected agent speaks the same env contract as the injector.
  agentImage: `ghcr.io/smk-dev/smk:${smkVersion}`,
  agentCommand: ['smk'],
  imagePullPolicy: 'IfNotPresent',
  resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '128Mi' } },
  volumeSizeLimit: '4Mi',
  nativeSidecar: true,
  agentUser: 65532,
  awsEndpointUrl: undefined,
  allowJmesPathExpressions: false,
};

export type MutationResult =
  /**
   * `changed` is false when the pod did not ask for injection or was already in its injected
   * form; `patch` is the JSON patch from the input to `pod` (what the admission response carries).
   */
  | { readonly pod: Pod; readonly changed: boolean; readonly patch: readonly Operation[] }
  /** `malformed`: the pod itself is not of a valid shape (not the annotations' fault). */
  | { readonly denied: string; readonly malformed?: boolean };

const { compare } = fastJsonPatch;

class Denial extends Error {}

function deny(message: string): never {
  throw new Denial(message);
}

/**
 * Applies the injection that the pod's annotations ask for. `input` is a Pod or a pod template
 * (`{metadata, spec}`) as plain JSON; it is not modified.
 */
export function mutatePod(input: unknown, config: InjectorConfig): MutationResult {
  const raw = rawAnnotations(input);
  if (
    raw === undefined ||
    (raw[annotations.seedEnabled] === undefined && raw[annotations.inject] === undefined)
  ) {
    return { pod: input as Pod, changed: false, patch: [] };
  }
  const parsed = podSchema.safeParse(input);
  if (!parsed.success) return { denied: `pod ${describeSchemaError(parsed.error)}`, malformed: true };
  // The schema has no transforms, so the validated input is a Pod; working on it (not on zod's
  // output) keeps the caller's key order, which `smk inject` prints.
  const original = input as Pod;
  const planned = planFromAnnotations(original.metadata?.annotations, config.allowJmesPathExpressions);
  if (planned.kind === 'none') return { pod: original, changed: false, patch: [] };
  if (planned.kind === 'invalid') return { denied: planned.message };
  const pod = copyForEdit(original);
  try {
    inject(pod, planned.plan, config);
  } catch (error) {
    if (error instanceof Denial) return { denied: error.message };
    throw error;
  }
  const patch = compare(original, pod);
  return { pod, changed: patch.length > 0, patch };
}

/**
 * A copy down to the lists the injection edits; everything below (container fields, volume
 * sources) is shared with the input and only ever replaced, never changed in place.
 */
function copyForEdit(pod: Pod): Pod {
  const spec = pod.spec;
  return {
    ...pod,
    metadata: { ...pod.metadata },
    spec: {
      ...spec,
      containers: spec.containers.map((container) => ({ ...container })),
      ...(spec.initContainers
        ? { initContainers: spec.initContainers.map((container) => ({ ...container })) }
        : {}),
      ...(spec.volumes ? { volumes: [...spec.volumes] } : {}),
    },
  };
}

/** A fresh copy of a small JSON value, so no object appears twice in the output (YAML would print an alias). */
function copyJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function inject(pod: Pod, plan: InjectionPlan, config: InjectorConfig): void {
  const spec = pod.spec;
  const ours = new Set([initContainerName, refreshContainerName]);
  const initContainers = spec.initContainers ?? [];
  const userInit = initContainers.filter((container) => !ours.has(container.name));
  const appContainers = spec.containers.filter((container) => !ours.has(container.name));

  // smk never puts its init container among the regular ones, injected or not.
  if (spec.containers.some((container) => container.name === initContainerName)) {
    deny(`pod already has a container named "${initContainerName}", which the injector reserves; rename it`);
  }
  if (!plan.alreadyInjected) {
    for (const container of [...spec.containers, ...initContainers]) {
      if (ours.has(container.name)) {
        deny(`pod already has a container named "${container.name}", which the injector reserves; rename it`);
      }
    }
    if ((spec.volumes ?? []).some((volume) => volume.name === volumeName)) {
      deny(`pod already has a volume named "${volumeName}", which the injector reserves; rename it`);
    }
  }

  const targets = targetContainers(plan, appContainers, userInit);
  for (const container of targets) mountInto(container, plan.mountPath);

  const identity = podIdentity([...appContainers, ...userInit], config.awsEndpointUrl);
  const runAs = agentRunAs(spec, targets, config);
  const identityMounts = identity.mounts.filter((mount) => mount.mountPath !== plan.mountPath);
  // Every container gets its own objects: YAML would print a shared one as an alias.
  const build = (name: string, mode: 'init' | 'refresh', modeEnv: readonly EnvVar[]): Container => ({
    name,
    image: config.agentImage,
    imagePullPolicy: config.imagePullPolicy,
    command: [...config.agentCommand, ...agentArguments(mode)],
    env: [
      { name: agentEnv.objects, value: plan.objectsJson },
      { name: agentEnv.dir, value: plan.mountPath },
      ...(plan.region === undefined ? [] : [{ name: agentEnv.region, value: plan.region }]),
      ...(plan.templatesJson === undefined ? [] : [{ name: agentEnv.templates, value: plan.templatesJson }]),
      ...(config.allowJmesPathExpressions ? [{ name: agentEnv.jmesPathExpressions, value: 'allowed' }] : []),
      ...(plan.roleChain === undefined ? [] : roleChainSettings(plan.roleChain, agentRoleChainEnv)),
      ...modeEnv,
      ...identity.env.map(copyJson),
    ],
    resources: mergeResources(config.resources, plan.resources),
    securityContext: agentSecurityContext(runAs),
    volumeMounts: [
      { name: volumeName, mountPath: plan.mountPath },
      ...identityMounts.map((mount): VolumeMount => ({ ...mount })),
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  });

  const init = build(initContainerName, 'init', []);
  const refresh =
    plan.refreshIntervalSeconds === undefined
      ? undefined
      : build(refreshContainerName, 'refresh', [
          { name: agentEnv.refreshInterval, value: String(plan.refreshIntervalSeconds) },
        ]);

  const nextInit = [...initContainers];
  place(nextInit, init, 0);
  if (refresh && config.nativeSidecar) {
    removeByName(spec.containers, refreshContainerName);
    place(nextInit, { ...refresh, restartPolicy: 'Always' }, 1);
  } else if (refresh) {
    removeByName(nextInit, refreshContainerName);
    place(spec.containers, refresh, spec.containers.length);
  } else {
    removeByName(nextInit, refreshContainerName);
    removeByName(spec.containers, refreshContainerName);
  }
  spec.initContainers = nextInit;

  const volumes = spec.volumes ?? [];
  const volume = { name: volumeName, emptyDir: { medium: 'Memory', sizeLimit: config.volumeSizeLimit } };
  const existing = volumes.findIndex((candidate) => candidate.name === volumeName);
  if (existing === -1) volumes.push(volume);
  else volumes[existing] = volume;
  spec.volumes = volumes;

  const metadata = pod.metadata ?? {};
  metadata.annotations = { ...metadata.annotations, [annotations.status]: injectedStatus };
  pod.metadata = metadata;
}

function targetContainers(plan: InjectionPlan, app: Container[], userInit: Container[]): Container[] {
  if (plan.containers === undefined) return [...app, ...userInit];
  const byName = new Map([...app, ...userInit].map((container) => [container.name, container]));
  return plan.containers.map((name) => {
    const container = byName.get(name);
    if (container === undefined) {
      const known = [...byName.keys()].map((known) => `"${known}"`).join(', ');
      deny(`annotation ${annotations.containers}: no container named "${name}"; the pod has ${known}`);
    }
    return container;
  });
}

function mountInto(container: Container, mountPath: string): void {
  const mounts = container.volumeMounts ?? [];
  const atPath = mounts.find((mount) => mount.mountPath.replace(/(.)\/+$/, '$1') === mountPath);
  if (atPath !== undefined && atPath.name !== volumeName) {
    deny(
      `container "${container.name}" already mounts volume "${atPath.name}" at ${mountPath}; choose another directory with ${annotations.mountPath}`,
    );
  }
  const ours = mounts.findIndex((mount) => mount.name === volumeName);
  const next = [...mounts];
  if (ours === -1) next.push({ name: volumeName, mountPath, readOnly: true });
  else next[ours] = { ...mounts[ours], name: volumeName, mountPath, readOnly: true };
  container.volumeMounts = next;
}

/** The injected containers' security context: non-root, read-only root, no privilege, nothing extra. */
export function agentSecurityContext(runAs: { user: number; group: number }): {
  readonly runAsUser: number;
  readonly runAsGroup: number;
  readonly [field: string]: unknown;
} {
  return {
    runAsNonRoot: true,
    runAsUser: runAs.user,
    runAsGroup: runAs.group,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Runs the agent as the app's (non-root) user so files with restrictive modes stay readable by it. */
export function agentRunAs(
  spec: Pod['spec'],
  targets: readonly Container[],
  config: InjectorConfig,
): { user: number; group: number } {
  const nonRoot = (id: number | undefined): number | undefined =>
    id === undefined || id === 0 ? undefined : id;
  const first = targets[0]?.securityContext;
  const user = nonRoot(first?.runAsUser) ?? nonRoot(spec.securityContext?.runAsUser) ?? config.agentUser;
  const group = nonRoot(first?.runAsGroup) ?? nonRoot(spec.securityContext?.runAsGroup) ?? user;
  return { user, group };
}

function mergeResources(defaults: Resources, overrides: Resources | undefined): Resources {
  const requests = { ...defaults.requests, ...overrides?.requests };
  const limits = { ...defaults.limits, ...overrides?.limits };
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}

/**
 * Container fields the API server fills in when they are missing, with the value it uses, that
 * smk leaves unset: an injected container may carry these (and only these) besides what smk wrote.
 */
const apiServerDefaults: Readonly<Record<string, unknown>> = {
  terminationMessagePath: '/dev/termination-log',
};

/**
 * Puts `container` at `index`, or — when a container of that name is already there (an injected
 * pod, or one claiming to be) — replaces it where it stands with `container`, keeping only fields
 * the API server defaulted to their default values.
 */
function place(list: Container[], container: Container, index: number): void {
  const at = list.findIndex((candidate) => candidate.name === container.name);
  if (at === -1) {
    list.splice(Math.min(index, list.length), 0, container);
    return;
  }
  const current: Readonly<Record<string, unknown>> = list[at] ?? {};
  const defaulted = Object.entries(apiServerDefaults).filter(
    ([field, value]) => !(field in container) && current[field] === value,
  );
  list[at] = { ...container, ...Object.fromEntries(defaulted) };
}

function removeByName(list: Container[], name: string): void {
  const at = list.findIndex((candidate) => candidate.name === name);
  if (at !== -1) list.splice(at, 1);
}
