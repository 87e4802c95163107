/**
 * Vault agent injector → smk injector: the `vault.hashicorp.com/*` annotations of a Pod or a
 * workload's pod template become `smk.dev/*` ones. A Vault secret path becomes the Secrets Manager
 * name as it is (create the secret under that name, or edit the output); the file keeps its name
 * and its directory (`/vault/secrets` unless `secret-volume-path` says otherwise), so the app reads
 * the same path. The identity is the pod's ServiceAccount's IAM role, not a Vault role.
 */
import { annotations as smk } from '../webhook/annotations.ts';
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

  const objects: Record<string, string>[] = [];
  for (const name of names.filter((candidate) => candidate.startsWith(secretPrefix)).sort()) {
    const file = name.slice(secretPrefix.length);
    const path = annotations[name]?.trim() ?? '';
    if (file === '' || path === '') {
      unsupported(name, 'expected agent-inject-secret-<file>: <vault path>');
      continue;
    }
    if (annotations[`${templatePrefix}${file}`] !== undefined) {
      unsupported(
        `${templatePrefix}${file}`,
        'templates: not in smk yet; the file gets the secret value as stored (JSON for a key/value secret)',
      );
    } else {
      note(
        name,
        `Vault path ${path} is used as the Secrets Manager name; Vault's default rendering (a Go map) becomes the value as stored`,
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
    const object: Record<string, string> = {
      objectName: path,
      objectType: 'secretsmanager',
      objectAlias: fileName,
    };
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
