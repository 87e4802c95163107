/**
 * The Secrets the sync controller wrote: an index of them by owner (the `smk.dev/owner`
 * annotation, kept up to date by the managed-Secret informer), the resourceVersions of its own
 * writes (so the watch event a write causes is not taken for drift), and the writes themselves
 * as sync.ts asks for them (SyncDeps).
 */
import type { V1Secret } from '@kubernetes/client-node';
import { NotFoundError } from '../../core/errors.ts';
import type { Objects } from '../../kube/apply.ts';
import type { InformerHandlers } from '../../kube/informer.ts';
import { annotations } from '../jobs.ts';
import { adoptCreatedFields, createManager } from './plan.ts';
import type { SyncDeps } from './sync.ts';

export interface OwnedSecrets {
  /** Files (present) or unfiles a Secret under its owner marker. */
  index(secret: V1Secret, present: boolean): void;
  /** The cached Secrets in `namespace` carrying `marker` (e.g. `SecretSync/app`). */
  ownedBy(namespace: string, marker: string): V1Secret[];
  /** Notes a Secret as written by smk at its resourceVersion; returns it. */
  wrote(secret: V1Secret): V1Secret;
  /** True when `secret` is exactly what smk itself wrote last (its watch event is no news). */
  isOwnWrite(secret: V1Secret): boolean;
  /**
   * The managed-Secret informer's handlers: keep the index current, and tell `changed` of an
   * update or delete (drift to repair) after indexing it.
   */
  handlers(changed: (secret: V1Secret, deleted: boolean) => void): InformerHandlers<V1Secret>;
}

export function createOwnedSecrets(): OwnedSecrets {
  /** `namespace/owner marker` → the managed Secrets carrying it. */
  const byOwner = new Map<string, Map<string, V1Secret>>();
  /** `namespace/name` of a managed Secret → the owner key it is filed under. */
  const ownerOf = new Map<string, string>();
  /** Last resourceVersion smk itself wrote per Secret. */
  const ownWrites = new Map<string, string>();
  const ownerKey = (namespace: string, marker: string): string => `${namespace}/${marker}`;
  const idOf = (secret: V1Secret): string => `${secret.metadata?.namespace}/${secret.metadata?.name}`;

  const owned: OwnedSecrets = {
    index(secret, present) {
      const namespace = secret.metadata?.namespace;
      const name = secret.metadata?.name;
      if (!namespace || !name) return;
      const id = `${namespace}/${name}`;
      const marker = secret.metadata?.annotations?.[annotations.owner];
      const previous = ownerOf.get(id);
      if (previous !== undefined) {
        const secrets = byOwner.get(previous);
        secrets?.delete(name);
        if (secrets?.size === 0) byOwner.delete(previous);
        ownerOf.delete(id);
      }
      if (!present || !marker) return;
      const key = ownerKey(namespace, marker);
      const secrets = byOwner.get(key) ?? new Map<string, V1Secret>();
      secrets.set(name, secret);
      byOwner.set(key, secrets);
      ownerOf.set(id, key);
    },
    ownedBy(namespace, marker) {
      return [...(byOwner.get(ownerKey(namespace, marker))?.values() ?? [])];
    },
    wrote(secret) {
      if (secret.metadata?.resourceVersion) ownWrites.set(idOf(secret), secret.metadata.resourceVersion);
      return secret;
    },
    isOwnWrite(secret) {
      return ownWrites.get(idOf(secret)) === secret.metadata?.resourceVersion;
    },
    handlers(changed) {
      return {
        add: (secret) => owned.index(secret, true),
        update: (secret) => {
          owned.index(secret, true);
          changed(secret, false);
        },
        delete: (secret) => {
          owned.index(secret, false);
          changed(secret, true);
        },
      };
    },
  };
  return owned;
}

const secretRef = (namespace: string, name: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  namespace,
  name,
});

/** How a sync reads and writes Secrets: through `objects`, every write noted in `owned`. */
export function secretWrites(
  objects: Objects,
  owned: OwnedSecrets,
  cachedSecret: (namespace: string, name: string) => V1Secret | undefined,
): Pick<SyncDeps, 'cachedSecret' | 'readSecret' | 'createSecret' | 'adoptCreatedFields' | 'applySecret'> {
  return {
    cachedSecret,
    readSecret: (namespace, name) => objects.read<V1Secret>(secretRef(namespace, name)),
    async createSecret(body) {
      const created = await objects.create(body, createManager);
      return created && owned.wrote(created);
    },
    async adoptCreatedFields(namespace, name, resourceVersion, manager) {
      // The patch replaces the whole list: it is built from a fresh read, never from the cache
      // (which keeps only smk's entries).
      const fresh = await objects.read<V1Secret>(secretRef(namespace, name));
      if (!fresh) throw new NotFoundError(`Secret ${namespace}/${name}: not found`);
      // Changed since it was judged: the apply's resourceVersion precondition then fails (409) and
      // the sync is retried on what is there now.
      if (fresh.metadata?.resourceVersion !== resourceVersion) return resourceVersion;
      const entries = adoptCreatedFields(fresh.metadata?.managedFields, manager);
      if (!entries) return resourceVersion;
      const adopted = owned.wrote(
        await objects.replaceSecretManagedFields({ namespace, name }, resourceVersion, entries),
      );
      return adopted.metadata?.resourceVersion ?? resourceVersion;
    },
    applySecret: async (body, apply) => owned.wrote(await objects.apply(body, apply)),
  };
}
