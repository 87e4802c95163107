/**
 * Remembered admission answers, so the pods of one ReplicaSet run the mutation once.
 *
 * The mutation reads only the injection annotations and the spec, and the pods of one ReplicaSet
 * share both but for one thing: the ServiceAccount admission plugin, which runs before any
 * webhook, gives each pod's token volume (a projected volume) a name of its own,
 * `kube-api-access-` and 5 random characters, named again by the containers' mounts of it. So an
 * answer is shared between two pods whose injection annotations are equal and whose specs are
 * equal where those names stand for each other, and only there (a container or an annotation
 * value spelled the same way is the pod's own choice).
 *
 * Lookup is by the annotations' text, then a structural comparison with the remembered spec (key
 * order included). It used to be a sha256 of the whole spec's JSON, which cost more than a
 * third of a cached answer's CPU; comparing walks the two parsed specs without making anything.
 */

const generatedTokenVolumeName = /^kube-api-access-[a-z0-9]{5}$/;

/** At most this many answers, and this many remembered spec bytes (about), all together. */
const maxAnswers = 256;
const maxRememberedBytes = 2 * 1024 * 1024;
/** A spec larger than this is not remembered (its answer is computed each time). */
const maxSpecBytes = 64 * 1024;
/** Answers remembered for one set of annotations (Deployments can share annotations). */
const maxPerAnnotations = 8;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The spec's generated token volume names (projected volumes named like the plugin names them). */
export function tokenVolumeNames(spec: unknown): ReadonlySet<string> {
  const names = new Set<string>();
  if (!isRecord(spec) || !Array.isArray(spec.volumes)) return names;
  for (const volume of spec.volumes) {
    if (isRecord(volume) && typeof volume.name === 'string' && isRecord(volume.projected)) {
      if (generatedTokenVolumeName.test(volume.name)) names.add(volume.name);
    }
  }
  return names;
}

/** JSON equality: same types, same keys in the same order, equal values. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i += 1) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  return sameFields(a as Record<string, unknown>, b as Record<string, unknown>, sameJsonField);
}

function sameJsonField(_key: string, a: unknown, b: unknown): boolean {
  return sameJson(a, b);
}

/** Same keys in the same order, each pair of values equal by `same` (given the key). */
function sameFields(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  same: (key: string, a: unknown, b: unknown) => boolean,
): boolean {
  const keys = Object.keys(a);
  const otherKeys = Object.keys(b);
  if (keys.length !== otherKeys.length) return false;
  for (let i = 0; i < keys.length; i += 1) {
    const key = keys[i] as string;
    if (otherKeys[i] !== key || !same(key, a[key], b[key])) return false;
  }
  return true;
}

/** Two pods' specs and the token volume names each stands in for. */
interface Pair {
  readonly aNames: ReadonlySet<string>;
  readonly bNames: ReadonlySet<string>;
}

/** A `name` field: equal, or each the generated token volume name of its own pod. */
function sameName(pair: Pair, a: unknown, b: unknown): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return sameJson(a, b);
  const aStandsIn = pair.aNames.has(a);
  const bStandsIn = pair.bNames.has(b);
  return aStandsIn || bStandsIn ? aStandsIn && bStandsIn : a === b;
}

/** Two lists of records, entry by entry, each pair of fields compared by `sameField`. */
function sameRecords(
  a: unknown,
  b: unknown,
  sameField: (key: string, a: unknown, b: unknown) => boolean,
): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return sameJson(a, b);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) {
    const entry: unknown = a[i];
    const other: unknown = b[i];
    const same =
      isRecord(entry) && isRecord(other) ? sameFields(entry, other, sameField) : sameJson(entry, other);
    if (!same) return false;
  }
  return true;
}

/** Lists of volumes or of volume mounts: equal but for names that stand for each other. */
function sameNamedList(pair: Pair, a: unknown, b: unknown): boolean {
  return sameRecords(a, b, (key, x, y) => (key === 'name' ? sameName(pair, x, y) : sameJson(x, y)));
}

/** Lists of containers: equal but for their mounts' names that stand for each other. */
function sameContainers(pair: Pair, a: unknown, b: unknown): boolean {
  return sameRecords(a, b, (key, x, y) =>
    key === 'volumeMounts' ? sameNamedList(pair, x, y) : sameJson(x, y),
  );
}

