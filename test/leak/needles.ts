/**
 * What the leak scan looks for. Each registered secret value becomes a set of needles: the value,
 * its JSON-escaped and base64 forms, and the same for every string leaf of a JSON value and every
 * long line of a multi-line value (a PEM key leaks line by line). Short and ordinary strings
 * are left out (see `distinctive`): they would match ordinary output and drown real hits.
 */

/** A secret value and where it came from (`secretsmanager us-east-1 team-a/db @ <versionId>`). */
export interface SecretRecord {
  readonly source: string;
  readonly value: string;
}

export interface Needle {
  readonly text: string;
  readonly source: string;
  /** How the value appears: as is, JSON-escaped, base64, a JSON leaf, a line of it. */
  readonly form: string;
}

export interface NeedleOptions {
  /** Shortest value or leaf registered (default 8). */
  readonly minLength?: number;
  /** Shortest line of a multi-line value registered on its own (default 24). */
  readonly minLineLength?: number;
}

/**
 * Whether a string could only appear in output by leaking: ordinary words and phrases
 * ("password", "john.doe", "not asked", a date) turn up in test names, paths and messages by
 * themselves, so only values with letters and digits, or long mixed ones, are registered.
 */
export function distinctive(text: string, minLength: number): boolean {
  const trimmed = text.trim();
  if (trimmed.length < minLength || (trimmed.match(/[A-Za-z]/g) ?? []).length < 3) return false;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9\s]/].filter((pattern) =>
    pattern.test(trimmed),
  ).length;
  return /[0-9]/.test(trimmed) ? classes >= 2 : classes >= 3 && trimmed.length >= 12;
}

function leaves(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(leaves);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(leaves);
  return [];
}

function jsonLeaves(text: string): string[] {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return [];
  try {
    return leaves(JSON.parse(trimmed));
  } catch {
    return [];
  }
}

export function needlesFor(records: readonly SecretRecord[], options: NeedleOptions = {}): Needle[] {
  const minLength = options.minLength ?? 8;
  const minLineLength = options.minLineLength ?? 24;
  const byText = new Map<string, Needle>();
  const add = (text: string, source: string, form: string): void => {
    if (text.length < minLength || byText.has(text)) return;
    byText.set(text, { text, source, form });
  };
  const addForms = (text: string, source: string, what: string): void => {
    if (!distinctive(text, minLength)) return;
    add(text, source, what);
    add(JSON.stringify(text).slice(1, -1), source, `${what}, JSON-escaped`);
    add(Buffer.from(text, 'utf8').toString('base64'), source, `${what}, base64`);
  };
  for (const record of records) {
    addForms(record.value, record.source, 'value');
    for (const leaf of jsonLeaves(record.value)) addForms(leaf, record.source, 'JSON field of the value');
    if (record.value.includes('\n')) {
      for (const line of record.value.split(/\r?\n/)) {
        const trimmed = line.trim();
        if (trimmed.length >= minLineLength && distinctive(trimmed, minLength)) {
          add(trimmed, record.source, 'line of the value');
        }
      }
    }
  }
  return [...byText.values()];
}

/**
 * Finds needles in text in one pass: needles are indexed by their first `keyLength` characters,
 * and each position of the text is looked up once (thousands of needles × megabytes of output).
 */
export class NeedleMatcher {
  readonly #keyLength: number;
  readonly #byKey = new Map<string, Needle[]>();
  readonly size: number;

  constructor(needles: readonly Needle[]) {
    this.#keyLength = Math.max(1, Math.min(8, ...needles.map((needle) => needle.text.length)));
    for (const needle of needles) {
      const key = needle.text.slice(0, this.#keyLength);
      const list = this.#byKey.get(key);
      if (list) list.push(needle);
      else this.#byKey.set(key, [needle]);
    }
    this.size = needles.length;
  }

  /** Every needle found in `text` (each once). */
  find(text: string): Needle[] {
    if (this.size === 0 || text.length < this.#keyLength) return [];
    const found = new Set<Needle>();
    const last = text.length - this.#keyLength;
    for (let i = 0; i <= last; i += 1) {
      const candidates = this.#byKey.get(text.slice(i, i + this.#keyLength));
      if (!candidates) continue;
      for (const needle of candidates) {
        if (!found.has(needle) && text.startsWith(needle.text, i)) found.add(needle);
      }
    }
    return [...found];
  }
}
