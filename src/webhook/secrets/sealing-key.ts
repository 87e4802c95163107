/**
 * The public half of the controller's sealing key, as the webhook reads it: the ConfigMap the
 * controller publishes in smk's namespace (src/controller/write-through/sealing-key.ts). Read on
 * first use and kept for `ttlMs`, so admission costs no API call in the steady state and a key
 * published after the webhook started is picked up. The webhook never sees the private half.
 */
import type { V1ConfigMap } from '@kubernetes/client-node';
import { TransientError } from '../../core/errors.ts';
import { parseSealingPublicKey, type SealingPublicKey, sealingKeyFields } from '../../core/seal.ts';
import { apiStatus, kubeError } from '../../kube/api-errors.ts';
import type { KubeAccess } from '../../kube/endpoint.ts';
import { createKubeHttp, resourcePath } from '../../kube/http.ts';

export interface PublishedKeyOptions {
  readonly namespace: string;
  readonly name: string;
  /** How long a read key is used before it is read again (default 60 s). */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

export function publishedKeySource(
  kubeConfig: KubeAccess,
  options: PublishedKeyOptions,
): () => Promise<SealingPublicKey> {
  const http = createKubeHttp(kubeConfig);
  const path = resourcePath('v1', 'configmaps', options.namespace, { name: options.name });
  const subject = `ConfigMap ${options.namespace}/${options.name}`;
  const ttlMs = options.ttlMs ?? 60_000;
  const now = options.now ?? Date.now;
  let cached: { key: SealingPublicKey; at: number } | undefined;
  let reading: Promise<SealingPublicKey> | undefined;

  async function read(): Promise<SealingPublicKey> {
    let text: string | undefined;
    try {
      const map = await http.send<V1ConfigMap>({ method: 'GET', path });
      text = map.data?.[sealingKeyFields.publicKey];
    } catch (error) {
      if (apiStatus(error) !== 404) throw kubeError(error, subject);
    }
    if (text === undefined || text === '') {
      throw new TransientError(
        `${subject} holds no sealing key yet (the write-through controller publishes it when it starts)`,
        { subject },
      );
    }
    const key = parseSealingPublicKey(text, subject);
    cached = { key, at: now() };
    return key;
  }

  return async () => {
    if (cached && now() - cached.at < ttlMs) return cached.key;
    reading ??= read().finally(() => {
      reading = undefined;
    });
    return reading;
  };
}
