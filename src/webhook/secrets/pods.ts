/**
 * Pods that consume write-through Secrets, as a pure function: pod in → pod out (or a denial).
 * A `secret` volume of a write-through Secret is swapped for a memory emptyDir of the same name,
 * filled before the app starts by an injected `smk agent init` that reads the Secrets Manager
 * secret with the pod's own identity; the app's volumeMounts stay as they were. Env references
 * (`secretKeyRef`, `envFrom`) and projected sources cannot be served that way and are refused
 * with a message saying how to consume the Secret. What is write-through comes from a lookup
 * (the webhook's informer cache), so no AWS or API call happens here.
 */
import { agentEnv } from '../../core/agent-contract.ts';
import { podIdentity } from '../identity.ts';
import { agentRunAs, agentSecurityContext, type InjectorConfig } from '../mutate.ts';
import type { Container, EnvVar, Pod, VolumeMount } from '../pod.ts';

/** What the pod path needs to know about one write-through Secret. */
export interface WriteThroughRef {
  /** The Secrets Manager secret (ARN or name) the agent reads, with the pod's own identity. */
  readonly secretId: string;
  /** Its region (an ARN's own region wins). */
  readonly region: string;
  readonly keys: readonly string[];
  readonly base64Keys: readonly string[];
}

export type WriteThroughLookup = (namespace: string, name: string) => WriteThroughRef | undefined;

export const writeThroughContainerPrefix = 'smk-write-through-';
/** The whole stored document beside the key files (the agent always writes it); a dotfile, like kubelet's own entries. */
export const documentFileName = '.write-through.json';
const agentDirBase = '/var/run/secrets/smk-write-through';
const defaultSecretMode = 0o644;

export type SwapResult = { readonly pod: Pod; readonly changed: boolean } | { readonly denied: string };

interface SecretVolumeSource {
  readonly secretName?: string;
  readonly items?: readonly { readonly key?: string; readonly path?: string; readonly mode?: number }[];
  readonly defaultMode?: number;
  readonly optional?: boolean;
}

interface RawVolume {
  readonly name: string;
  readonly secret?: SecretVolumeSource;
  readonly projected?: { readonly sources?: readonly { readonly secret?: { readonly name?: string } }[] };
}

interface RawContainer {
  readonly name: string;
  readonly env?: readonly {
    readonly name?: string;
    readonly valueFrom?: { readonly secretKeyRef?: { readonly name?: string } };
  }[];
  readonly envFrom?: readonly { readonly secretRef?: { readonly name?: string } }[];
}

class Denial extends Error {}
function deny(message: string): never {
  throw new Denial(message);
}

function howToConsume(secret: string): string {
  return (
    `Secret "${secret}" is write-through (its value lives in Secrets Manager, not in the Secret); ` +
    'mount it as a secret volume (smk fills the volume from Secrets Manager) or sync it into a plain Secret with a SecretSync'
  );
}

function containersOf(spec: Pod['spec']): RawContainer[] {
  return [...(spec.initContainers ?? []), ...spec.containers] as RawContainer[];
}

/** Refuses env and envFrom references to a write-through Secret. */
function checkEnv(spec: Pod['spec'], isWriteThrough: (name: string) => boolean): void {
  for (const container of containersOf(spec)) {
    for (const variable of container.env ?? []) {
      const name = variable.valueFrom?.secretKeyRef?.name;
      if (name !== undefined && isWriteThrough(name)) {
        deny(`container "${container.name}" env ${variable.name ?? '(unnamed)'}: ${howToConsume(name)}`);
      }
    }
    for (const source of container.envFrom ?? []) {
      const name = source.secretRef?.name;
      if (name !== undefined && isWriteThrough(name))
        deny(`container "${container.name}" envFrom: ${howToConsume(name)}`);
    }
  }
}

function fileMode(mode: number | undefined, volume: string): string {
  const value = mode ?? defaultSecretMode;
  if (!Number.isInteger(value) || value < 0 || value > 0o777) {
    deny(`volume "${volume}": file mode ${String(mode)} is not between 0 and 0777`);
  }
  return value.toString(8).padStart(4, '0');
}

/** The agent's objects spec for one swapped volume: the document plus one file per key, as kubelet would lay them out. */
function objectsFor(volume: RawVolume, secret: string, ref: WriteThroughRef): unknown[] {
  const source = volume.secret ?? {};
  const where = `volume "${volume.name}" (Secret "${secret}")`;
  const wanted =
    source.items === undefined
      ? ref.keys.map((key) => ({ key, path: key, mode: undefined as number | undefined }))
      : source.items.flatMap((item) => {
          const key = item.key ?? '';
          if (!ref.keys.includes(key)) {
            if (source.optional) return [];
            deny(
              `${where}: items names key "${key}", which the Secret does not have (it has ${ref.keys.join(', ')})`,
            );
          }
          return [{ key, path: item.path ?? key, mode: item.mode }];
        });
  const entries = wanted.map(({ key, path, mode }) => {
    if (ref.base64Keys.includes(key)) {
      deny(
        `${where}: key "${key}" is binary (stored base64 in Secrets Manager); the write-through volume carries text keys only — leave it out with items`,
      );
    }
    if (path.includes('/') || path === documentFileName) {
      deny(
        `${where}: item path "${path}" is not supported for write-through volumes; expected a plain file name`,
      );
    }
    return {
      path: JSON.stringify(key),
      objectAlias: path,
      filePermission: fileMode(mode ?? source.defaultMode, volume.name),
    };
  });
  return [
    {
      objectName: ref.secretId,
      objectType: 'secretsmanager',
      objectAlias: documentFileName,
      filePermission: fileMode(source.defaultMode, volume.name),
      jmesPath: entries,
    },
  ];
}

