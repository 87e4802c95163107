/**
 * Installs smk's CRDs (and test fixtures' CRDs) on the bed the one way that keeps their schemas
 * whole, and waits until each is served. Safe when several test files do it at once.
 */
import { readFile } from 'node:fs/promises';
import {
  ApiextensionsV1Api,
  CustomObjectsApi,
  type KubeConfig,
  KubernetesObjectApi,
  loadYaml,
  PatchStrategy,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { waitFor } from './wait.ts';

const root = new URL('../../', import.meta.url);

export const crdFiles = {
  secretSync: new URL('deploy/crds/smk.dev_secretsyncs.yaml', root),
  clusterSecretSync: new URL('deploy/crds/smk.dev_clustersecretsyncs.yaml', root),
  secretsRotationMapping: new URL('deploy/crds/secretsrotationmapping.yaml', root),
  /** A minimal copy of the Secrets Store CSI driver's CRD: the SecretProviderClass drop-in needs it. */
  secretProviderClass: new URL('test/controller/fixtures/secretproviderclass-crd.yaml', root),
} as const;

export async function installCrds(
  kubeConfig: KubeConfig,
  files: readonly URL[] = Object.values(crdFiles),
): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const extensions = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  for (const file of files) {
    // loadYaml builds the client's model objects: patch() serialises through them, and a plain
    // object would lose `enum`, `default` and `x-kubernetes-*` (model names `_enum`, …).
    const crd = loadYaml<V1CustomResourceDefinition>(await readFile(file, 'utf8'));
    await objects.patch(crd, undefined, undefined, 'smk-tests', true, PatchStrategy.ServerSideApply);
    const name = crd.metadata?.name ?? '';
    const version = crd.spec.versions.find((candidate) => candidate.served)?.name ?? '';
    await waitFor(`CRD ${name} established and served`, 30_000, async () => {
      const current = await extensions.readCustomResourceDefinition({ name });
      if (!current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'))
        return false;
      // Discovery can lag the Established condition a little: wait until a list works.
      await custom.listClusterCustomObject({
        group: crd.spec.group,
        version,
        plural: crd.spec.names.plural,
        limit: 1,
      });
      return true;
    });
  }
}
