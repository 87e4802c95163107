/**
 * Templates: one file (or Secret key) made from several values of the same spec, e.g. a DSN
 * `postgres://{{ db_user }}:{{ db_password | urlquery }}@db:5432/app`.
 *
 * The grammar is deliberately only substitution: `{{ name }}` or `{{ name | filter }}`, where name
 * is a file the spec produces (an objectAlias, a jmesPath alias, an extracted key) and filter one
 * of base64, json (a quoted JSON string) or urlquery (percent-encoded). No conditions, loops or
 * functions, so nothing runs and nothing can look at a value's content: a template fails only on
 * its own text (checked when the spec is parsed) or on a name the spec did not produce (a
 * structural fact, like a jmesPath path selecting nothing). Neither depends on a value's bytes,
 * so a template is no value oracle; errors name the template and the name, never a value.
 * A template reads only the payloads of its own spec: resolvePayloads gives it nothing else.
 */
import { InvalidInputError, TooLargeError } from './errors.ts';
import { maxValueBytes } from './extract.ts';
import { isExtractedKeyName } from './naming.ts';
import type { FileMode, Payload } from './spec-types.ts';

export const templateFilters = ['base64', 'json', 'urlquery'] as const;
export type TemplateFilter = (typeof templateFilters)[number];

/** A template as a role takes it: the file or key it makes and its text. */
export interface TemplateSource {
  /** File name (agent, `smk fetch`) or Secret key (SecretSync) the template makes. */
  readonly name: string;
  readonly text: string;
  /** Where the role read it, for messages: `spec.target.templates.dsn`, `smk.dev/template-dsn`. */
  readonly field: string;
  readonly mode?: FileMode;
}

type Part =
  | { readonly kind: 'text'; readonly bytes: Uint8Array }
  | { readonly kind: 'ref'; readonly name: string; readonly filter?: TemplateFilter };

export interface FileTemplate {
  readonly name: string;
  readonly field: string;
  readonly mode?: FileMode;
  readonly parts: readonly Part[];
  /** The names it reads, in order of first use. */
  readonly names: readonly string[];
}

/** A template is spec text, not a value; this bounds what one spec can make smk build. */
export const maxTemplateBytes = 16 * 1024;
const maxShownFragment = 40;
const referencePattern = /^\s*([-._a-zA-Z0-9/]+)\s*(?:\|\s*([a-z0-9]+)\s*)?$/;

const encoder = new TextEncoder();
/** Not fatal: a filter never fails on a value's bytes (invalid UTF-8 becomes U+FFFD). */
const lenientUtf8 = new TextDecoder('utf-8');

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

function shown(fragment: string): string {
  return JSON.stringify(
    fragment.length > maxShownFragment ? `${fragment.slice(0, maxShownFragment)}…` : fragment,
  );
}

/**
 * Parses one template's text. Throws InvalidInputError naming `subject`, the field and the
 * position of the first problem (quoting the template's own text, which is spec, not a value).
 */
export function parseTemplate(source: TemplateSource, subject: string): FileTemplate {
  const fail = (message: string): never => {
    throw new InvalidInputError(`${subject}: ${source.field}: ${message}`, {
      subject,
      field: source.field,
    });
  };
  const size = encoder.encode(source.text).byteLength;
  if (size > maxTemplateBytes) fail(`is ${size} bytes; expected at most ${maxTemplateBytes}`);
  const parts: Part[] = [];
  const names: string[] = [];
  let at = 0;
  while (at < source.text.length) {
    const open = source.text.indexOf('{{', at);
    if (open === -1) break;
    if (open > at) parts.push({ kind: 'text', bytes: encoder.encode(source.text.slice(at, open)) });
    const close = source.text.indexOf('}}', open + 2);
    if (close === -1) fail(`"{{" at ${lineAndColumn(source.text, open)} is not closed by "}}"`);
    const inner = source.text.slice(open + 2, close);
    const match = referencePattern.exec(inner);
    if (!match?.[1]) {
      fail(
        `${shown(`{{${inner}}}`)} at ${lineAndColumn(source.text, open)} is not a reference; expected {{ name }} or {{ name | ${templateFilters.join('|')} }}, where name is a file the objects produce`,
      );
    }
    const name = match?.[1] as string;
    const filter = match?.[2];
    if (filter !== undefined && !(templateFilters as readonly string[]).includes(filter)) {
      fail(
        `filter ${JSON.stringify(filter)} at ${lineAndColumn(source.text, open)} is not one of ${templateFilters.join(', ')}`,
      );
    }
    parts.push({
      kind: 'ref',
      name,
      ...(filter === undefined ? {} : { filter: filter as TemplateFilter }),
    });
    if (!names.includes(name)) names.push(name);
    at = close + 2;
  }
  if (at < source.text.length) parts.push({ kind: 'text', bytes: encoder.encode(source.text.slice(at)) });
  return {
    name: source.name,
    field: source.field,
    ...(source.mode === undefined ? {} : { mode: source.mode }),
    parts,
    names,
  };
}

