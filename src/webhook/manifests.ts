/**
 * `smk inject` without the I/O: multi-document YAML in → YAML out, with the webhook's pod
 * mutation applied to Pods and to the pod templates of workload kinds. Documents that need no
 * change are re-printed with their comments; errors name the document index, kind and name.
 */
import { type Document, isDocument, parseAllDocuments, stringify } from 'yaml';
import { type InjectorConfig, mutatePod } from './mutate.ts';
import { isRecord } from './pod.ts';

/** Where each kind keeps its pod template. */
export const templatePaths: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

/** One object of the input and whether the injection changed it (what `smk inject` reports). */
export interface InjectedObject {
  readonly kind: string;
  readonly name: string;
  readonly changed: boolean;
}

export type InjectManifestsResult =
  | {
      readonly ok: true;
      readonly yaml: string;
      readonly changed: number;
      readonly objects: readonly InjectedObject[];
    }
  | { readonly ok: false; readonly errors: readonly string[] };

type ObjectResult = { readonly object: unknown; readonly changed: boolean } | { readonly error: string };

function identify(object: unknown): { kind: string; name: string | undefined } {
  if (!isRecord(object)) return { kind: 'not an object', name: undefined };
  const kind = typeof object.kind === 'string' ? object.kind : 'unknown kind';
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const name =
    typeof metadata.name === 'string'
      ? metadata.name
      : typeof metadata.generateName === 'string'
        ? `${metadata.generateName}*`
        : undefined;
  return { kind, name };
}

function label(object: unknown): string {
  const { kind, name } = identify(object);
  return name === undefined ? kind : `${kind} ${name}`;
}

/** Applies the injection to one Kubernetes object (a Pod, a workload, or a List of them). */
export function injectObject(object: unknown, config: InjectorConfig): ObjectResult {
  if (!isRecord(object)) return { object, changed: false };
  if (object.kind === 'List' && Array.isArray(object.items)) {
    const items: unknown[] = [];
    let changed = false;
    for (const [index, item] of object.items.entries()) {
      const result = injectObject(item, config);
      if ('error' in result) return { error: `items[${index}] (${label(item)}): ${result.error}` };
      items.push(result.object);
      changed ||= result.changed;
    }
    return { object: changed ? { ...object, items } : object, changed };
  }
  const path = typeof object.kind === 'string' ? templatePaths[object.kind] : undefined;
  if (path === undefined) return { object, changed: false };
  let template: unknown = object;
  for (const key of path) template = isRecord(template) ? template[key] : undefined;
  if (template === undefined) {
    return path.length === 0
      ? { object, changed: false }
      : { error: `${path.join('.')} is missing; expected a pod template` };
  }
  const result = mutatePod(template, config);
  if ('denied' in result) return { error: result.denied };
  if (!result.changed) return { object, changed: false };
  if (path.length === 0) return { object: result.pod, changed: true };
  const copy = structuredClone(object);
  let parent: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
  parent[path[path.length - 1] as string] = result.pod;
  return { object: copy, changed: true };
}

function yamlLine(document: Document.Parsed): number | undefined {
  const error = document.errors[0];
  return error?.linePos?.[0]?.line;
}

/** Injects into every document of a multi-document YAML text. All or nothing: any error fails the whole input. */
export function injectManifests(text: string, config: InjectorConfig): InjectManifestsResult {
  // logLevel 'error': warnings are reported through our errors, never printed with the input quoted.
  const documents = parseAllDocuments(text, { logLevel: 'error' });
  if (!Array.isArray(documents)) return { ok: true, yaml: '', changed: 0, objects: [] };
  const errors: string[] = [];
  const output: string[] = [];
  const objects: InjectedObject[] = [];
  let changed = 0;
  for (const [index, document] of documents.entries()) {
    if (!isDocument(document)) continue;
    if (document.errors.length > 0) {
      const line = yamlLine(document);
      errors.push(`document ${index} is not valid YAML${line === undefined ? '' : ` (line ${line})`}`);
      continue;
    }
    const object: unknown = document.toJS({ maxAliasCount: 100 });
    if (object === null || object === undefined) continue;
    const result = injectObject(object, config);
    if ('error' in result) {
      errors.push(`document ${index} (${label(object)}): ${result.error}`);
      continue;
    }
    const { kind, name } = identify(object);
    objects.push({ kind, name: name ?? '', changed: result.changed });
    if (result.changed) {
      changed += 1;
      output.push(stringify(result.object, { lineWidth: 0 }));
    } else {
      // The separator is added when joining; a document's own `---` would double it.
      if (document.directives) document.directives.docStart = null;
      output.push(document.toString({ lineWidth: 0 }));
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    yaml: output.map((doc) => (doc.endsWith('\n') ? doc : `${doc}\n`)).join('---\n'),
    changed,
    objects,
  };
}
