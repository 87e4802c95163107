/**
 * In-memory stand-ins for the rotation unit tests (never imported by the controller): an informer
 * whose cache the test sets, the API writes recorded, events recorded, permission answers from a
 * function, and a queue that records what was added.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ObjectRef, Objects, StatusRef } from '../../kube/apply.ts';
import type { EventRecorder, EventType, InvolvedObject } from '../../kube/events.ts';
import type { Informer, InformerHandlers } from '../../kube/informer.ts';
import type { PermissionSubject, Permissions } from './permissions.ts';

export interface FakeInformer extends Informer<KubernetesObject> {
  /** Adds or replaces an object and calls the add / update handlers. */
  set(object: KubernetesObject): void;
  remove(namespace: string, name: string): void;
  readonly started: boolean;
}

const keyOf = (namespace: string | undefined, name: string | undefined): string =>
  `${namespace ?? ''}/${name ?? ''}`;

export function fakeInformer(objects: readonly KubernetesObject[] = []): FakeInformer {
  const cache = new Map<string, KubernetesObject>();
  for (const object of objects) cache.set(keyOf(object.metadata?.namespace, object.metadata?.name), object);
  const handlers: InformerHandlers<KubernetesObject>[] = [];
  let started = false;
  return {
    addHandlers(added) {
      handlers.push(added);
    },
    async start() {
      started = true;
    },
    stop() {
      started = false;
    },
    get(namespace, name) {
      return cache.get(keyOf(namespace, name));
    },
    list() {
      return [...cache.values()];
    },
    get healthy() {
      return started;
    },
    get synced() {
      return started;
    },
    get started() {
      return started;
    },
    set(object) {
      const key = keyOf(object.metadata?.namespace, object.metadata?.name);
      const previous = cache.get(key);
      cache.set(key, object);
      for (const handler of handlers) {
        if (previous) handler.update?.(object, previous);
        else handler.add?.(object);
      }
    },
    remove(namespace, name) {
      const previous = cache.get(keyOf(namespace, name));
      cache.delete(keyOf(namespace, name));
      if (previous) for (const handler of handlers) handler.delete?.(previous);
    },
  };
}

export interface Recorded {
  readonly patches: { ref: ObjectRef; patch: Record<string, unknown> }[];
  readonly statuses: { ref: StatusRef; status: Record<string, unknown> }[];
}

/** Objects whose reads answer from `store` (key `Kind/namespace/name`) and whose writes are recorded. */
export function fakeObjects(store: Map<string, KubernetesObject> = new Map()): Objects & Recorded {
  const patches: Recorded['patches'] = [];
  const statuses: Recorded['statuses'] = [];
  const refused = (): never => {
    throw new Error('not used by rotation');
  };
  return {
    patches,
    statuses,
    apply: refused,
    create: refused,
    replaceSecretManagedFields: refused,
    delete: refused,
    async applyStatus(ref, status) {
      statuses.push({ ref, status });
    },
    async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
      return store.get(`${ref.kind}/${ref.namespace}/${ref.name}`) as T | undefined;
    },
    async mergePatch<T extends KubernetesObject>(ref: ObjectRef, patch: Record<string, unknown>): Promise<T> {
      patches.push({ ref, patch });
      return (store.get(`${ref.kind}/${ref.namespace}/${ref.name}`) ?? {}) as T;
    },
  };
}

export interface RecordedEvent {
  readonly involved: InvolvedObject;
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
}

export function fakeEvents(): EventRecorder & { readonly recorded: RecordedEvent[] } {
  const recorded: RecordedEvent[] = [];
  return {
    recorded,
    async record(involved, type, reason, message) {
      recorded.push({ involved, type, reason, message });
    },
  };
}

/** Permissions answered by `allowed` at once (known and checked alike). */
export function fakePermissions(allowed: (subject: PermissionSubject) => boolean): Permissions {
  return {
    known: (subject) => allowed(subject),
    check: async (subject) => allowed(subject),
    stop: () => {},
  };
}

