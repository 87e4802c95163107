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
 * third of a cached answer's CPU. A remembered spec is kept as one flat list of its parts
 * (`Flattened`), so a comparison walks only the request's parsed spec, against an array, and
 * makes nothing: walking two object trees side by side cost ~9 µs a pod, most of it property
 * lookups on objects of many shapes.
 */
import { isRecord } from './pod.ts';

const generatedTokenVolumeName = /^kube-api-access-[a-z0-9]{5}$/;

/** At most this many answers, and this many remembered spec bytes (about), all together. */
const maxAnswers = 256;
const maxRememberedBytes = 2 * 1024 * 1024;
/** A spec larger than this is not remembered (its answer is computed each time). */
const maxSpecBytes = 64 * 1024;
/** Answers remembered for one set of annotations (Deployments can share annotations). */
const maxPerAnnotations = 8;
/**
 * A spec nested deeper than this is not remembered either. A pod spec from the API server is a
 * dozen levels deep at most; only a forged review nests further, and walking thousands of levels
 * would exhaust the stack (a 5,000-deep array in a valid pod made the answer a 500).
 */
const maxSpecDepth = 64;

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

/**
 * Where in a pod spec a value sits, as far as the comparison cares: generated names stand in for
 * each other only in a volume's `name` and a container's mount's `name`.
 */
const anywhere = 0;
const specRoot = 1;
const volumeList = 2;
const volumeEntry = 3;
const containerList = 4;
const containerEntry = 5;
const mountList = 6;
const mountEntry = 7;
const nameField = 8;
type Place =
  | typeof anywhere
  | typeof specRoot
  | typeof volumeList
  | typeof volumeEntry
  | typeof containerList
  | typeof containerEntry
  | typeof mountList
  | typeof mountEntry
  | typeof nameField;

/** The place of a list's entries. */
function entryPlace(list: Place): Place {
  if (list === volumeList) return volumeEntry;
  if (list === containerList) return containerEntry;
  if (list === mountList) return mountEntry;
  return anywhere;
}

/** The place of an object's field `key`. */
function fieldPlace(place: Place, key: string): Place {
  if (place === anywhere) return anywhere;
  if (place === specRoot) {
    if (key === 'volumes') return volumeList;
    return key === 'containers' || key === 'initContainers' ? containerList : anywhere;
  }
  if (place === containerEntry) return key === 'volumeMounts' ? mountList : anywhere;
  if (place === volumeEntry || place === mountEntry) return key === 'name' ? nameField : anywhere;
  return anywhere;
}

/** Marks in a flattened spec; objects, so no JSON value (a primitive there) is ever one. */
const objectMark = Object.freeze({ mark: 'object' });
const arrayMark = Object.freeze({ mark: 'array' });
const standInMark = Object.freeze({ mark: 'generated token volume name' });

/**
 * A spec as the list a depth-first walk meets: an object is `objectMark`, its key count, then
 * each key and its value; an array is `arrayMark`, its length, then its entries; a primitive is
 * itself; a generated token volume name where names stand in is `standInMark`. Equal lists,
 * equal specs (key order included), as each part is told by its position and type.
 */
export type Flattened = readonly unknown[];

/** Flattens a spec, counting about how many bytes its JSON has; stops past `limit` or `maxSpecDepth` levels. */
class Flattener {
  readonly out: unknown[] = [];
  readonly names: ReadonlySet<string>;
  readonly limit: number;
  bytes = 0;

  constructor(names: ReadonlySet<string>, limit: number) {
    this.names = names;
    this.limit = limit;
  }

  /** False when the spec is larger than the limit (what was flattened so far is then of no use). */
  add(value: unknown, place: Place, depth = 0): boolean {
    if (this.bytes > this.limit || depth > maxSpecDepth) return false;
    if (place === nameField && typeof value === 'string' && this.names.has(value)) {
      this.out.push(standInMark);
      this.bytes += value.length + 3;
    } else if (typeof value !== 'object' || value === null) {
      this.out.push(value);
      this.bytes += typeof value === 'string' ? value.length + 3 : 6;
    } else if (Array.isArray(value)) {
      this.out.push(arrayMark, value.length);
      this.bytes += 2;
      const entry = entryPlace(place);
      for (const item of value) if (!this.add(item, entry, depth + 1)) return false;
    } else {
      const keys = Object.keys(value);
      this.out.push(objectMark, keys.length);
      this.bytes += 2;
      for (const key of keys) {
        this.out.push(key);
        this.bytes += key.length + 4;
        if (!this.add((value as Record<string, unknown>)[key], fieldPlace(place, key), depth + 1))
          return false;
      }
    }
    return this.bytes <= this.limit;
  }
}