/**
 * A role's templates (name → text) parsed: each name must be a valid Secret key and file name
 * (the same rule as extracted keys, so one template means the same in every role), each text
 * valid. `fieldOf` says where the role read a template (`smk.dev/template-dsn`).
 */
export function parseTemplates(
  templates: Readonly<Record<string, string>>,
  fieldOf: (name: string) => string,
  subject: string,
): FileTemplate[] {
  return Object.entries(templates).map(([name, text]) => {
    const field = fieldOf(name);
    if (!isExtractedKeyName(name)) {
      throw new InvalidInputError(
        `${subject}: ${field}: ${JSON.stringify(name.slice(0, maxShownFragment))} is not a valid name for a template's file or key; expected at most 253 of letters, digits, "-", "_", ".", not "." and not starting with ".."`,
        { subject, field },
      );
    }
    return parseTemplate({ name, text, field }, subject);
  });
}

/** The agent's SMK_TEMPLATES: the templates as a JSON object, name → text (what the webhook wrote). */
export function parseTemplatesJson(text: string, subject: string): FileTemplate[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    Array.isArray(parsed) ||
    Object.values(parsed).some((value) => typeof value !== 'string')
  ) {
    throw new InvalidInputError(`${subject}: expected a JSON object of template name → template text`, {
      subject,
    });
  }
  return parseTemplates(parsed as Record<string, string>, (name) => `template ${name}`, subject);
}

function applyFilter(bytes: Uint8Array, filter: TemplateFilter | undefined): Uint8Array {
  switch (filter) {
    case undefined:
      return bytes;
    case 'base64':
      return encoder.encode(Buffer.from(bytes).toString('base64'));
    case 'json':
      return encoder.encode(JSON.stringify(lenientUtf8.decode(bytes)));
    case 'urlquery':
      return encoder.encode(encodeURIComponent(lenientUtf8.decode(bytes)));
  }
}

/**
 * Renders every template from `payloads` (the spec's own files). A name the spec did not produce
 * fails, naming the template and the name and listing what the spec produces (names, never
 * values); all names of all templates are checked before any value is used. The version of a
 * template's output is the versions of what it read, so a change of any of them is a change.
 */
export function renderTemplates(
  payloads: readonly Payload[],
  templates: readonly FileTemplate[],
  defaultMode: FileMode,
  subject: string,
): Payload[] {
  const byName = new Map(payloads.map((payload) => [payload.name, payload]));
  for (const template of templates) {
    const missing = template.names.find((name) => !byName.has(name));
    if (missing !== undefined) {
      const known = [...byName.keys()].map((name) => JSON.stringify(name)).join(', ');
      throw new InvalidInputError(
        `${subject}: ${template.field}: {{ ${missing} }} names no file the objects produce; they produce ${known || 'nothing'}`,
        { subject, field: template.field },
      );
    }
  }
  return templates.map((template) => {
    const chunks = template.parts.map((part) =>
      part.kind === 'text' ? part.bytes : applyFilter((byName.get(part.name) as Payload).bytes, part.filter),
    );
    const bytes = Buffer.concat(chunks);
    if (bytes.byteLength > maxValueBytes) {
      throw new TooLargeError(
        `${subject}: ${template.field}: renders ${bytes.byteLength} bytes; expected at most ${maxValueBytes}`,
        { subject, field: template.field },
      );
    }
    const versions = [
      ...new Set(template.names.map((name) => (byName.get(name) as Payload).objectVersion.version)),
    ];
    return {
      name: template.name,
      bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      mode: template.mode ?? defaultMode,
      objectVersion: { id: template.name, version: versions.join(',') },
    };
  });
}
