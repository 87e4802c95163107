/**
 * AdmissionReview v1 in → AdmissionReview v1 out. The pod mutation is computed on a copy and the
 * response carries the JSON patch of the difference (fast-json-patch `compare`), so there is no
 * patch state shared between requests. Input is validated once here; anything malformed is a
 * clean 400 for the caller to report, never an exception escaping to the server.
 */
import { hash } from 'node:crypto';
import * as z from 'zod';
import { isInjectionAnnotation, mentionsInjection } from './annotations.ts';
import { type InjectorConfig, mutatePod } from './mutate.ts';
import { describeSchemaError, podMetadataSchema, rawAnnotations } from './pod.ts';

const groupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });

const admissionReviewSchema = z.object({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string().min(1),
    kind: groupVersionKind.optional(),
    operation: z.string().optional(),
    namespace: z.string().optional(),
    name: z.string().optional(),
    object: z.unknown(),
  }),
});

export type AdmissionOutcome = 'mutated' | 'unchanged' | 'denied' | 'ignored';

export type AdmissionResult =
  | {
      readonly status: 200;
      readonly outcome: AdmissionOutcome;
      readonly body: AdmissionReviewResponse;
      /** The denial message (value-free), for the log line. */
      readonly message?: string;
    }
  | { readonly status: 400; readonly outcome: 'invalid'; readonly message: string };

export interface AdmissionReviewResponse {
  readonly apiVersion: 'admission.k8s.io/v1';
  readonly kind: 'AdmissionReview';
  readonly response: {
    readonly uid: string;
    readonly allowed: boolean;
    readonly patchType?: 'JSONPatch';
    readonly patch?: string;
    readonly status?: { readonly code: number; readonly reason: string; readonly message: string };
  };
}

function respond(uid: string, allowed: boolean, extra: Partial<AdmissionReviewResponse['response']> = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, allowed, ...extra },
  } as const;
}

/** Reviews a parsed request body. Only Pod CREATE is mutated; anything else is allowed unchanged. */
export function reviewAdmission(body: unknown, config: InjectorConfig): AdmissionResult {
  const parsed = admissionReviewSchema.safeParse(body);
  if (!parsed.success) {
    return {
      status: 400,
      outcome: 'invalid',
      message: `AdmissionReview ${describeSchemaError(parsed.error)}`,
    };
  }
  const request = parsed.data.request;
  const isPod = request.kind === undefined || (request.kind.group === '' && request.kind.kind === 'Pod');
  if (!isPod || (request.operation !== undefined && request.operation !== 'CREATE')) {
    return { status: 200, outcome: 'ignored', body: respond(request.uid, true) };
  }
  const answer = answerFor(request.object, config);
  if (answer.outcome === 'denied') {
    return {
      status: 200,
      outcome: 'denied',
      message: answer.message,
      body: respond(request.uid, false, {
        status: { code: 400, reason: 'BadRequest', message: answer.message },
      }),
    };
  }
  if (answer.outcome === 'unchanged')
    return { status: 200, outcome: 'unchanged', body: respond(request.uid, true) };
  return {
    status: 200,
    outcome: 'mutated',
    body: respond(request.uid, true, { patchType: 'JSONPatch', patch: answer.patch }),
  };
}

type Answer =
  | { readonly outcome: 'mutated'; readonly patch: string }
  | { readonly outcome: 'unchanged' }
  | { readonly outcome: 'denied'; readonly message: string };

const answerCacheSize = 256;
const answerCaches = new WeakMap<InjectorConfig, Map<string, Answer>>();

/**
 * The ServiceAccount admission plugin, which runs before any webhook, gives each pod's token
 * volume (a projected volume) a name of its own: `kube-api-access-` and 5 random characters, named
 * again by the containers' mounts of it. Nothing else differs between the pods of one ReplicaSet,
 * so the key puts a placeholder in those places, and only there (a container or an annotation
 * value spelled the same way is the pod's own choice), else no two pods would share an answer.
 */
const generatedTokenVolumeName = /^kube-api-access-[a-z0-9]{5}$/;
const tokenVolumePlaceholder = 'kube-api-access-*';

