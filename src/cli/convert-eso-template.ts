/**
 * An ESO template (Go text/template, engine v2, with Sprig's functions) → smk's (Liquid), only
 * where the output means the same: a key `{{ .name }}` / `{{ index . "tls.crt" }}`, and the few
 * functions whose Liquid filter gives the same text for every text value (`b64enc`, `default`,
 * `replace`). Anything else is named precisely — the function, and for the near misses why the
 * Liquid filter that looks like it would not give the same text — never guessed.
 */

/** What a template became: the Liquid text when everything converted; otherwise what did not. */
export interface TemplateConversion {
  readonly template?: string;
  /** One sentence per construct with no equivalent (the template is then not converted). */
  readonly problems: readonly string[];
  /** Converted, with a difference the reader should know. */
  readonly notes: readonly string[];
}

type Token =
  | { readonly kind: 'field'; readonly path: readonly string[] }
  | { readonly kind: 'dot' }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'pipe' }
  | { readonly kind: 'other'; readonly text: string };

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;
const controlWords = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'template',
  'block',
  'break',
  'continue',
]);
/** An argument copied into a Liquid string literal: no quotes or backslashes (Liquid has no escapes) and no braces. */
const plainArgument = /^[^"\\{}%\n]*$/;

/**
 * Functions that look like a Liquid filter but do not give the same text, and why: the reader can
 * then decide (ESO's own functions and the rest of Sprig get the generic sentence).
 */
const nearMisses: Readonly<Record<string, string>> = {
  upper: "Liquid's upcase differs from Go's strings.ToUpper on some non-ASCII letters (ß becomes SS)",
  lower:
    "Liquid's downcase differs from Go's strings.ToLower on some non-ASCII letters (a final Σ becomes ς)",
  title: "Liquid's capitalize lower-cases the rest of the text; Sprig's title capitalises every word",
  trim: "Liquid's strip removes a different set of Unicode spaces than Go's strings.TrimSpace (U+0085, U+FEFF)",
  trimPrefix: "Liquid's remove_first removes the first occurrence anywhere, not only a prefix",
  trimSuffix: "Liquid's remove_last removes the last occurrence anywhere, not only a suffix",
  b64dec: "Sprig's b64dec renders an error text for invalid input; Liquid's base64_decode fails the render",
  urlquery: "Liquid's url_encode leaves ! ' ( ) * unescaped; Go's url.QueryEscape escapes them",
  toJson: "Liquid's json escapes <, > and & differently from Go's encoding/json",
  len: "Liquid's size counts UTF-16 code units; Go's len counts bytes",
};

/** Functions with no look-alike, where a reason says more than "no equivalent". */
const otherReasons: Readonly<Record<string, string>> = {
  quote: 'no Liquid filter adds Go-escaped double quotes',
  squote: 'no Liquid filter adds single quotes',
  toString: 'a value is already text in smk: drop the function',
  printf: 'no formatted printing in Liquid',
  print: 'no formatted printing in Liquid',
};

function tokenize(body: string): { tokens: Token[]; problem?: string } {
  const tokens: Token[] = [];
  let at = 0;
  while (at < body.length) {
    const char = body[at] ?? '';
    if (/\s/.test(char)) {
      at += 1;
      continue;
    }
    if (char === '|') {
      tokens.push({ kind: 'pipe' });
      at += 1;
      continue;
    }
    if (char === '"' || char === '`') {
      const close = body.indexOf(char, at + 1);
      if (close === -1) return { tokens, problem: 'an unterminated string' };
      const value = body.slice(at + 1, close);
      if (char === '"' && value.includes('\\'))
        return { tokens, problem: `the quoted argument "${value}" uses Go escapes` };
      tokens.push({ kind: 'string', value });
      at = close + 1;
      continue;
    }
    const word = /^[.$A-Za-z_0-9][.A-Za-z_0-9]*/.exec(body.slice(at))?.[0];
    if (word !== undefined) {
      at += word.length;
      if (word === '.') tokens.push({ kind: 'dot' });
      else if (word.startsWith('.')) tokens.push({ kind: 'field', path: word.slice(1).split('.') });
      else if (identifier.test(word)) tokens.push({ kind: 'name', name: word });
      else tokens.push({ kind: 'other', text: word });
      continue;
    }
    tokens.push({ kind: 'other', text: body.slice(at).trim().split(/\s/)[0] ?? char });
    return { tokens };
  }
  return { tokens };
}

const describeToken = (token: Token): string => {
  switch (token.kind) {
    case 'field':
      return `.${token.path.join('.')}`;
    case 'dot':
      return '.';
    case 'name':
      return token.name;
    case 'string':
      return `"${token.value}"`;
    case 'pipe':
      return '|';
    case 'other':
      return token.text;
  }
};

/** The Liquid filter for one Go function applied to the piped value, or why there is none. */
function filterOf(
  name: string,
  args: readonly Token[],
): { filter?: string; problem?: string; note?: string } {
  const strings = args.every((arg) => arg.kind === 'string')
    ? args.map((arg) => (arg as { value: string }).value)
    : undefined;
  const literal = (value: string): string | undefined =>
    plainArgument.test(value) ? `"${value}"` : undefined;
  switch (name) {
    case 'b64enc':
      if (args.length === 0)
        return {
          filter: 'base64_encode',
          note: 'b64enc → base64_encode: the same for text values; a value that is not UTF-8 text is replaced character by character (U+FFFD) in smk templates before encoding',
        };
      break;
    case 'default': {
      const value = strings?.length === 1 ? literal(strings[0] ?? '') : undefined;
      if (value !== undefined) return { filter: `default: ${value}` };
      if (strings?.length === 1)
        return {
          problem:
            'function default: its argument has quotes, backslashes or braces, which a Liquid string cannot hold',
        };
      break;
    }
    case 'replace': {
      const [from, to] = strings ?? [];
      if (strings?.length === 2 && from !== undefined && to !== undefined && from !== '') {
        const a = literal(from);
        const b = literal(to);
        if (a !== undefined && b !== undefined) return { filter: `replace: ${a}, ${b}` };
        return {
          problem:
            'function replace: an argument has quotes, backslashes or braces, which a Liquid string cannot hold',
        };
      }
      if (from === '')
        return {
          problem:
            'function replace with an empty search text: Go inserts between bytes, Liquid between UTF-16 units',
        };
      break;
    }
    default: {
      const why = nearMisses[name];
      if (why !== undefined) return { problem: `function ${name}: no identical Liquid filter (${why})` };
      const reason = otherReasons[name];
      if (reason !== undefined) return { problem: `function ${name}: ${reason}` };
      return { problem: `function ${name}: a Go template (Sprig or ESO) function with no smk equivalent` };
    }
  }
  return {
    problem: `function ${name} with arguments ${args.map(describeToken).join(' ') || '(none)'}: only ${name === 'b64enc' ? 'b64enc with no argument' : `${name} with string arguments`} converts`,
  };
}

/** One action's text (between the braces) → Liquid output, or the problems it has. */
function convertAction(body: string): { liquid?: string; problems: string[]; notes: string[] } {
  const problems: string[] = [];
  const notes: string[] = [];
  const trimmed = body.trim();
  if (trimmed.startsWith('/*'))
    return { problems: ['a comment action {{/* */}} (Liquid comments are {% comment %})'], notes };
  const { tokens, problem } = tokenize(trimmed);
  if (problem) return { problems: [problem], notes };
  const commands: Token[][] = [[]];
  for (const token of tokens) {
    if (token.kind === 'pipe') commands.push([]);
    else commands.at(-1)?.push(token);
  }
  const first = commands[0] ?? [];
  const head = first[0];
  if (head?.kind === 'name' && controlWords.has(head.name)) {
    return {
      problems: [
        `the {{ ${head.name} }} action: control flow does not convert; write it as a Liquid tag ({% if %}, {% for %}) by hand`,
      ],
      notes,
    };
  }
  for (const token of tokens) {
    if (token.kind === 'other')
      problems.push(`${token.text} (variables, parentheses and numbers do not convert)`);
  }
  if (problems.length > 0) return { problems, notes };

  /** The value the pipeline starts from, as a Liquid expression. */
  let value: string | undefined;
  const filters: { name: string; args: Token[] }[] = [];
  const keyOf = (token: Token | undefined): string | undefined => {
    if (token?.kind !== 'field') return undefined;
    if (token.path.length > 1) {
      problems.push(`nested field .${token.path.join('.')}: a template's values are texts, with no fields`);
      return undefined;
    }
    const name = token.path[0] ?? '';
    if (!identifier.test(name)) {
      problems.push(`field .${name}`);
      return undefined;
    }
    return name;
  };
  if (head?.kind === 'field' && first.length === 1) value = keyOf(head);
  else if (head?.kind === 'name' && head.name === 'index') {
    // `index . "tls.crt"`: the key by name, for names Go's field syntax cannot hold.
    const [dot, key, ...rest] = first.slice(1);
    if (
      dot?.kind === 'dot' &&
      key?.kind === 'string' &&
      rest.length === 0 &&
      /^[^"\\\]{}%\n]+$/.test(key.value)
    ) {
      value = `["${key.value}"]`;
      notes.push(
        `index . "${key.value}" → ["${key.value}"]: a key the spec does not produce renders empty in ESO; smk fails naming it`,
      );
    } else
      problems.push(
        `function index with arguments ${first.slice(1).map(describeToken).join(' ')}: only index . "key" converts`,
      );
  } else if (head?.kind === 'name') {
    // Function form: the last argument is the value, the rest are the function's own.
    const last = first.at(-1);
    if (first.length >= 2 && last?.kind === 'field') {
      value = keyOf(last);
      filters.push({ name: head.name, args: first.slice(1, -1) });
    } else {
      const filter = filterOf(head.name, []);
      problems.push(filter.problem ?? `function ${head.name} without a key to apply it to`);
    }
  } else if (head === undefined) problems.push('an empty action {{ }}');
  else problems.push(`${describeToken(head)} at the start of an action`);
  for (const command of commands.slice(1)) {
    const [name, ...args] = command;
    if (name?.kind !== 'name') {
      problems.push(`a pipeline stage starting with ${name ? describeToken(name) : 'nothing'}`);
      continue;
    }
    filters.push({ name: name.name, args });
  }
  const liquidFilters: string[] = [];
  for (const { name, args } of filters) {
    const filter = filterOf(name, args);
    if (filter.problem) problems.push(filter.problem);
    if (filter.note) notes.push(filter.note);
    if (filter.filter) liquidFilters.push(filter.filter);
  }
  if (problems.length > 0 || value === undefined) return { problems, notes };
  return { liquid: `{{ ${[value, ...liquidFilters].join(' | ')} }}`, problems, notes };
}

/** Where the action opened before `from` closes: the first `}}` outside a string literal; -1 if none. */
function actionEnd(text: string, from: number): number {
  let quote: string | undefined;
  for (let at = from; at < text.length; at += 1) {
    const char = text[at];
    if (quote !== undefined) {
      if (char === '\\' && quote === '"') at += 1;
      else if (char === quote) quote = undefined;
    } else if (char === '"' || char === '`') quote = char;
    else if (char === '}' && text[at + 1] === '}') return at;
  }
  return -1;
}

/**
 * An ESO (Go, engine v2) template → smk's Liquid. `template` is set only when every action
 * converts; `problems` names each construct that does not (by function name where there is one).
 */
export function liquidOfGoTemplate(text: string): TemplateConversion {
  const problems: string[] = [];
  const notes: string[] = [];
  // Liquid reads these as its own syntax: copied as text they would mean something else.
  for (const marker of ['{%', '%}']) {
    if (text.includes(marker)) problems.push(`the text ${marker}, which Liquid reads as a tag`);
  }
  let result = '';
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('{{', at);
    const stray = text.indexOf('}}', at);
    if (stray !== -1 && (open === -1 || stray < open)) {
      problems.push('a }} outside an action, which Liquid reads as the end of one');
      break;
    }
    if (open === -1) break;
    const close = actionEnd(text, open + 2);
    if (close === -1) {
      problems.push('an action {{ without its }}');
      break;
    }
    let body = text.slice(open + 2, close);
    if (/^-\s/.test(body) || /\s-$/.test(body)) {
      problems.push(
        "a trim marker ({{- or -}}): Liquid's trims a different set of spaces (Unicode spaces besides Go's space, tab, CR and LF)",
      );
      body = body.replace(/^-\s/, ' ').replace(/\s-$/, ' ');
    }
    const action = convertAction(body);
    problems.push(...action.problems);
    notes.push(...action.notes);
    result += text.slice(at, open) + (action.liquid ?? '');
    at = close + 2;
  }
  if (problems.length > 0) return { problems: [...new Set(problems)], notes: [] };
  return { template: result + text.slice(at), problems: [], notes: [...new Set(notes)] };
}
