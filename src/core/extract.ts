/**
 * What bytes a file gets: the whole value, or a jmesPath selection from a JSON value.
 *
 * Like ASCP, a selection must be a string: numbers and booleans are refused rather than
 * guessed at (`5432` vs `5432.0`). Error messages name the object and the path, never the value.
 *
 * What a failure may say is chosen so that a status or event never tells a value: a plain field
 * path (./field-path.ts) fails only on the value's structure (no such key, not a string), so its
 * error names the entry; a full expression (allowed only by the administrator, run by
 * ./expressions.ts) can fail because of the value's text (`starts_with(password, 'a')`), so all
 * expression failures of a spec give one message naming neither the object nor the entry — and
 * they are reported only when nothing structural failed, whose report then never depends on them.
 */
import { InvalidInputError, TooLargeError } from './errors.ts';
import type { ExpressionEvaluator } from './expressions.ts';
import { notPlainFieldPath, parseFieldPath, selectField } from './field-path.ts';
import { isExtractedKeyName } from './naming.ts';
import type { JmesPathEntry } from './spec-types.ts';

/** Secrets Manager's limit for one value; SSM parameters are smaller still. */
export const maxValueBytes = 65_536;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** The whole value as stored (SecretString as UTF-8, SecretBinary raw), refused above 64 KiB. */
export function wholeValue(bytes: Uint8Array, subject: string): Uint8Array {
  if (bytes.byteLength > maxValueBytes) {
    throw new TooLargeError(
      `${subject}: value is ${bytes.byteLength} bytes; expected at most ${maxValueBytes} (the Secrets Manager limit)`,
      { subject },
    );
  }
  return bytes;
}

function kindOf(result: unknown): string {
  if (result === null) return 'null';
  if (Array.isArray(result)) return 'a list';
  if (typeof result === 'object') return 'an object';
  return `a ${typeof result}`;
}