export interface AnswerKey {
  readonly digest: string;
  /** The token volume names the key stands in for: an answer that names one is not shared. */
  readonly perPodNames: readonly string[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The spec (not yet validated) with its generated token volume's name and mounts stood in for. */
function withTokenVolumePlaceholder(spec: unknown): {
  readonly spec: unknown;
  readonly perPodNames: string[];
} {
  if (!isRecord(spec) || !Array.isArray(spec.volumes)) return { spec, perPodNames: [] };
  const names = new Set<string>();
  for (const volume of spec.volumes) {
    if (isRecord(volume) && typeof volume.name === 'string' && isRecord(volume.projected)) {
      if (generatedTokenVolumeName.test(volume.name)) names.add(volume.name);
    }
  }
  if (names.size === 0) return { spec, perPodNames: [] };
  const rename = (entry: unknown): unknown =>
    isRecord(entry) && typeof entry.name === 'string' && names.has(entry.name)
      ? { ...entry, name: tokenVolumePlaceholder }
      : entry;
  const withMounts = (containers: unknown): unknown =>
    Array.isArray(containers)
      ? containers.map((container) =>
          isRecord(container) && Array.isArray(container.volumeMounts)
            ? { ...container, volumeMounts: container.volumeMounts.map(rename) }
            : container,
        )
      : containers;
  return {
    spec: {
      ...spec,
      volumes: spec.volumes.map(rename),
      ...('containers' in spec ? { containers: withMounts(spec.containers) } : {}),
      ...('initContainers' in spec ? { initContainers: withMounts(spec.initContainers) } : {}),
    },
    perPodNames: [...names],
  };
}

/**
 * Equal digests mean equal injection annotations (types included) and specs equal but for the
 * token volume's name. A digest, not the text: a spec can be megabytes, and 256 of them kept as
 * keys would outgrow the webhook's memory.
 */
export function answerKey(annotations: Readonly<Record<string, unknown>>, spec: unknown): AnswerKey {
  const relevant: unknown[] = [];
  for (const name of Object.keys(annotations)) {
    if (isInjectionAnnotation(name)) relevant.push(name, annotations[name]);
  }
  const keyed = withTokenVolumePlaceholder(spec);
  return {
    digest: hash('sha256', JSON.stringify([relevant, keyed.spec]), 'base64'),
    perPodNames: keyed.perPodNames,
  };
}

/**
 * The answer for one pod. The mutation reads only the injection annotations and the spec (it
 * adds the status annotation and edits the spec), and the pods of one ReplicaSet share both (but
 * for their token volume's name, see answerKey), so answers for valid pods are remembered by
 * those two: a rollout of N pods runs the mutation once.
 * A hit's spec equals one that was validated; its metadata is still checked, so a malformed pod
 * is denied whatever came before it.
 */
function answerFor(object: unknown, config: InjectorConfig): Answer {
  const raw = rawAnnotations(object);
  if (raw === undefined || !mentionsInjection(raw)) return { outcome: 'unchanged' };
  const key = answerKey(raw, (object as { spec?: unknown }).spec);
  let cache = answerCaches.get(config);
  const cached = cache?.get(key.digest);
  if (
    cached !== undefined &&
    podMetadataSchema.safeParse((object as { metadata?: unknown }).metadata).success
  ) {
    return cached;
  }

  const result = mutatePod(object, config);
  const patchText = 'denied' in result || !result.changed ? undefined : JSON.stringify(result.patch);
  const answer: Answer =
    'denied' in result
      ? { outcome: 'denied', message: result.denied }
      : patchText !== undefined
        ? { outcome: 'mutated', patch: Buffer.from(patchText).toString('base64') }
        : { outcome: 'unchanged' };
  // Only a pod of valid shape is remembered (mutatePod checked it; a malformed one is denied),
  // and only an answer that holds none of this pod's own names (a sibling's would differ there).
  const answerText = patchText ?? ('denied' in result ? result.denied : '');
  const cacheable =
    !('denied' in result && result.malformed) && !key.perPodNames.some((name) => answerText.includes(name));
  if (cacheable) {
    if (cache === undefined) {
      cache = new Map();
      answerCaches.set(config, cache);
    }
    cache.set(key.digest, answer);
    if (cache.size > answerCacheSize) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
  }
  return answer;
}
