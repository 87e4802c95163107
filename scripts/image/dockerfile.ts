/**
 * What a Dockerfile's final stage declares about the image it makes: base, ENV, USER, WORKDIR,
 * ENTRYPOINT, CMD, LABEL (build args substituted). The offline image build takes its config from
 * here, so the Dockerfile stays the one place these are written; its RUN/COPY steps are not read
 * (scripts/image/layout.ts lays out the same files). Only what smk's Dockerfile needs is
 * understood; anything else that would change the config is refused with its line number.
 */

export interface DockerfileImage {
  /** The final stage's FROM reference. */
  readonly base: string;
  /** ENV in the order written (a later one replaces an earlier one of the same name). */
  readonly env: readonly (readonly [string, string])[];
  readonly user: string | undefined;
  readonly workdir: string | undefined;
  readonly entrypoint: readonly string[] | undefined;
  readonly cmd: readonly string[] | undefined;
  readonly labels: Readonly<Record<string, string>>;
}

interface Instruction {
  readonly line: number;
  readonly keyword: string;
  readonly rest: string;
}

class DockerfileError extends Error {
  constructor(line: number, message: string) {
    super(`Dockerfile line ${line}: ${message}`);
    this.name = 'DockerfileError';
  }
}

/**
 * Joins continuation lines (trailing `\`); drops comments and empty lines, which may sit inside
 * a continuation. An instruction still continued at the end of the file ends there, as in Docker.
 */
function instructions(text: string): Instruction[] {
  const result: Instruction[] = [];
  let pending: { line: number; text: string } | undefined;
  const finish = (): void => {
    const match = pending && /^(\S+)\s*(.*)$/s.exec(pending.text);
    if (pending && match?.[1])
      result.push({ line: pending.line, keyword: match[1].toUpperCase(), rest: match[2] ?? '' });
    pending = undefined;
  };
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#')) {
      const directive = /^#\s*escape\s*=\s*(\S)/i.exec(trimmed);
      if (directive && directive[1] !== '\\' && result.length === 0 && pending === undefined) {
        throw new DockerfileError(index + 1, `escape character ${directive[1]} is not supported`);
      }
      return;
    }
    if (trimmed === '') return;
    const continued = /\\\s*$/.test(raw);
    const body = (continued ? raw.replace(/\\\s*$/, '') : raw).trim();
    pending = pending
      ? { line: pending.line, text: `${pending.text} ${body}` }
      : { line: index + 1, text: body };
    if (!continued) finish();
  });
  finish();
  return result;
}

/**
 * Splits `rest` into words the way Docker reads ENV/LABEL/ARG values: whitespace separates,
 * "double" quotes substitute variables and honour backslash escapes, 'single' quotes are literal.
 */
function words(rest: string, line: number, variables: ReadonlyMap<string, string>): string[] {
  const result: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const substitute = (): void => {
    const braced = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}/.exec(rest.slice(i));
    const plain = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(rest.slice(i));
    const match = braced ?? plain;
    if (!match?.[1]) {
      word += '$';
      i += 1;
      return;
    }
    const value = variables.get(match[1]);
    const operator = braced?.[2];
    if (operator === '-') word += value ? value : (braced?.[3] ?? '');
    else if (operator === '+') word += value ? (braced?.[3] ?? '') : '';
    else if (value === undefined) {
      throw new DockerfileError(line, `$${match[1]} is not declared (ARG or ENV) in this stage`);
    } else word += value;
    i += match[0].length;
  };
  while (i < rest.length) {
    const char = rest[i] ?? '';
    if (/\s/.test(char)) {
      if (inWord) result.push(word);
      word = '';
      inWord = false;
      i += 1;
      continue;
    }
    inWord = true;
    if (char === '\\') {
      word += rest[i + 1] ?? '';
      i += 2;
    } else if (char === "'") {
      const end = rest.indexOf("'", i + 1);
      if (end === -1) throw new DockerfileError(line, 'unterminated single quote');
      word += rest.slice(i + 1, end);
      i = end + 1;
    } else if (char === '"') {
      i += 1;
      while (i < rest.length && rest[i] !== '"') {
        if (rest[i] === '\\' && i + 1 < rest.length) {
          word += rest[i + 1];
          i += 2;
        } else if (rest[i] === '$') substitute();
        else {
          word += rest[i];
          i += 1;
        }
      }
      if (i >= rest.length) throw new DockerfileError(line, 'unterminated double quote');
      i += 1;
    } else if (char === '$') substitute();
    else {
      word += char;
      i += 1;
    }
  }
  if (inWord) result.push(word);
  return result;
}