/** One file of an extractKeys object: its name (prefix + key) and bytes. */
export interface ExtractedKey {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/**
 * Every top-level key of a JSON object value as its own file (ESO's dataFrom.extract): a string
 * gives its text, anything else (number, boolean, null, object, list) its JSON text, so a nested
 * object stays one JSON document and `5432` stays `5432` (`5432.0` is written `5432`, as JSON.parse
 * reads it). A key whose name (prefix + key) is not a valid name (naming.ts) fails the object; the
 * error gives its position, not its text, as a key that is not a name may be anything.
 */
export function extractKeys(bytes: Uint8Array, prefix: string, subject: string): ExtractedKey[] {
  wholeValue(bytes, subject);
  const fail = (why: string): never => {
    throw new InvalidInputError(`${subject}: extractKeys needs a JSON object, but the value ${why}`, {
      subject,
      field: 'extractKeys',
    });
  };
  let data: unknown = null;
  try {
    data = JSON.parse(utf8.decode(bytes));
  } catch {
    fail('is not UTF-8 JSON text');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) fail(`is ${kindOf(data)}`);
  const entries = Object.entries(data as Record<string, unknown>);
  return entries.map(([key, value], position) => {
    const name = `${prefix}${key}`;
    if (!isExtractedKeyName(name)) {
      throw new InvalidInputError(
        `${subject}: extractKeys: key ${position + 1} of ${entries.length} (in the value's order) does not give a valid name with keyPrefix ${JSON.stringify(prefix)}; expected at most 253 of letters, digits, "-", "_", ".", not "." and not starting with ".." (the key is not shown: it may not be a name at all)`,
        { subject, field: 'extractKeys' },
      );
    }
    return { name, bytes: encoder.encode(typeof value === 'string' ? value : JSON.stringify(value)) };
  });
}

/** One object's selections before its expressions ran. */
export interface FieldSelections {
  /** One per entry, in entry order; undefined where an expression's result goes. */
  readonly selections: readonly (Uint8Array | undefined)[];
  /** The value as JSON text and the expressions still to run, when the object has some. */
  readonly pending?: {
    readonly json: string;
    readonly positions: readonly number[];
    readonly expressions: readonly string[];
  };
}

/**
 * Parses the value once and selects every plain field path; expressions are left for
 * evaluateExpressions (and refused here unless `expressionsAllowed`). Throws an
 * InvalidInputError naming the object and entry, about the value's structure only.
 */
export function selectFields(
  bytes: Uint8Array,
  entries: readonly JmesPathEntry[],
  subject: string,
  expressionsAllowed: boolean,
): FieldSelections {
  if (entries.length === 0) return { selections: [] };
  wholeValue(bytes, subject);
  const notJson = (why: string): never => {
    throw new InvalidInputError(`${subject}: jmesPath needs a JSON value, but the value ${why}`, {
      subject,
      field: 'jmesPath',
    });
  };
  let text = '';
  try {
    text = utf8.decode(bytes);
  } catch {
    notJson('is not UTF-8 text');
  }
  let data: unknown = null;
  try {
    data = JSON.parse(text);
  } catch {
    notJson('is not valid JSON');
  }

  const selections: (Uint8Array | undefined)[] = [];
  const positions: number[] = [];
  const expressions: string[] = [];
  for (const [position, entry] of entries.entries()) {
    const field = `jmesPath[${position}].path`;
    const parsed = parseFieldPath(entry.path);
    if (!parsed.ok) {
      if (!expressionsAllowed) {
        throw new InvalidInputError(`${subject}: ${notPlainFieldPath(field, parsed.at)}`, { subject, field });
      }
      selections.push(undefined);
      positions.push(position);
      expressions.push(entry.path);
      continue;
    }
    const fail = (what: string): never => {
      throw new InvalidInputError(`${subject}: jmesPath[${position}] (${entry.path}) ${what}`, {
        subject,
        field,
      });
    };
    const result = selectField(data, parsed.path);
    if (result === undefined) fail('selects nothing; expected a path to a string in the JSON value');
    if (typeof result === 'string') {
      selections.push(encoder.encode(result));
      continue;
    }
    const hint =
      typeof result === 'number' || typeof result === 'boolean'
        ? ' (store it in the secret as a JSON string, or, where expressions are enabled, write to_string(...))'
        : '';
    fail(`selects ${kindOf(result)}; expected a string${hint}`);
  }
  return expressions.length === 0
    ? { selections }
    : { selections, pending: { json: text, positions, expressions } };
}

/**
 * Runs every object's pending expressions (off the event loop, within the evaluator's budget)
 * and gives each object's selections complete. Any failure throws one InvalidInputError about
 * `subject` as a whole: which object or entry failed, and why, could depend on the value.
 */
export async function evaluateExpressions(
  objects: readonly FieldSelections[],
  evaluator: ExpressionEvaluator | undefined,
  subject: string,
  /** Whose work this is (a namespace), for the pool's turns between tenants. */
  tenant = '',
): Promise<Uint8Array[][]> {
  const outcomes = await Promise.all(
    objects.map(async (object) => {
      if (object.pending === undefined) return { ok: true as const, results: [] };
      if (evaluator === undefined) return { ok: false as const };
      return evaluator.evaluate(object.pending.json, object.pending.expressions, maxValueBytes, tenant);
    }),
  );
  if (outcomes.some((outcome) => !outcome.ok)) {
    const budget = evaluator?.budget;
    const within = budget ? ` within its budget (${budget.cpuMs} ms of CPU, ${budget.heapMb} MiB)` : '';
    throw new InvalidInputError(
      `${subject}: jmesPath: an expression did not give a string${within}; with expressions, which entry failed and why is not reported, since that could depend on the value`,
      { subject, field: 'jmesPath' },
    );
  }
  return objects.map((object, index) => {
    const selections = [...object.selections];
    const outcome = outcomes[index];
    const results = outcome?.ok ? outcome.results : [];
    object.pending?.positions.forEach((position, i) => {
      selections[position] = encoder.encode(results[i] ?? '');
    });
    return selections as Uint8Array[];
  });
}

/** One object's selections, in entry order: selectFields then evaluateExpressions. */
export async function extractJmesPaths(
  bytes: Uint8Array,
  entries: readonly JmesPathEntry[],
  subject: string,
  evaluator?: ExpressionEvaluator,
): Promise<Uint8Array[]> {
  const fields = selectFields(bytes, entries, subject, evaluator !== undefined);
  const [selections = []] = await evaluateExpressions([fields], evaluator, subject);
  return selections;
}
