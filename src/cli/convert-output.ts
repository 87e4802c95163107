/**
 * `smk convert`'s shared shapes: what a converter found it could not carry over (an issue per
 * field), and how results are printed — manifests as YAML on stdout, the report on stderr.
 */
import { stringify } from 'yaml';
import type * as z from 'zod';

/**
 * One field of the input and what became of it. `unsupported`: smk has no equivalent, the output
 * would differ in behaviour (the command fails unless --allow-partial). `note`: carried over in
 * smk's own way, or dropped with no effect; said so the reader can check.
 */
export interface ConvertIssue {
  readonly severity: 'unsupported' | 'note';
  /** `ExternalSecret shop/db`, `Deployment shop/api`. */
  readonly subject: string;
  /** The field as written in the input: `spec.dataFrom[0].find`, `vault.hashicorp.com/role`. */
  readonly field: string;
  readonly message: string;
}

export interface Conversion {
  /** Objects to print, in input order. */
  readonly objects: unknown[];
  readonly issues: ConvertIssue[];
}

/** Issues for every field of `value` the schema does not know (`path` is where `value` sits). */
export function unknownFields(
  schema: z.ZodObject,
  value: unknown,
  subject: string,
  path: string,
  why = 'no smk equivalent',
): ConvertIssue[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.keys(value)
    .filter((key) => !(key in schema.shape))
    .map((key) => ({ severity: 'unsupported' as const, subject, field: `${path}.${key}`, message: why }));
}

/** Multi-document YAML, the separator `kubectl apply -f -` expects. */
export function printManifests(objects: readonly unknown[]): string {
  return objects.map((object) => stringify(object, { lineWidth: 0 })).join('---\n');
}

/** `unsupported ExternalSecret shop/db spec.dataFrom[0].find: …` — one line each, unsupported first. */
export function printIssues(issues: readonly ConvertIssue[]): string {
  const ordered = [...issues].sort((a, b) =>
    a.severity === b.severity ? 0 : a.severity === 'unsupported' ? -1 : 1,
  );
  return ordered
    .map((issue) => `${issue.severity} ${issue.subject} ${issue.field}: ${issue.message}\n`)
    .join('');
}
