/**
 * The chart as the tests see it: rendered by a real `helm` (test/tools/build-helm.sh builds it from
 * the Go module proxy once, then reuses the cached binary), parsed into objects, and applied to the
 * test bed with server-side apply (dry-run or for real).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import {
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
export const chartDir = `${root}deploy/helm/smk`;
export const crdDir = `${root}deploy/crds`;
export const fixtures = new URL('./fixtures/', import.meta.url).pathname;
/** The bed's Kubernetes version (test/testbed/build.sh), so Capabilities match what we apply to. */
export const kubeVersion = process.env.SMK_K8S_VERSION ?? 'v1.35.4';

export type RenderedObject = KubernetesObject & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
};

let helmPath: Promise<string> | undefined;

/** The helm binary: SMK_HELM, else build-helm.sh's cached build (built on first use: minutes). */
export function helm(): Promise<string> {
  helmPath ??= (async () => {
    if (process.env.SMK_HELM) return process.env.SMK_HELM;
    const { stdout } = await run('bash', [`${root}test/tools/build-helm.sh`], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const path = stdout.trim().split('\n').at(-1);
    if (!path) throw new Error('test/tools/build-helm.sh printed no path');
    return path;
  })();
  return helmPath;
}

export interface RenderOptions {
  readonly release: string;
  readonly namespace: string;
  readonly valuesFiles?: readonly string[];
  /** --set-json key=json pairs. */
  readonly setJson?: Readonly<Record<string, unknown>>;
}

/** `helm template` output: the text and its documents as objects (empty documents dropped). */
export async function renderChart(
  options: RenderOptions,
): Promise<{ text: string; objects: RenderedObject[] }> {
  const args = [
    'template',
    options.release,
    chartDir,
    '--namespace',
    options.namespace,
    '--kube-version',
    kubeVersion,
    ...(options.valuesFiles ?? []).flatMap((file) => ['--values', file]),
    ...Object.entries(options.setJson ?? {}).flatMap(([key, value]) => [
      '--set-json',
      `${key}=${JSON.stringify(value)}`,
    ]),
  ];
  const { stdout } = await run(await helm(), args, { maxBuffer: 64 * 1024 * 1024 });
  const objects: RenderedObject[] = [];
  for (const document of parseAllDocuments(stdout)) {
    if (document.errors.length > 0)
      throw new Error(`helm rendered invalid YAML: ${document.errors[0]?.message}`);
    const object = document.toJS() as RenderedObject | null;
    if (object !== null) objects.push(object);
  }
  return { text: stdout, objects };
}

/** Every document of a YAML file. */
export async function readYamlObjects(path: string): Promise<RenderedObject[]> {
  return parseAllDocuments(await readFile(path, 'utf8'))
    .map((document) => document.toJS() as RenderedObject | null)
    .filter((object): object is RenderedObject => object !== null);
}

export function find(objects: readonly RenderedObject[], kind: string, name?: string): RenderedObject {
  const found = objects.find(
    (object) => object.kind === kind && (name === undefined || object.metadata.name === name),
  );
  if (!found) throw new Error(`rendered chart has no ${kind}${name ? ` ${name}` : ''}`);
  return found;
}

/**
 * The controller's ServiceAccount, its RBAC and the admission policies that limit what it does with
 * that RBAC, in a rendered chart: what it needs to run as itself, and no more than the chart gives it.
 */
export function controllerAccess(objects: readonly RenderedObject[]): RenderedObject[] {
  return objects.filter(
    (object) =>
      (object.metadata.labels as Record<string, string> | undefined)?.['app.kubernetes.io/component'] ===
        'controller' &&
      [
        'ServiceAccount',
        'ClusterRole',
        'ClusterRoleBinding',
        'Role',
        'RoleBinding',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
      ].includes(object.kind),
  );
}

/** Server-side apply, as `kubectl apply --server-side [--dry-run=server]` does. */
export async function serverSideApply(
  kubeConfig: KubeConfig,
  object: RenderedObject,
  options: { readonly dryRun: boolean; readonly fieldManager?: string },
): Promise<RenderedObject> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  return (await client.patch(
    object,
    undefined,
    options.dryRun ? 'All' : undefined,
    options.fieldManager ?? 'smk-chart-test',
    true,
    PatchStrategy.ServerSideApply,
  )) as RenderedObject;
}

export function objectName(object: RenderedObject): string {
  return `${object.kind} ${object.metadata.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata.name}`;
}