function keyValues(
  instruction: Instruction,
  variables: ReadonlyMap<string, string>,
): (readonly [string, string])[] {
  const parts = words(instruction.rest, instruction.line, variables);
  if (parts.length > 0 && parts.every((part) => /^[^=]+=/.test(part))) {
    return parts.map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at), part.slice(at + 1)] as const;
    });
  }
  // The legacy form `ENV NAME value with spaces`.
  const [name, ...value] = parts;
  if (name === undefined || value.length === 0) {
    throw new DockerfileError(instruction.line, `${instruction.keyword} needs NAME=value`);
  }
  return [[name, value.join(' ')]];
}

function execForm(instruction: Instruction): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(instruction.rest);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) {
    throw new DockerfileError(
      instruction.line,
      `${instruction.keyword} must use the JSON (exec) form: the image has no shell`,
    );
  }
  return parsed;
}

/** The final stage of `text`; `buildArgs` are `--build-arg` values (they win over ARG defaults). */
export function parseDockerfile(
  text: string,
  buildArgs: Readonly<Record<string, string>> = {},
): DockerfileImage {
  const all = instructions(text);
  const globalArgs = new Map<string, string>();
  const starts = all.flatMap((instruction, index) => (instruction.keyword === 'FROM' ? [index] : []));
  const finalStart = starts.at(-1);
  if (finalStart === undefined) throw new Error('Dockerfile: no FROM instruction');
  const argValue = (spec: string, variables: Map<string, string>, inherited?: Map<string, string>): void => {
    const at = spec.indexOf('=');
    const name = at === -1 ? spec : spec.slice(0, at);
    const fallback = at === -1 ? inherited?.get(name) : spec.slice(at + 1);
    const value = buildArgs[name] ?? fallback;
    if (value !== undefined) variables.set(name, value);
  };
  for (const instruction of all.slice(0, starts[0])) {
    if (instruction.keyword !== 'ARG') continue;
    for (const spec of words(instruction.rest, instruction.line, globalArgs)) argValue(spec, globalArgs);
  }

  const [from, ...stage] = all.slice(finalStart);
  if (from === undefined) throw new Error('Dockerfile: no FROM instruction');
  const fromWords = words(from.rest, from.line, globalArgs).filter((word) => !word.startsWith('--'));
  const base = fromWords[0];
  if (base === undefined) throw new DockerfileError(from.line, 'FROM names no image');

  const variables = new Map<string, string>();
  const env: (readonly [string, string])[] = [];
  const labels: Record<string, string> = {};
  let user: string | undefined;
  let workdir: string | undefined;
  let entrypoint: string[] | undefined;
  let cmd: string[] | undefined;
  for (const instruction of stage) {
    switch (instruction.keyword) {
      case 'ARG':
        for (const spec of words(instruction.rest, instruction.line, variables)) {
          argValue(spec, variables, globalArgs);
        }
        break;
      case 'ENV':
        for (const [name, value] of keyValues(instruction, variables)) {
          const existing = env.findIndex(([known]) => known === name);
          if (existing === -1) env.push([name, value]);
          else env[existing] = [name, value];
          variables.set(name, value);
        }
        break;
      case 'LABEL':
        for (const [name, value] of keyValues(instruction, variables)) labels[name] = value;
        break;
      case 'USER':
        user = words(instruction.rest, instruction.line, variables).join(' ');
        break;
      case 'WORKDIR':
        workdir = words(instruction.rest, instruction.line, variables).join(' ');
        if (!workdir.startsWith('/')) throw new DockerfileError(instruction.line, 'WORKDIR must be absolute');
        break;
      case 'ENTRYPOINT':
        entrypoint = execForm(instruction);
        // As Docker does: a new ENTRYPOINT drops the base image's CMD unless this stage sets one.
        cmd = cmd ?? [];
        break;
      case 'CMD':
        cmd = execForm(instruction);
        break;
      case 'COPY':
      case 'ADD':
      case 'RUN':
        break;
      default:
        throw new DockerfileError(
          instruction.line,
          `${instruction.keyword} in the final stage is not understood by the offline image build (scripts/image)`,
        );
    }
  }
  return { base, env, user, workdir, entrypoint, cmd, labels };
}
