/**
 * The controller's sealing key (../../core/seal.ts): generated at the first start and kept in a
 * Secret in smk's own namespace that only the controller may read (the chart creates it empty
 * and grants get/patch on it by name); the public half is published in a ConfigMap of the same
 * name for the webhook. Replicas agree through resourceVersion: a write that loses the race gets
 * 409 and the winner's key is read instead. A published key that is not this key's public half
 * is replaced, so the webhook never seals to a key nobody holds.
 */
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { TransientError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import {
  generateSealingKeyPair,
  parseSealingKeyPair,
  type SealingKeyPair,
  sealingKeyFields,
} from '../../core/seal.ts';
import type { Objects } from '../../kube/apply.ts';
import { apiStatus } from '../../kube/client.ts';

export interface SealingKeyStore {
  readonly namespace: string;
  /** Name of both the Secret (private half) and the ConfigMap (public half). */
  readonly name: string;
}

const labels = { 'app.kubernetes.io/managed-by': 'smk', 'app.kubernetes.io/component': 'write-through-key' };
const manager = 'smk-write-through';

async function loadOrCreate(
  objects: Objects,
  store: SealingKeyStore,
  logger: Logger,
): Promise<SealingKeyPair> {
  const ref = { apiVersion: 'v1', kind: 'Secret', namespace: store.namespace, name: store.name };
  const subject = `Secret ${store.namespace}/${store.name}`;
  for (let round = 0; round < 5; round += 1) {
    const secret = await objects.read<V1Secret>(ref);
    const pem = secret?.data?.[sealingKeyFields.privateKey];
    if (pem !== undefined && pem !== '') {
      return parseSealingKeyPair(Buffer.from(pem, 'base64').toString('utf8'), subject);
    }
    const fresh = generateSealingKeyPair();
    const data = { [sealingKeyFields.privateKey]: Buffer.from(fresh.privateKeyPem).toString('base64') };
    try {
      if (secret === undefined) {
        const made = await objects.create<V1Secret>(
          { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { ...ref, labels }, data },
          manager,
        );
        if (made === undefined) continue;
      } else {
        // resourceVersion makes it a compare-and-swap: a replica that wrote first wins.
        await objects.mergePatch(ref, {
          metadata: { resourceVersion: secret.metadata?.resourceVersion },
          data,
        });
      }
    } catch (error) {
      // 409: another replica stored its key first (kubeError keeps the API answer as the cause).
      if (apiStatus(error instanceof Error ? error.cause : undefined) === 409) continue;
      throw error;
    }
    logger.info({ secret: subject, keyId: fresh.publicKey.keyId }, 'write-through sealing key generated');
    return fresh;
  }
  throw new TransientError(`${subject}: the sealing key did not settle (replicas disagree?)`, { subject });
}

async function publish(objects: Objects, store: SealingKeyStore, keyPair: SealingKeyPair): Promise<void> {
  const ref = { apiVersion: 'v1', kind: 'ConfigMap', namespace: store.namespace, name: store.name };
  const data = {
    [sealingKeyFields.publicKey]: keyPair.publicKey.text,
    [sealingKeyFields.keyId]: keyPair.publicKey.keyId,
  };
  const map = await objects.read<V1ConfigMap>(ref);
  if (map === undefined) {
    const made = await objects.create<V1ConfigMap>(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { ...ref, labels }, data },
      manager,
    );
    if (made !== undefined) return;
  } else if (map.data?.[sealingKeyFields.publicKey] === keyPair.publicKey.text) {
    return;
  }
  await objects.mergePatch(ref, { data });
}

/** Loads (or makes) the key pair and publishes its public half. */
export async function loadSealingKey(
  objects: Objects,
  store: SealingKeyStore,
  logger: Logger,
): Promise<SealingKeyPair> {
  const keyPair = await loadOrCreate(objects, store, logger);
  await publish(objects, store, keyPair);
  return keyPair;
}
