/**
 * Plain field paths: the part of JMESPath every seed and ASCP example uses (`password`,
 * `db.host`, `"db-user"`, `hosts[0]`). A tenant's spec is held to this by default because a full
 * JMESPath expression is a program: run by a shared process on a value the tenant may not read,
 * its success or failure tells the value (`starts_with(password, 'a')`) and its cost can be
 * exponential (`[@,@]` chains). Here parsing and selection are one pass, linear in the path, and
 * a failure can depend only on the value's structure (is there such a key), never on its text.
 *
 * Grammar (a subset of JMESPath, with JMESPath's meaning, so a path selects here what it selects
 * there; whitespace may stand between tokens as JMESPath allows):
 *   path  = first *( "." name / index )
 *   first = name / index
 *   name  = [A-Za-z_][A-Za-z0-9_]*  /  a JSON string ("db-user", "a\"b")
 *   index = "[" ["-"] 1*DIGIT "]"     (negative counts from the end)
 */

/** Field names and array indexes, in order. */
export type FieldPath = readonly (string | number)[];

export type FieldPathParse =
  | { readonly ok: true; readonly path: FieldPath }
  /** `at`: the 0-based character where the path stops being a plain field path. */
  | { readonly ok: false; readonly at: number };

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';
const isNameStart = (c: string | undefined): boolean =>
  c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_');
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isNamePart = (c: string | undefined): boolean => isNameStart(c) || isDigit(c);

/** Parses `text` as a plain field path, or says where it stops being one. */
export function parseFieldPath(text: string): FieldPathParse {
  const path: (string | number)[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (isSpace(text[i])) i += 1;
  };
  const stop = (): FieldPathParse => ({ ok: false, at: i });

  /** A name at i (unquoted or quoted), or undefined with i at the fault. */
  const name = (): string | undefined => {
    if (isNameStart(text[i])) {
      const start = i;
      while (isNamePart(text[i])) i += 1;
      return text.slice(start, i);
    }
    if (text[i] !== '"') return undefined;
    const start = i;
    i += 1;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i < text.length) {
      i += 1;
      try {
        // JSON's string syntax is JMESPath's quoted identifier; JSON.parse is linear.
        return JSON.parse(text.slice(start, i)) as string;
      } catch {}
    }
    // Unterminated or a bad escape: the fault is the quoted name as a whole.
    i = start;
    return undefined;
  };

  /** An index at i (which is "["), or undefined with i at the fault. */
  const index = (): number | undefined => {
    i += 1;
    skipSpace();
    const start = i;
    if (text[i] === '-') i += 1;
    if (!isDigit(text[i])) return undefined;
    while (isDigit(text[i])) i += 1;
    const value = Number.parseInt(text.slice(start, i), 10);
    skipSpace();
    if (text[i] !== ']') return undefined;
    i += 1;
    return value;
  };

  skipSpace();
  let first = true;
  while (i < text.length) {
    if (text[i] === '[') {
      const position = index();
      if (position === undefined) return stop();
      path.push(position);
    } else {
      if (!first) {
        if (text[i] !== '.') return stop();
        i += 1;
        skipSpace();
      }
      const field = name();
      if (field === undefined) return stop();
      path.push(field);
    }
    first = false;
    skipSpace();
  }
  return path.length === 0 ? stop() : { ok: true, path };
}

/**
 * What `path` selects in a parsed JSON value, as JMESPath would: undefined where JMESPath gives
 * null (a missing key, an index out of range, a step into a non-container). Only own keys count,
 * so `constructor` on an object selects nothing.
 */
export function selectField(data: unknown, path: FieldPath): unknown {
  let here: unknown = data;
  for (const step of path) {
    if (typeof step === 'number') {
      if (!Array.isArray(here)) return undefined;
      const position = step < 0 ? here.length + step : step;
      if (position < 0 || position >= here.length) return undefined;
      here = here[position];
    } else {
      if (typeof here !== 'object' || here === null || Array.isArray(here) || !Object.hasOwn(here, step)) {
        return undefined;
      }
      here = (here as Record<string, unknown>)[step];
    }
    if (here === null) return undefined;
  }
  return here;
}

/** The flag that lets full JMESPath expressions run, on every role that evaluates specs. */
export const expressionsFlag = '--allow-jmespath-expressions';

/** Why `field` is refused when expressions are not enabled; `at` from parseFieldPath. */
export function notPlainFieldPath(field: string, at: number): string {
  return (
    `${field} is not a plain field path (at character ${at + 1}); expected names, dots, "quoted names" ` +
    `and [n] indexes, like db.password, "db-user" or hosts[0]. Full JMESPath expressions run only where ` +
    `the cluster administrator enabled them (${expressionsFlag})`
  );
}
