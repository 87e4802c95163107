/**
 * Writes to the API server: server-side apply with one field manager (`smk`) for what we own,
 * the status subresource of our custom resources, and reads that turn 404 into `undefined`.
 * Every failure is mapped through kubeError, so callers branch on sentinel classes.
 */
import type { KubernetesObject, V1ManagedFieldsEntry, V1Secret } from '@kubernetes/client-node';
import { InvalidInputError } from '../core/errors.ts';
import { apiStatus, type KubeConfig, kubeError } from './client.ts';
import { createKubeHttp, pathOf, resourcePath } from './http.ts';

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

/** The patch with apiVersion, kind, name and namespace filled in. */
function withHeader(ref: ObjectRef, patch: Record<string, unknown>): KubernetesObject {
  const base = header(ref);
  const metadata = (patch.metadata ?? {}) as Record<string, unknown>;
  return { ...patch, ...base, metadata: { ...metadata, ...base.metadata } };
}

function refOf(object: KubernetesObject): ObjectRef {
  return {
    apiVersion: object.apiVersion ?? '',
    kind: object.kind ?? '',
    namespace: object.metadata?.namespace ?? '',
    name: object.metadata?.name ?? '',
  };
}

/** These are the calls made per object (thousands at a cold start), so they go through KubeHttp. */
export function createObjects(kubeConfig: KubeConfig): Objects {
  const http = createKubeHttp(kubeConfig);

  async function objectPath(ref: ObjectRef): Promise<string> {
    // Without a name the path would be the collection: a GET would list, a DELETE delete them all.
    if (!ref.name) throw new InvalidInputError(`${describeRef(ref)}: no name`, { subject: describeRef(ref) });
    try {
      const resource = await http.resource(ref.apiVersion, ref.kind);
      return pathOf(resource, ref.namespace, { name: ref.name });
    } catch (error) {
      throw kubeError(error, describeRef(ref));
    }
  }

  return {
    async create<T extends KubernetesObject>(object: T, manager: string): Promise<T | undefined> {
      const ref = refOf(object);
      try {
        const resource = await http.resource(ref.apiVersion, ref.kind);
        return await http.send<T>({
          method: 'POST',
          path: pathOf(resource, ref.namespace),
          query: { fieldManager: manager },
          body: object,
        });
      } catch (error) {
        if (apiStatus(error) === 409) return undefined;
        throw kubeError(error, describeRef(ref));
      }
    },
    async replaceSecretManagedFields(ref, resourceVersion, entries) {
      try {
        return await http.send<V1Secret>({
          method: 'PATCH',
          path: resourcePath('v1', 'secrets', ref.namespace, { name: ref.name }),
          query: { fieldManager },
          contentType: 'application/json-patch+json',
          body: [
            { op: 'test', path: '/metadata/resourceVersion', value: resourceVersion },
            { op: 'replace', path: '/metadata/managedFields', value: entries },
          ],
        });
      } catch (error) {
        throw kubeError(error, `Secret ${ref.namespace}/${ref.name}`);
      }
    },
    async apply<T extends KubernetesObject>(object: T, options: ApplyOptions = {}): Promise<T> {
      const ref = refOf(object);
      try {
        return await http.send<T>({
          method: 'PATCH',
          path: await objectPath(ref),
          query: { fieldManager: options.manager ?? fieldManager, force: options.force ?? false },
          contentType: 'application/apply-patch+yaml',
          body: object,
        });
      } catch (error) {
        throw kubeError(error, describeRef(ref));
      }
    },
    async applyStatus(ref, status) {
      try {
        await http.send({
          method: 'PATCH',
          path: resourcePath(`${ref.group}/${ref.version}`, ref.plural, ref.namespace, {
            name: ref.name,
            subresource: 'status',
          }),
          query: { fieldManager, force: true },
          contentType: 'application/apply-patch+yaml',
          discardAnswer: true,
          body: {
            apiVersion: `${ref.group}/${ref.version}`,
            kind: ref.kind,
            metadata: { name: ref.name, namespace: ref.namespace },
            status,
          },
        });
      } catch (error) {
        throw kubeError(error, `status of ${describeRef(ref)}`);
      }
    },
    async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
      // Outside the try: a kind the API server does not serve is an error, not an absent object.
      const path = await objectPath(ref);
      try {
        return await http.send<T>({ method: 'GET', path });
      } catch (error) {
        if (apiStatus(error) === 404) return undefined;
        throw kubeError(error, describeRef(ref));
      }
    },
    async mergePatch<T extends KubernetesObject>(ref: ObjectRef, patch: Record<string, unknown>): Promise<T> {
      try {
        return await http.send<T>({
          method: 'PATCH',
          path: await objectPath(ref),
          query: { fieldManager },
          contentType: 'application/merge-patch+json',
          body: withHeader(ref, patch),
        });
      } catch (error) {
        throw kubeError(error, describeRef(ref));
      }
    },
    async delete(ref, uid) {
      const path = await objectPath(ref);
      try {
        await http.send({
          method: 'DELETE',
          path,
          body: {
            apiVersion: 'v1',
            kind: 'DeleteOptions',
            propagationPolicy: 'Background',
            ...(uid ? { preconditions: { uid } } : {}),
          },
        });
        return true;
      } catch (error) {
        if (apiStatus(error) === 404) return false;
        throw kubeError(error, describeRef(ref));
      }
    },
  };
}