/**
 * Whether two specs are equal where each pod's generated token volume names stand for each other:
 * in `volumes[*].name` and in `containers[*]` / `initContainers[*]` `volumeMounts[*].name`, and
 * nowhere else. (A volume of another kind named like a token volume of its pod also stands in, as
 * a mount cannot tell the two apart.)
 */
export function sameSpecBesidesTokenVolumes(
  a: unknown,
  aNames: ReadonlySet<string>,
  b: unknown,
  bNames: ReadonlySet<string>,
): boolean {
  if (aNames.size !== bNames.size) return false;
  if (aNames.size === 0 || !isRecord(a) || !isRecord(b)) return sameJson(a, b);
  const pair: Pair = { aNames, bNames };
  return sameFields(a, b, (key, x, y) => {
    if (key === 'volumes') return sameNamedList(pair, x, y);
    if (key === 'containers' || key === 'initContainers') return sameContainers(pair, x, y);
    return sameJson(x, y);
  });
}

/** About how many bytes a parsed JSON value holds (its text's length), stopping past `limit`. */
function approximateBytes(value: unknown, limit: number): number {
  let total = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0 && total <= limit) {
    const next = pending.pop();
    if (typeof next === 'string') total += next.length + 3;
    else if (Array.isArray(next)) {
      total += 2;
      for (const item of next) pending.push(item);
    } else if (isRecord(next)) {
      total += 2;
      for (const [key, item] of Object.entries(next)) {
        total += key.length + 4;
        pending.push(item);
      }
    } else total += 6;
  }
  return total;
}

interface Remembered<T> {
  readonly spec: unknown;
  readonly names: ReadonlySet<string>;
  readonly bytes: number;
  readonly answer: T;
}

/**
 * Answers by (injection annotations, spec besides token volume names). The remembered specs are
 * the parsed objects of past requests; they are bounded in count and in size, and never changed
 * (the mutation works on a copy).
 */
export class AnswerCache<T> {
  /** Most recently added last; the annotations' text is the key. */
  readonly #byAnnotations = new Map<string, Remembered<T>[]>();
  #answers = 0;
  #bytes = 0;

  get(annotationsText: string, spec: unknown, names: ReadonlySet<string>): T | undefined {
    const candidates = this.#byAnnotations.get(annotationsText);
    if (candidates === undefined) return undefined;
    for (let i = candidates.length - 1; i >= 0; i -= 1) {
      const candidate = candidates[i] as Remembered<T>;
      if (sameSpecBesidesTokenVolumes(candidate.spec, candidate.names, spec, names)) return candidate.answer;
    }
    return undefined;
  }

  /** Remembers an answer, unless the spec is too large to keep. */
  set(annotationsText: string, spec: unknown, names: ReadonlySet<string>, answer: T): void {
    const bytes = approximateBytes(spec, maxSpecBytes) + annotationsText.length;
    if (bytes > maxSpecBytes) return;
    let candidates = this.#byAnnotations.get(annotationsText);
    if (candidates === undefined) {
      candidates = [];
      this.#byAnnotations.set(annotationsText, candidates);
    } else {
      // Most recently used annotations go to the back of the eviction order.
      this.#byAnnotations.delete(annotationsText);
      this.#byAnnotations.set(annotationsText, candidates);
    }
    // A copy: the request's own objects are the caller's to change.
    candidates.push({ spec: structuredClone(spec), names, bytes, answer });
    this.#answers += 1;
    this.#bytes += bytes;
    if (candidates.length > maxPerAnnotations) this.#forget(candidates, 0);
    while (this.#answers > maxAnswers || this.#bytes > maxRememberedBytes) {
      const oldest = this.#byAnnotations.entries().next().value;
      if (oldest === undefined) break;
      const [text, list] = oldest;
      this.#forget(list, 0);
      if (list.length === 0) this.#byAnnotations.delete(text);
    }
  }

  get size(): number {
    return this.#answers;
  }

  #forget(list: Remembered<T>[], index: number): void {
    const [gone] = list.splice(index, 1);
    if (gone === undefined) return;
    this.#answers -= 1;
    this.#bytes -= gone.bytes;
  }
}
