/**
 * The manifests in examples/ as the tests and the demo use them: every YAML file of one example
 * directory, in the order a person would `kubectl apply -f` them (what others refer to first), applied
 * with server-side apply into one namespace — for real, or as a server-side dry run.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
} from '@kubernetes/client-node';

export const examplesDir = new URL('../../examples/', import.meta.url).pathname;

/** Kinds others refer to come first: a Deployment's ServiceAccount, a mapping's Secret source. */
const kindOrder = [
  'ServiceAccount',
  'SecretProviderClass',
  'SecretSync',
  'Secret',
  'Deployment',
  'Pod',
  'SecretsRotationMapping',
];

export interface ExampleObject extends KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
}

/** The example directories that hold Kubernetes manifests (not Helm values). */
export async function exampleNames(): Promise<string[]> {
  const entries = await readdir(examplesDir, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory() && entry.name !== 'helm')
    .map((entry) => entry.name)
    .sort();
}

/** Every object of `examples/<name>/*.yaml`, in apply order, each with its file for messages. */
export async function readExample(name: string): Promise<{ file: string; object: ExampleObject }[]> {
  const dir = join(examplesDir, name);
  const files = (await readdir(dir)).filter((file) => file.endsWith('.yaml')).sort();
  const found: { file: string; object: ExampleObject }[] = [];
  for (const file of files) {
    // Through the client's model types, as `kubectl apply` would send them.
    for (const object of loadAllYaml(await readFile(join(dir, file), 'utf8')) as ExampleObject[]) {
      if (object) found.push({ file: `examples/${name}/${file}`, object });
    }
  }
  const rank = (kind: string): number => {
    const at = kindOrder.indexOf(kind);
    return at === -1 ? kindOrder.length : at;
  };
  return found.sort((a, b) => rank(a.object.kind) - rank(b.object.kind));
}

/** `kubectl apply --server-side [--dry-run=server] -n NAMESPACE -f examples/<name>/`. */
export async function applyExample(
  kubeConfig: KubeConfig,
  name: string,
  namespace: string,
  options: { readonly dryRun?: boolean } = {},
): Promise<ExampleObject[]> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  const applied: ExampleObject[] = [];
  for (const { file, object } of await readExample(name)) {
    object.metadata.namespace = namespace;
    try {
      applied.push(
        (await client.patch(
          object,
          undefined,
          options.dryRun ? 'All' : undefined,
          'smk-examples',
          true,
          PatchStrategy.ServerSideApply,
        )) as ExampleObject,
      );
    } catch (error) {
      const body = (error as { body?: unknown }).body;
      throw new Error(
        `${file}: ${object.kind} ${object.metadata.name}: ${body === undefined ? String(error) : String(body)}`,
        { cause: error },
      );
    }
  }
  return applied;
}