export function fakeQueue(): {
  readonly added: string[];
  readonly delayed: { key: string; ms: number }[];
  add(key: string): void;
  addAfter(key: string, ms: number): void;
} {
  const added: string[] = [];
  const delayed: { key: string; ms: number }[] = [];
  return {
    added,
    delayed,
    add: (key) => added.push(key),
    addAfter: (key, ms) => delayed.push({ key, ms }),
  };
}

/** A Deployment (or any apps kind) in `namespace` whose pod template reads `secretNames` through envFrom. */
export function workloadObject(
  namespace: string,
  name: string,
  options: {
    kind?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    secretNames?: readonly string[];
    serviceAccountName?: string;
    resourceVersion?: string;
    generation?: number;
  } = {},
): KubernetesObject {
  return {
    apiVersion: 'apps/v1',
    kind: options.kind ?? 'Deployment',
    metadata: {
      name,
      namespace,
      uid: `uid-${name}`,
      resourceVersion: options.resourceVersion ?? '1',
      generation: options.generation ?? 1,
      labels: options.labels ?? { app: name },
      annotations: options.annotations ?? {},
    },
    spec: {
      template: {
        metadata: { labels: options.labels ?? { app: name } },
        spec: {
          serviceAccountName: options.serviceAccountName ?? 'app',
          containers: [
            {
              name: 'app',
              envFrom: (options.secretNames ?? []).map((secret) => ({ secretRef: { name: secret } })),
            },
          ],
        },
      },
    },
  } as KubernetesObject;
}

/** A SecretSync of one secret to Secret `target` (file VALUE), with the versions its status records. */
export function secretSyncObject(
  namespace: string,
  name: string,
  secretId: string,
  target: string,
  syncedVersion?: string,
): KubernetesObject {
  return {
    apiVersion: 'smk.dev/v1alpha1',
    kind: 'SecretSync',
    metadata: { name, namespace, resourceVersion: syncedVersion ?? '1', generation: 1 },
    spec: {
      serviceAccountName: 'sync',
      objects: [{ objectName: secretId, objectType: 'secretsmanager', objectAlias: 'VALUE' }],
      target: { name: target },
    },
    ...(syncedVersion
      ? { status: { syncedVersions: [{ objectName: 'VALUE', versionId: syncedVersion }] } }
      : {}),
  } as KubernetesObject;
}

/** A Secret the sync controller wrote, marked with its owner (`SecretSync/name`). */
export function managedSecretObject(
  namespace: string,
  name: string,
  owner: string,
  annotations: Record<string, string> = {},
  resourceVersion = '1',
): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, resourceVersion, annotations: { 'smk.dev/owner': owner, ...annotations } },
  } as KubernetesObject;
}

/**
 * A ClusterSecretSync of one secret to Secret `target` (file VALUE) in the namespaces `synced`
 * names, each with the version its status entry records (undefined: the entry says it failed).
 * With `identityNamespace`, one ServiceAccount there reads for all (mode b).
 */
export function clusterSecretSyncObject(
  name: string,
  secretId: string,
  target: string,
  synced: Readonly<Record<string, string | undefined>>,
  identityNamespace?: string,
): KubernetesObject {
  const namespaces = Object.keys(synced);
  return {
    apiVersion: 'smk.dev/v1alpha1',
    kind: 'ClusterSecretSync',
    metadata: { name, resourceVersion: JSON.stringify(synced), generation: 1 },
    spec: {
      ...(identityNamespace ? {} : { namespaceSelector: { matchLabels: { shared: 'yes' } } }),
      namespaces,
      serviceAccountRef: { name: 'reader', ...(identityNamespace ? { namespace: identityNamespace } : {}) },
      objects: [{ objectName: secretId, objectType: 'secretsmanager', objectAlias: 'VALUE' }],
      target: { name: target },
    },
    status: {
      namespaces: Object.entries(synced).map(([namespace, version]) =>
        version
          ? {
              namespace,
              ready: true,
              reason: 'Synced',
              message: '',
              syncedVersions: [{ objectName: 'VALUE', versionId: version }],
            }
          : { namespace, ready: false, reason: 'AccessDenied', message: '' },
      ),
    },
  } as KubernetesObject;
}
