/**
 * A Mount request as the Secrets Store CSI driver builds it for a pod: the SecretProviderClass
 * parameters, the volume's attributes, the pod's identity and the ServiceAccount token the driver's
 * CSIDriver tokenRequests asked for (audience sts.amazonaws.com). The demo and the examples test
 * send it to the provider's socket.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { MountRequest } from '../../src/csi/protocol.ts';

export const csiDriverName = 'secrets-store.csi.k8s.io';

export function mountRequestFor(
  pod: V1Pod,
  parameters: Readonly<Record<string, string>>,
  stsToken: string,
): MountRequest {
  const namespace = pod.metadata?.namespace ?? '';
  const volume = pod.spec?.volumes?.find((candidate) => candidate.csi?.driver === csiDriverName);
  if (!volume?.csi) throw new Error(`pod ${namespace}/${pod.metadata?.name} has no ${csiDriverName} volume`);
  const attributes: Record<string, string> = {
    ...parameters,
    ...(volume.csi.volumeAttributes ?? {}),
    'csi.storage.k8s.io/pod.name': pod.metadata?.name ?? '',
    'csi.storage.k8s.io/pod.namespace': namespace,
    'csi.storage.k8s.io/pod.uid': pod.metadata?.uid ?? '',
    'csi.storage.k8s.io/serviceAccount.name': pod.spec?.serviceAccountName ?? 'default',
    'csi.storage.k8s.io/ephemeral': 'false',
    'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({
      'sts.amazonaws.com': {
        token: stsToken,
        expirationTimestamp: new Date(Date.now() + 3600_000).toISOString(),
      },
    }),
  };
  return {
    attributes: JSON.stringify(attributes),
    secrets: '{}',
    target_path: `/var/lib/kubelet/pods/${pod.metadata?.uid}/volumes/kubernetes.io~csi/${volume.name}/mount`,
    permission: '420',
    current_object_version: [],
  };
}
