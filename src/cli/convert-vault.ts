/**
 * Vault agent injector → smk injector: the `vault.hashicorp.com/*` annotations of a Pod or a
 * workload's pod template become `smk.dev/*` ones. A Vault secret path becomes the Secrets Manager
 * name as it is (create the secret under that name, or edit the output); the file keeps its name
 * and its directory (`/vault/secrets` unless `secret-volume-path` says otherwise), so the app reads
 * the same path. The identity is the pod's ServiceAccount's IAM role, not a Vault role. A template
 * that only inserts fields of its own secret becomes `smk.dev/template-<file>`.
 */
import { annotations as smk, templatePrefix as smkTemplatePrefix } from '../webhook/annotations.ts';
import { templatePaths } from '../webhook/manifests.ts';
import type { ConvertIssue } from './convert-output.ts';

const prefix = 'vault.hashicorp.com/';
const secretPrefix = `${prefix}agent-inject-secret-`;
const templatePrefix = `${prefix}agent-inject-template-`;
const filePrefix = `${prefix}agent-inject-file-`;
const permsPrefix = `${prefix}agent-inject-perms-`;
/** Where the Vault agent writes by default: kept, so the app's paths do not change. */
export const vaultSecretsDir = '/vault/secrets';
/** The Vault agent re-renders static secrets every 5 minutes by default; the refresh sidecar does the same. */
export const vaultRefreshInterval = '5m';

/** Annotations dropped with no effect on what the pod reads (said as notes). */
const dropped: Readonly<Record<string, string>> = {
  [`${prefix}role`]:
    "smk reads as the pod's ServiceAccount's IAM role (eks.amazonaws.com/role-arn): give it a role that may read these secrets",
  [`${prefix}agent-inject-status`]: 'set by the Vault injector; smk sets its own smk.dev/status',
  [`${prefix}auth-path`]: 'no Vault auth in smk',
  [`${prefix}namespace`]: 'no Vault namespaces in smk',
  [`${prefix}service`]: "no Vault address in smk; AWS is reached with the pod's region and role",
  [`${prefix}agent-init-first`]: "smk's init container always runs first",
};

const withSecret =
  /^(\s*)\{\{(-?)\s*with\s+secret\s+"([^"]+)"\s*(-?)\}\}([\s\S]*)\{\{(-?)\s*end\s*(-?)\}\}(\s*)$/;