function agentContainer(
  name: string,
  volume: string,
  dir: string,
  region: string,
  objectsJson: string,
  identity: ReturnType<typeof podIdentity>,
  runAs: { user: number; group: number },
  config: InjectorConfig,
): Container {
  return {
    name,
    image: config.agentImage,
    imagePullPolicy: config.imagePullPolicy,
    command: [...config.agentCommand, 'agent', 'init'],
    env: [
      { name: agentEnv.objects, value: objectsJson },
      { name: agentEnv.region, value: region },
      { name: agentEnv.dir, value: dir },
      ...identity.env.map((variable): EnvVar => JSON.parse(JSON.stringify(variable)) as EnvVar),
    ],
    resources: JSON.parse(JSON.stringify(config.resources)) as Record<string, unknown>,
    securityContext: agentSecurityContext(runAs),
    volumeMounts: [
      { name: volume, mountPath: dir },
      ...identity.mounts
        .filter((mount) => mount.mountPath !== dir)
        .map((mount): VolumeMount => ({ ...mount })),
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/**
 * Swaps write-through secret volumes and refuses env use (see the module comment). `input` is a
 * pod validated by the injector's schema; it is not modified. A pod already swapped (a
 * reinvocation) only has its agents' identity brought in line with the app containers.
 */
export function swapWriteThroughVolumes(
  input: Pod,
  namespace: string,
  lookup: WriteThroughLookup,
  config: InjectorConfig,
): SwapResult {
  const refs = new Map<string, WriteThroughRef | undefined>();
  const refOf = (name: string): WriteThroughRef | undefined => {
    if (!refs.has(name)) refs.set(name, lookup(namespace, name));
    return refs.get(name);
  };
  const spec = input.spec;
  const volumes = (spec.volumes ?? []) as RawVolume[];
  const ours = (container: { name: string }): boolean =>
    container.name.startsWith(writeThroughContainerPrefix);
  const swaps = volumes.filter(
    (volume) => volume.secret?.secretName !== undefined && refOf(volume.secret.secretName) !== undefined,
  );
  try {
    checkEnv(spec, (name) => refOf(name) !== undefined);
    for (const volume of volumes) {
      for (const source of volume.projected?.sources ?? []) {
        const name = source.secret?.name;
        if (name !== undefined && refOf(name) !== undefined) {
          deny(`volume "${volume.name}": projected source: ${howToConsume(name)}`);
        }
      }
    }
    const existing = (spec.initContainers ?? []).filter(ours);
    if (swaps.length === 0 && existing.length === 0) return { pod: input, changed: false };

    const app = [...spec.containers, ...(spec.initContainers ?? [])].filter(
      (container) => !ours(container) && !container.name.startsWith('smk-agent-'),
    );
    const identity = podIdentity(app, config.awsEndpointUrl);
    const runAs = agentRunAs(spec, app, config);
    const pod: Pod = {
      ...input,
      spec: { ...spec, volumes: [...(spec.volumes ?? [])], initContainers: [...(spec.initContainers ?? [])] },
    };
    const nextVolumes = pod.spec.volumes ?? [];
    const nextInit = pod.spec.initContainers ?? [];

    // Reinvocation (e.g. after the EKS identity webhook): same agents, identity copied again.
    for (let at = 0; at < nextInit.length; at++) {
      const container = nextInit[at];
      if (container === undefined || !ours(container)) continue;
      const own = (container.env ?? []).filter(
        (variable) =>
          variable.name === agentEnv.objects ||
          variable.name === agentEnv.region ||
          variable.name === agentEnv.dir,
      );
      const dir = own.find((variable) => variable.name === agentEnv.dir)?.value;
      const volume = container.volumeMounts?.[0];
      if (typeof dir !== 'string' || volume === undefined) continue;
      nextInit[at] = {
        ...container,
        env: [
          ...own,
          ...identity.env.map((variable): EnvVar => JSON.parse(JSON.stringify(variable)) as EnvVar),
        ],
        volumeMounts: [
          volume,
          ...identity.mounts
            .filter((mount) => mount.mountPath !== dir)
            .map((mount): VolumeMount => ({ ...mount })),
        ],
      };
    }

    let index = existing.length;
    const added: Container[] = [];
    for (const volume of swaps) {
      const secret = volume.secret?.secretName ?? '';
      const ref = refOf(secret);
      if (ref === undefined) continue;
      const objects = objectsFor(volume, secret, ref);
      let name = `${writeThroughContainerPrefix}${index}`;
      while (
        nextInit.some((container) => container.name === name) ||
        spec.containers.some((c) => c.name === name)
      ) {
        index += 1;
        name = `${writeThroughContainerPrefix}${index}`;
      }
      index += 1;
      const dir = `${agentDirBase}/${volume.name}`;
      added.push(
        agentContainer(name, volume.name, dir, ref.region, JSON.stringify(objects), identity, runAs, config),
      );
      const at = nextVolumes.findIndex((candidate) => candidate.name === volume.name);
      nextVolumes[at] = {
        name: volume.name,
        emptyDir: { medium: 'Memory', sizeLimit: config.volumeSizeLimit },
      };
    }
    // Before every other init container, so user init containers can read the files too.
    pod.spec.initContainers = [...added, ...nextInit];
    return { pod, changed: true };
  } catch (error) {
    if (error instanceof Denial) return { denied: error.message };
    throw error;
  }
}
