/**
 * What bytes a file gets: the whole value, or a JMESPath selection from a JSON value.
 *
 * Like ASCP, a selection must be a string: numbers and booleans are refused rather than
 * guessed at (`5432` vs `5432.0`), with a hint to write `to_string(path)`. Error messages name
 * the object and the path, never the value: parser and evaluator messages are not passed on,
 * because JSON.parse quotes the text it failed on.
 */
import { type JSONValue, search } from '@jmespath-community/jmespath';
import { InvalidInputError, TooLargeError } from './errors.ts';
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
  if (Array.isArray(result)) return 'a list';
  if (typeof result === 'object') return 'an object';
  return `a ${typeof result}`;
}

/** One selection per entry, in entry order. The value is parsed once. */
export function extractJmesPaths(
  bytes: Uint8Array,
  entries: readonly JmesPathEntry[],
  subject: string,
): Uint8Array[] {
  if (entries.length === 0) return [];
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
  let data: JSONValue = null;
  try {
    data = JSON.parse(text) as JSONValue;
  } catch {
    notJson('is not valid JSON');
  }

  return entries.map((entry, position) => {
    const where = `${subject}: jmesPath[${position}] (${entry.path})`;
    const fail = (what: string): never => {
      throw new InvalidInputError(`${where} ${what}`, { subject, field: `jmesPath[${position}].path` });
    };
    let result: unknown;
    try {
      result = search(data, entry.path);
    } catch {
      fail('could not be evaluated on this value (a function got an argument of the wrong type)');
    }
    if (result === null || result === undefined) {
      return fail('selects nothing; expected a path to a string in the JSON value');
    }
    if (typeof result === 'string') return encoder.encode(result);
    const hint =
      typeof result === 'number' || typeof result === 'boolean'
        ? ` (write to_string(${entry.path}) to store it as text)`
        : '';
    return fail(`selects ${kindOf(result)}; expected a string${hint}`);
  });
}
