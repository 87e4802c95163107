/**
 * Templates: one file (or Secret key) made from several values of the same spec, e.g. a DSN
 * `postgres://{{ db_user }}:{{ db_password | url_encode }}@db:5432/app`, in Liquid (liquidjs).
 *
 * liquidjs is an interpreter: a template is parsed into a tree and walked; nothing is compiled
 * or evaluated as JavaScript. smk configures it so a template cannot reach beyond its spec:
 * - no files: the include, render and layout tags are removed (a template using them fails to
 *   parse), and lookups would go to an empty in-memory map, never the file system;
 * - no other data: the scope holds only the spec's own files (name → text), no globals, and
 *   property lookups see own properties only (no `constructor`, no prototype);
 * - bounded work: 16 KiB of text, and a render budget in time and allocations per spec, so a
 *   tenant's template cannot stall the shared process that renders it;
 * - strict: an unknown filter fails to parse; every name a template reads is listed by static
 *   analysis and checked against the names the spec produces before anything is read from AWS
 *   (checkTemplateNames), and again, for extractKeys names, before any value is rendered.
 * A failure while rendering gets one message naming the template and never liquidjs's own (it
 * could quote a value). Why a render outcome may depend on values at all: docs/templates.md.
 */
import { Expression, Liquid, type Template, TypeGuards, toValueSync, Value } from 'liquidjs';
import { InvalidInputError } from './errors.ts';
import { isExtractedKeyName, jmesPathFileName, objectFileName } from './naming.ts';
import type { FileMode, MountSpec } from './spec-types.ts';

/** A template as a role takes it: the file or key it makes and its text. */
export interface TemplateSource {
  /** File name (agent, `smk fetch`) or Secret key (SecretSync) the template makes. */
  readonly name: string;
  readonly text: string;
  /** Where the role read it, for messages: `spec.target.templates.dsn`, `smk.dev/template-dsn`. */
  readonly field: string;
  readonly mode?: FileMode;
}

/** One name a template reads, where it first reads it (for messages). */
export interface TemplateReference {
  readonly name: string;
  /** `line 2, column 5` */
  readonly at: string;
}

export interface FileTemplate {
  readonly name: string;
  readonly field: string;
  readonly mode?: FileMode;
  /** The source text: a worker thread re-parses it (a parsed tree cannot cross threads). */
  readonly text: string;
  readonly parsed: readonly Template[];
  /** The spec's names it reads, in order of first use. */
  readonly names: readonly string[];
  readonly references: readonly TemplateReference[];
}

/** A template is spec text, not a value; this bounds what one spec can make smk parse. */
export const maxTemplateBytes = 16 * 1024;
/**
 * All templates of one spec render within this many milliseconds (liquidjs renderLimit). Wall
 * time, so it has room for a loaded node and a first render's warm-up (tens of ms measured at a
 * load average of 20 on 2 cores); a failed render is retried with the sync's backoff.
 */
export const renderBudgetMs = 250;
/** …and allocate at most this many units (liquidjs memoryLimit: string lengths, array sizes). */
export const renderMemoryLimit = 4 * 1024 * 1024;
/** A value is text in a template; the one property of a text is its length. */
const valueProperties: ReadonlySet<string> = new Set(['size']);
const maxShownFragment = 120;

/** Tags that read other templates (files); without them a template is self-contained. */
export const refusedTags = ['include', 'render', 'layout'] as const;

let engine: Liquid | undefined;
/**
 * The one engine, made on first use: building it costs tens of ms at a start, which roles that
 * never see a template (the CSI provider, the webhook without templates) should not pay.
 */
export function templateEngine(): Liquid {
  if (engine) return engine;
  engine = new Liquid({
    strictVariables: true,
    strictFilters: true,
    ownPropertyOnly: true,
    globals: {},
    // Any template lookup goes to this empty map, never to the file system (no root, no fs).
    templates: {},
    cache: false,
    parseLimit: maxTemplateBytes,
    renderLimit: renderBudgetMs,
    memoryLimit: renderMemoryLimit,
  });
  for (const tag of refusedTags) Reflect.deleteProperty(engine.tags, tag);
  return engine;
}

export const encoder = new TextEncoder();
/** Not fatal: a value that is not UTF-8 text renders with U+FFFD, it never fails on its bytes. */
export const lenientUtf8 = new TextDecoder('utf-8');