const dataReference = /^\{\{\s*\.Data\.(?:data\.)?([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

/**
 * A Vault agent template that only inserts keys of the file's own secret → smk's template:
 * `{{ with secret "PATH" }}…{{ .Data.data.key }}…{{ end }}` (`.Data.key` for KV v1) → `…{{ key }}…`,
 * with the wrapper's `{{-`/`-}}` whitespace trimming applied as Go's text/template does. Undefined
 * for anything else: another path, functions, pipelines, ranges, trim markers inside.
 */
export function smkTemplateOfVault(text: string, path: string): { text: string; keys: string[] } | undefined {
  const wrapper = withSecret.exec(text);
  if (wrapper === null || wrapper[3] !== path) return undefined;
  const [, before = '', trimBefore, , trimAfterWith, inner = '', trimBeforeEnd, trimAfter, after = ''] =
    wrapper;
  let body = inner;
  if (trimAfterWith === '-') body = body.trimStart();
  if (trimBeforeEnd === '-') body = body.trimEnd();
  if (body.includes('{%')) return undefined;
  const keys: string[] = [];
  let result = '';
  let at = 0;
  while (at < body.length) {
    const open = body.indexOf('{{', at);
    if (open === -1) break;
    const close = body.indexOf('}}', open + 2);
    if (close === -1) return undefined;
    const key = dataReference.exec(body.slice(open, close + 2))?.[1];
    if (key === undefined) return undefined;
    if (!keys.includes(key)) keys.push(key);
    result += `${body.slice(at, open)}{{ ${key} }}`;
    at = close + 2;
  }
  const rest = body.slice(at);
  if (rest.includes('}}')) return undefined;
  return {
    text: `${trimBefore === '-' ? '' : before}${result}${rest}${trimAfter === '-' ? '' : after}`,
    keys,
  };
}

export interface VaultAnnotationResult {
  /** The new annotations (vault ones removed, smk ones added); undefined when the pod did not use Vault. */
  readonly annotations?: Record<string, string>;
  readonly issues: ConvertIssue[];
}

/** The pod annotations of one object → smk's. Pure; `subject` names the object in issues. */
export function convertVaultAnnotations(
  annotations: Readonly<Record<string, string>>,
  subject: string,
): VaultAnnotationResult {
  const names = Object.keys(annotations).filter((name) => name.startsWith(prefix));
  if (names.length === 0) return { issues: [] };
  const issues: ConvertIssue[] = [];
  const unsupported = (field: string, message: string): void => {
    issues.push({ severity: 'unsupported', subject, field, message });
  };
  const note = (field: string, message: string): void => {
    issues.push({ severity: 'note', subject, field, message });
  };
  const inject = annotations[`${prefix}agent-inject`]?.trim().toLowerCase();
  const kept = Object.fromEntries(Object.entries(annotations).filter(([name]) => !name.startsWith(prefix)));
  if (inject !== 'true' && inject !== 'yes' && inject !== 'on' && inject !== '1') {
    note(
      `${prefix}agent-inject`,
      'injection is not on; the vault annotations are removed and nothing is injected',
    );
    return { annotations: kept, issues };
  }

  const objects: Record<string, string | boolean>[] = [];
  const templates: Record<string, string> = {};
  for (const name of names.filter((candidate) => candidate.startsWith(secretPrefix)).sort()) {
    const file = name.slice(secretPrefix.length);
    const path = annotations[name]?.trim() ?? '';
    if (file === '' || path === '') {
      unsupported(name, 'expected agent-inject-secret-<file>: <vault path>');
      continue;
    }
    const templateText = annotations[`${templatePrefix}${file}`];
    const template = templateText === undefined ? undefined : smkTemplateOfVault(templateText, path);
    if (templateText !== undefined && template === undefined) {
      unsupported(
        `${templatePrefix}${file}`,
        `only a {{ with secret "${path}" }} block whose body inserts fields of that secret ({{ .Data.<key> }}, for KV v2 under .Data's data) converts; functions, pipelines, ranges and other secrets have no smk template equivalent`,
      );
    }
    if (template === undefined) {
      note(
        name,
        `Vault path ${path} is used as the Secrets Manager name; Vault's default rendering (a Go map) becomes the value as stored`,
      );
    } else {
      note(
        `${templatePrefix}${file}`,
        `→ ${smkTemplatePrefix}<file>, reading the keys of the JSON secret ${path} (extractKeys); each key is also a file in the directory, and a key name used twice fails the pod's objects (add a keyPrefix)`,
      );
    }
    const fileName = annotations[`${filePrefix}${file}`]?.trim() || file;
    if (fileName.includes('/')) {
      unsupported(
        `${filePrefix}${file}`,
        'a file in a sub-directory; smk writes every file into one directory',
      );
      continue;
    }
    const object: Record<string, string | boolean> = {
      objectName: path,
      objectType: 'secretsmanager',
      ...(template === undefined ? { objectAlias: fileName } : { extractKeys: true }),
    };
    if (template !== undefined) templates[fileName] = template.text;
    const perms = annotations[`${permsPrefix}${file}`]?.trim();
    if (perms !== undefined) {
      if (/^0?[0-7]{3}$/.test(perms)) object.filePermission = perms.padStart(4, '0');
      else unsupported(`${permsPrefix}${file}`, 'expected octal permission bits like 0440');
    }
    objects.push(object);
  }
  if (objects.length === 0) {
    unsupported(`${secretPrefix}*`, 'no secret to inject is left');
    return { issues };
  }

  const result: Record<string, string> = {
    ...kept,
    [smk.inject]: 'true',
    [smk.objects]: JSON.stringify(objects),
    [smk.mountPath]: annotations[`${prefix}secret-volume-path`]?.trim() || vaultSecretsDir,
  };
  for (const [file, text] of Object.entries(templates)) result[`${smkTemplatePrefix}${file}`] = text;
  const prePopulateOnly = annotations[`${prefix}agent-pre-populate-only`]?.trim().toLowerCase() === 'true';
  if (!prePopulateOnly) result[smk.refreshInterval] = vaultRefreshInterval;

  const handled = new Set([
    `${prefix}agent-inject`,
    `${prefix}secret-volume-path`,
    `${prefix}agent-pre-populate-only`,
  ]);
  for (const name of names) {
    if (handled.has(name) || name.startsWith(secretPrefix) || name.startsWith(templatePrefix)) continue;
    if (name.startsWith(filePrefix) || name.startsWith(permsPrefix)) continue;
    const why = dropped[name];
    if (why !== undefined) note(name, why);
    else unsupported(name, 'no smk equivalent');
  }
  return { annotations: result, issues };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A Pod or workload whose pod template uses the Vault injector → the same object with smk's
 * annotations; undefined when it does not use Vault.
 */
export function convertVaultObject(object: unknown): { object?: unknown; issues: ConvertIssue[] } {
  if (!isRecord(object) || typeof object.kind !== 'string') return { issues: [] };
  const path = templatePaths[object.kind];
  if (path === undefined) return { issues: [] };
  let template: unknown = object;
  for (const key of path) template = isRecord(template) ? template[key] : undefined;
  const metadata = isRecord(template) && isRecord(template.metadata) ? template.metadata : undefined;
  const annotations = metadata && isRecord(metadata.annotations) ? metadata.annotations : undefined;
  if (annotations === undefined) return { issues: [] };
  const strings = Object.fromEntries(
    Object.entries(annotations).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
  const outer = isRecord(object.metadata) ? object.metadata : {};
  const subject = `${object.kind} ${typeof outer.namespace === 'string' ? `${outer.namespace}/` : ''}${typeof outer.name === 'string' ? outer.name : '?'}`;
  const result = convertVaultAnnotations(strings, subject);
  if (result.annotations === undefined) return { issues: result.issues };
  const copy = structuredClone(object);
  let target: Record<string, unknown> = copy;
  for (const key of path) target = target[key] as Record<string, unknown>;
  (target.metadata as Record<string, unknown>).annotations = result.annotations;
  return { object: copy, issues: result.issues };
}
