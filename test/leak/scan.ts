/**
 * Where the leak scan looks, and how it names a hit: captured output of test processes (one file
 * per process, see capture.ts), the API server's audit log (every write's request and response —
 * Events, annotations, statuses, denial messages — with the `data` of Secrets left out, which
 * legitimately holds synced values), and any other text. A hit names the place and the secret,
 * never the value.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { captureMarker } from './capture-format.ts';
import type { Needle, NeedleMatcher } from './needles.ts';

export interface LeakHit {
  /** File and line, or audit event and field. */
  readonly where: string;
  /** Which secret (and version) leaked, and in which form. */
  readonly what: string;
}

function describe(needle: Needle): string {
  return `${needle.form} of ${needle.source}`;
}

/** Hits in a text, by line: `label:line`. Section markers (captured HTTP bodies) name their part. */
export function scanText(text: string, label: string, matcher: NeedleMatcher): LeakHit[] {
  const hits: LeakHit[] = [];
  // Fast reject: most files hold no needle at all.
  if (matcher.find(text).length === 0) return hits;
  let section = '';
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    if (line.startsWith(captureMarker)) {
      const label = line.slice(captureMarker.length).trim();
      section = label.startsWith('HTTP ') ? label : '';
      return;
    }
    for (const needle of matcher.find(line)) {
      hits.push({ where: `${label}:${index + 1}${section ? ` (${section})` : ''}`, what: describe(needle) });
    }
  });
  return hits;
}

/** Every file of a capture directory (see capture.ts); the first line of each names the process. */
export async function scanCaptureDir(dir: string, matcher: NeedleMatcher): Promise<LeakHit[]> {
  const hits: LeakHit[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return hits;
  }
  for (const name of names.sort()) {
    const text = (await readFile(join(dir, name))).toString('utf8');
    const firstLine = text.slice(0, text.indexOf('\n') === -1 ? text.length : text.indexOf('\n'));
    const process = firstLine.startsWith(captureMarker) ? firstLine.slice(captureMarker.length).trim() : name;
    hits.push(...scanText(text, `output of ${process} [${name}]`, matcher));
  }
  return hits;
}

interface AuditEvent {
  readonly auditID?: string;
  readonly verb?: string;
  readonly user?: { readonly username?: string };
  readonly objectRef?: {
    readonly resource?: string;
    readonly subresource?: string;
    readonly namespace?: string;
    readonly name?: string;
  };
  readonly requestObject?: unknown;
  readonly responseObject?: unknown;
  readonly responseStatus?: unknown;
  readonly annotations?: unknown;
}

/**
 * Drops `data` and `stringData` of every Secret in `value`: a Secret, a patch of one (no `kind`),
 * or a SecretList (its items carry no `kind`).
 */
function withoutSecretData(value: unknown, isSecret: boolean): unknown {
  if (Array.isArray(value)) return value.map((item) => withoutSecretData(item, isSecret));
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  const secret = record.kind === 'Secret' || (isSecret && record.kind === undefined);
  const list = record.kind === 'SecretList' || (isSecret && Array.isArray(record.items));
  const kept: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record)) {
    if (secret && (key === 'data' || key === 'stringData')) continue;
    kept[key] = withoutSecretData(item, list && key === 'items');
  }
  return kept;
}

/** `metadata.annotations["smk.dev/x"]`-style paths of the strings (and keys) holding a needle. */
function findPaths(value: unknown, path: string, matcher: NeedleMatcher, out: [string, Needle][]): void {
  if (typeof value === 'string') {
    for (const needle of matcher.find(value)) out.push([path, needle]);
    return;
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) findPaths(item, `${path}[${index}]`, matcher, out);
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const here = /^[A-Za-z_][\w]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
      for (const needle of matcher.find(key)) out.push([`${here} (the key)`, needle]);
      findPaths(item, here, matcher, out);
    }
  }
}

function eventLabel(event: AuditEvent): string {
  const ref = event.objectRef ?? {};
  const resource = ref.subresource ? `${ref.resource}/${ref.subresource}` : (ref.resource ?? '?');
  const name = [ref.namespace, ref.name].filter(Boolean).join('/');
  return `audit: ${event.verb ?? '?'} ${resource} ${name || '(collection)'} by ${event.user?.username ?? '?'} [${event.auditID ?? '?'}]`;
}

/** The API server's audit log (JSON lines). Secrets' `data`/`stringData` are not scanned. */
export async function scanAuditLog(path: string, matcher: NeedleMatcher): Promise<LeakHit[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [
      { where: path, what: 'the audit log could not be read, so nothing written to the bed was scanned' },
    ];
  }
  const hits: LeakHit[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || matcher.find(line).length === 0) continue;
    let event: AuditEvent;
    try {
      event = JSON.parse(line) as AuditEvent;
    } catch {
      continue;
    }
    const isSecret = event.objectRef?.resource === 'secrets' && event.objectRef.subresource === undefined;
    const found: [string, Needle][] = [];
    findPaths(withoutSecretData(event.requestObject, isSecret), 'requestObject', matcher, found);
    findPaths(withoutSecretData(event.responseObject, isSecret), 'responseObject', matcher, found);
    findPaths(event.responseStatus, 'responseStatus', matcher, found);
    findPaths(event.annotations, 'annotations', matcher, found);
    for (const [field, needle] of found)
      hits.push({ where: `${eventLabel(event)} ${field}`, what: describe(needle) });
  }
  return hits;
}

/** A report for people: where and which secret, never the value. */
export function formatHits(hits: readonly LeakHit[], limit = 50): string {
  const lines = hits.slice(0, limit).map((hit) => `  LEAK ${hit.what}\n       at ${hit.where}`);
  if (hits.length > limit) lines.push(`  … and ${hits.length - limit} more`);
  return lines.join('\n');
}