const fragment = (text: string): string =>
  text.length > maxShownFragment ? `${text.slice(0, maxShownFragment)}…` : text;

/** liquidjs's parse message (about the template's own text, never a value), made smk-shaped. */
function parseProblem(error: unknown): string {
  const message = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
  const tag = /^tag "([^"]+)" not found/.exec(message)?.[1];
  if (tag !== undefined && (refusedTags as readonly string[]).includes(tag)) {
    return `the ${tag} tag is not available: a template cannot read other templates or files`;
  }
  return fragment(message.replace(/, line:(\d+), col:(\d+)$/, ' at line $1, column $2'));
}

/**
 * liquidjs accepts an expression with operands and no operator between them (`{{ user password }}`
 * renders user, `{% if a b %}`): a typo that would silently drop a value. An expression is
 * well formed when its postfix form leaves exactly one value (binary operators take two, `not`
 * one). Returns the first ill-formed expression's token, to name where it is.
 */
function illFormedExpression(templates: readonly Template[]): Template['token'] | undefined {
  const wellFormed = (expression: Expression): boolean => {
    let depth = 0;
    for (const token of expression.postfix) {
      if (!TypeGuards.isOperatorToken(token)) depth += 1;
      else if (token.operator === 'not') {
        if (depth < 1) return false;
      } else {
        if (depth < 2) return false;
        depth -= 1;
      }
    }
    return depth === 1;
  };
  for (const template of templates) {
    for (const argument of template.arguments?.() ?? []) {
      const expression = argument instanceof Value ? argument.initial : argument;
      if (expression instanceof Expression && !wellFormed(expression)) return template.token;
    }
    const children = template.children ? toValueSync(template.children(false, true)) : [];
    const inner = illFormedExpression(children);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/** `{{ tls.key }}`, `{{ ["db.properties"] }}`: how a variable reads in the template. */
export function shownVariable(segments: readonly unknown[]): string {
  const path = segments
    .map((segment, position) => {
      if (typeof segment === 'string' && /^[a-zA-Z_][-\w]*$/.test(segment)) {
        return position === 0 ? segment : `.${segment}`;
      }
      return `[${typeof segment === 'string' || typeof segment === 'number' ? JSON.stringify(segment) : String(segment)}]`;
    })
    .join('');
  return `{{ ${fragment(path)} }}`;
}

/**
 * Parses one template's text and lists the names it reads (liquidjs static analysis). Throws
 * InvalidInputError naming `subject`, the field and the problem: its syntax, an unknown filter, a
 * refused tag, or a property a text does not have.
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
  let parsed: Template[] = [];
  let globals: ReturnType<Liquid['analyzeSync']>['globals'] = {};
  try {
    parsed = templateEngine().parse(source.text);
    globals = templateEngine().analyzeSync(parsed, { partials: false }).globals;
  } catch (error) {
    fail(parseProblem(error));
  }
  const illFormed = illFormedExpression(parsed);
  if (illFormed !== undefined) {
    const [row, col] = illFormed.getPosition();
    fail(
      `${JSON.stringify(fragment(illFormed.getText()))} at line ${row}, column ${col} is not one expression (two values with no operator between them, or an operator missing a value); expected one value and its filters, or values joined by ==, !=, <, >, <=, >=, contains, and, or`,
    );
  }
  const references: TemplateReference[] = [];
  const variables = Object.values(globals)
    .flat()
    .toSorted((a, b) => a.location.row - b.location.row || a.location.col - b.location.col);
  for (const variable of variables) {
    const [root, ...path] = variable.segments;
    const at = `line ${variable.location.row}, column ${variable.location.col}`;
    // liquidjs lists a lookup by another value (`{{ [k] }}`) under that value's name or not at
    // all; rendering sees only the names listed here, so such a lookup cannot reach further.
    const name = String(root);
    if (path.length > 0 && !(path.length === 1 && valueProperties.has(String(path[0])))) {
      const dotted = path.every((segment) => typeof segment === 'string')
        ? `; a name with dots is written {{ [${JSON.stringify([name, ...path].join('.'))}] }}`
        : '';
      fail(
        `${shownVariable(variable.segments)} at ${at}: a file's value is text, whose only property is .size${dotted}`,
      );
    }
    if (!references.some((reference) => reference.name === name)) references.push({ name, at });
  }
  return {
    name: source.name,
    field: source.field,
    ...(source.mode === undefined ? {} : { mode: source.mode }),
    text: source.text,
    parsed,
    names: references.map((reference) => reference.name),
    references,
  };
}

/**
 * What a spec's objects will produce, known before anything is read: the whole-value files'
 * and jmesPath aliases' names, and the prefixes of names extractKeys makes from a value's keys.
 */
export interface ProducedNames {
  readonly names: ReadonlySet<string>;
  readonly keyPrefixes: readonly string[];
  /** A `discover` entry: its names are the secrets it finds, known only after the listing. */
  readonly discovers: boolean;
}

export function producedNames(spec: MountSpec): ProducedNames {
  const names = new Set<string>();
  const keyPrefixes: string[] = [];
  let discovers = false;
  for (const object of spec.objects) {
    if (object.discover) discovers = true;
    else if (object.extractKeys) keyPrefixes.push(object.extractKeys.prefix);
    else names.add(objectFileName(object, spec.pathTranslation));
    for (const entry of object.jmesPath) names.add(jmesPathFileName(entry, spec.pathTranslation));
  }
  return { names, keyPrefixes, discovers };
}

export const listed = (names: Iterable<string>): string =>
  [...names].map((name) => JSON.stringify(name)).join(', ') || 'nothing';

/**
 * Every name each template reads must be one the spec produces: checked before anything is read
 * from AWS. A name extractKeys could make (it has an extractKeys prefix and is a valid key name)
 * is left to renderTemplates, which checks it against the keys the values had, before rendering;
 * so is any valid name when the spec discovers (the names are the secrets the listing finds).
 */
export function checkTemplateNames(
  templates: readonly FileTemplate[],
  spec: MountSpec,
  subject: string,
): void {
  const produced = producedNames(spec);
  for (const template of templates) {
    for (const { name, at } of template.references) {
      if (produced.names.has(name)) continue;
      if (produced.keyPrefixes.some((prefix) => name.startsWith(prefix)) && isExtractedKeyName(name))
        continue;
      // A discovered secret's name is known after the listing; renderTemplates checks it then.
      if (produced.discovers && isExtractedKeyName(name)) continue;
      const keys =
        produced.keyPrefixes.length === 0
          ? ''
          : `, and extractKeys names starting with ${listed(new Set(produced.keyPrefixes))}`;
      const dotted = [...produced.names].find((known) => known.startsWith(`${name}.`));
      const hint =
        dotted === undefined ? '' : `; a name with dots is written {{ [${JSON.stringify(dotted)}] }}`;
      throw new InvalidInputError(
        `${subject}: ${template.field}: ${shownVariable([name])} at ${at} names no file the objects produce; they produce ${listed(produced.names)}${keys}${hint}`,
        { subject, field: template.field },
      );
    }
  }
}

/**
 * A role's templates (name → text) parsed and checked against `spec`: each name must be a valid
 * Secret key and file name (the same rule as extracted keys, so one template means the same in
 * every role), each text valid, each name it reads one the spec produces. `fieldOf` says where the
 * role read a template (`smk.dev/template-dsn`).
 */
export function parseTemplates(
  templates: Readonly<Record<string, string>>,
  fieldOf: (name: string) => string,
  subject: string,
  spec: MountSpec,
): FileTemplate[] {
  const parsed = Object.entries(templates).map(([name, text]) => {
    const field = fieldOf(name);
    if (!isExtractedKeyName(name)) {
      throw new InvalidInputError(
        `${subject}: ${field}: ${JSON.stringify(fragment(name))} is not a valid name for a template's file or key; expected at most 253 of letters, digits, "-", "_", ".", not "." and not starting with ".."`,
        { subject, field },
      );
    }
    return parseTemplate({ name, text, field }, subject);
  });
  checkTemplateNames(parsed, spec, subject);
  return parsed;
}

/** The agent's SMK_TEMPLATES: the templates as a JSON object, name → text (what the webhook wrote). */
export function parseTemplatesJson(text: string, subject: string, spec: MountSpec): FileTemplate[] {
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
  return parseTemplates(parsed as Record<string, string>, (name) => `template ${name}`, subject, spec);
}
