/**
 * Writes to the API server: server-side apply with one field manager (`smk`) for what we own,
 * the status subresource of our custom resources, and reads that turn 404 into `undefined`.
 * Every failure is mapped through kubeError, so callers branch on sentinel classes.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1ManagedFieldsEntry,
  type V1Secret,
} from '@kubernetes/client-node';
import { apiStatus, type KubeConfig, kubeError } from './client.ts';

/** The one field manager smk applies with, so ownership of every field we write is visible. */
export const fieldManager = 'smk';

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface StatusRef {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface ApplyOptions {
  /** Take over fields another manager owns (only for objects smk owns, or an explicit merge). */
  readonly force?: boolean;
  /** Field manager; default `smk`. Only sources that share an object with other smk sources need their own. */
  readonly manager?: string;
}

export interface Objects {
  /** Server-side apply of `object` (which must carry apiVersion, kind, name, namespace). */
  apply<T extends KubernetesObject>(object: T, options?: ApplyOptions): Promise<T>;
  /** Creates `object` (POST) recording `manager`; undefined when an object of that name exists. */
  create<T extends KubernetesObject>(object: T, manager: string): Promise<T | undefined>;
  /**
   * Replaces a Secret's managedFields, only if it is still at `resourceVersion` (a JSON patch with a
   * test): how a field manager's entry is rewritten. Returns the Secret as written.
   */
  replaceSecretManagedFields(
    ref: Pick<ObjectRef, 'namespace' | 'name'>,
    resourceVersion: string,
    entries: readonly V1ManagedFieldsEntry[],
  ): Promise<V1Secret>;
  /** Server-side apply of `status` to a custom resource's status subresource. */
  applyStatus(ref: StatusRef, status: Record<string, unknown>): Promise<void>;
  /** The object, or undefined when it does not exist. */
  read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined>;
  /** JSON merge patch (for metadata like finalizers and owner references, where apply would claim them). */
  mergePatch<T extends KubernetesObject>(ref: ObjectRef, patch: Record<string, unknown>): Promise<T>;
  /** Deletes; true when it existed. `uid` makes the delete conditional on that exact object. */
  delete(ref: ObjectRef, uid?: string): Promise<boolean>;
}

function describeRef(ref: ObjectRef | StatusRef): string {
  return `${ref.kind} ${ref.namespace}/${ref.name}`;
}

function header(ref: ObjectRef): KubernetesObject & { metadata: { name: string; namespace: string } } {
  return {
    apiVersion: ref.apiVersion,
    kind: ref.kind,
    metadata: { name: ref.name, namespace: ref.namespace },
  };
}

/** The patch with apiVersion, kind, name and namespace filled in (the client builds the URL from them). */
function withHeader(ref: ObjectRef, patch: Record<string, unknown>): KubernetesObject {
  const base = header(ref);
  const metadata = (patch.metadata ?? {}) as Record<string, unknown>;
  return { ...patch, ...base, metadata: { ...metadata, ...base.metadata } };
}

export function createObjects(kubeConfig: KubeConfig): Objects {
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const applyContentType = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const jsonPatchContentType = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
  return {
    async create(object, manager) {
      const what = `${object.kind} ${object.metadata?.namespace}/${object.metadata?.name}`;
      try {
        return await objects.create(object, undefined, undefined, manager);
      } catch (error) {
        if (apiStatus(error) === 409) return undefined;
        throw kubeError(error, what);
      }
    },
    async replaceSecretManagedFields(ref, resourceVersion, entries) {
      try {
        return await core.patchNamespacedSecret(
          {
            namespace: ref.namespace,
            name: ref.name,
            fieldManager,
            body: [
              { op: 'test', path: '/metadata/resourceVersion', value: resourceVersion },
              { op: 'replace', path: '/metadata/managedFields', value: entries },
            ],
          },
          jsonPatchContentType,
        );
      } catch (error) {
        throw kubeError(error, `Secret ${ref.namespace}/${ref.name}`);
      }
    },
    async apply(object, options = {}) {
      const what = `${object.kind} ${object.metadata?.namespace}/${object.metadata?.name}`;
      try {
        return await objects.patch(
          object,
          undefined,
          undefined,
          options.manager ?? fieldManager,
          options.force ?? false,
          PatchStrategy.ServerSideApply,
        );
      } catch (error) {
        throw kubeError(error, what);
      }
    },
    async applyStatus(ref, status) {
      try {
        await custom.patchNamespacedCustomObjectStatus(
          {
            group: ref.group,
            version: ref.version,
            namespace: ref.namespace,
            plural: ref.plural,
            name: ref.name,
            body: {
              apiVersion: `${ref.group}/${ref.version}`,
              kind: ref.kind,
              metadata: { name: ref.name, namespace: ref.namespace },
              status,
            },
            fieldManager,
            force: true,
          },
          applyContentType,
        );
      } catch (error) {
        throw kubeError(error, `status of ${describeRef(ref)}`);
      }
    },
    async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
      try {
        return await objects.read<T>(header(ref));
      } catch (error) {
        if (apiStatus(error) === 404) return undefined;
        throw kubeError(error, describeRef(ref));
      }
    },
    async mergePatch<T extends KubernetesObject>(ref: ObjectRef, patch: Record<string, unknown>): Promise<T> {
      try {
        return await objects.patch<T>(
          withHeader(ref, patch) as T,
          undefined,
          undefined,
          fieldManager,
          undefined,
          PatchStrategy.MergePatch,
        );
      } catch (error) {
        throw kubeError(error, describeRef(ref));
      }
    },
    async delete(ref, uid) {
      try {
        await objects.delete(
          header(ref),
          undefined,
          undefined,
          undefined,
          undefined,
          'Background',
          uid ? { preconditions: { uid } } : undefined,
        );
        return true;
      } catch (error) {
        if (apiStatus(error) === 404) return false;
        throw kubeError(error, describeRef(ref));
      }
    },
  };
}