/**
 * The spec to remember, with `names` (its own generated token volume names) marked where they
 * stand in, and about how many bytes its JSON has; undefined when that is over `limit` or the spec
 * nests deeper than `maxSpecDepth`.
 */
export function flattenSpec(
  spec: unknown,
  names: ReadonlySet<string>,
  limit = Number.POSITIVE_INFINITY,
): { readonly flat: Flattened; readonly bytes: number } | undefined {
  const flattener = new Flattener(names, limit);
  if (!flattener.add(spec, names.size === 0 ? anywhere : specRoot)) return undefined;
  return { flat: flattener.out, bytes: flattener.bytes };
}

/** One comparison of a request's spec with a flattened one; `at` is the position in `flat`. */
class FlatMatch {
  readonly flat: Flattened;
  readonly names: ReadonlySet<string>;
  at = 0;

  constructor(flat: Flattened, names: ReadonlySet<string>) {
    this.flat = flat;
    this.names = names;
  }

  matches(value: unknown, place: Place): boolean {
    const flat = this.flat;
    if (place === nameField && typeof value === 'string' && this.names.has(value)) {
      return flat[this.at++] === standInMark;
    }
    if (typeof value !== 'object' || value === null) return flat[this.at++] === value;
    if (Array.isArray(value)) {
      if (flat[this.at] !== arrayMark || flat[this.at + 1] !== value.length) return false;
      this.at += 2;
      const entry = entryPlace(place);
      for (let i = 0; i < value.length; i += 1) if (!this.matches(value[i], entry)) return false;
      return true;
    }
    if (flat[this.at] !== objectMark) return false;
    const count = flat[this.at + 1];
    this.at += 2;
    let seen = 0;
    // for…in gives Object.keys' order here (parsed JSON inherits no enumerable keys) without
    // making an array; a key too many fails at the latest on the count below.
    for (const key in value) {
      seen += 1;
      if (flat[this.at++] !== key) return false;
      if (!this.matches((value as Record<string, unknown>)[key], fieldPlace(place, key))) return false;
    }
    return seen === count;
  }
}

/** Whether `spec` (with its own generated names `names`) is the flattened spec, names standing for each other. */
export function matchesFlattened(
  flat: Flattened,
  flatNames: number,
  spec: unknown,
  names: ReadonlySet<string>,
): boolean {
  if (flatNames !== names.size) return false;
  // Every object's key count and every array's length are checked on the way, so a match has
  // walked exactly the flattened list.
  return new FlatMatch(flat, names).matches(spec, names.size === 0 ? anywhere : specRoot);
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
  const flattened = flattenSpec(a, aNames);
  return flattened !== undefined && matchesFlattened(flattened.flat, aNames.size, b, bNames);
}

interface Remembered<T> {
  readonly spec: Flattened;
  /** How many generated token volume names the spec had. */
  readonly names: number;
  readonly bytes: number;
  readonly answer: T;
}

/**
 * Answers by (injection annotations, spec besides token volume names). The remembered specs are
 * flattened copies of past requests' specs, bounded in count and in size.
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
      if (matchesFlattened(candidate.spec, candidate.names, spec, names)) return candidate.answer;
    }
    return undefined;
  }

  /** Remembers an answer, unless the spec is too large to keep. */
  set(annotationsText: string, spec: unknown, names: ReadonlySet<string>, answer: T): void {
    // Flattening is also the copy: the request's own objects are the caller's to change.
    const flattened = flattenSpec(spec, names, maxSpecBytes - annotationsText.length);
    if (flattened === undefined) return;
    const bytes = flattened.bytes + annotationsText.length;
    let candidates = this.#byAnnotations.get(annotationsText);
    if (candidates === undefined) {
      candidates = [];
      this.#byAnnotations.set(annotationsText, candidates);
    } else {
      // Most recently used annotations go to the back of the eviction order.
      this.#byAnnotations.delete(annotationsText);
      this.#byAnnotations.set(annotationsText, candidates);
    }
    candidates.push({ spec: flattened.flat, names: names.size, bytes, answer });
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
