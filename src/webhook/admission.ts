/**
 * AdmissionReview v1 in → AdmissionReview v1 out. The pod mutation is computed on a copy and the
 * response carries the JSON patch of the difference (fast-json-patch `compare`), so there is no
 * patch state shared between requests. Input is validated once here; anything malformed is a
 * clean 400 for the caller to report, never an exception escaping to the server.
 */
import * as z from 'zod';
import { isInjectionAnnotation, mentionsInjection } from './annotations.ts';
import { AnswerCache, tokenVolumeNames } from './answer-cache.ts';
import { type InjectorConfig, mutatePod } from './mutate.ts';
import {
  absentOrString,
  describeSchemaError,
  isPlainPodMetadata,
  isRecord,
  podMetadataSchema,
  rawAnnotations,
} from './pod.ts';

const groupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });

export const admissionReviewSchema = z.object({
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

type ReviewRequest = z.infer<typeof admissionReviewSchema>['request'];

/**
 * The request of a review in the plain shape the API server sends, found without zod's general
 * object walk (it cost ~4 µs of every request in the webhook's profile); undefined means "ask the
 * schema", which also words the error. admission.test.ts proves that whatever this accepts, the
 * schema accepts, with the same fields read.
 */
export function plainReviewRequest(body: unknown): ReviewRequest | undefined {
  if (!isRecord(body) || body.apiVersion !== 'admission.k8s.io/v1' || body.kind !== 'AdmissionReview') {
    return undefined;
  }
  const request = body.request;
  if (!isRecord(request) || typeof request.uid !== 'string' || request.uid.length === 0) return undefined;
  // The schema's `object: z.unknown()` is a required key.
  if (request.object === undefined) return undefined;
  const kind = request.kind;
  if (
    kind !== undefined &&
    !(
      isRecord(kind) &&
      typeof kind.group === 'string' &&
      typeof kind.version === 'string' &&
      typeof kind.kind === 'string'
    )
  ) {
    return undefined;
  }
  if (
    !absentOrString(request.operation) ||
    !absentOrString(request.namespace) ||
    !absentOrString(request.name)
  ) {
    return undefined;
  }
  // The fields of the schema's output, all read from the checked request.
  return request as ReviewRequest;
}

export type AdmissionOutcome = 'mutated' | 'unchanged' | 'denied' | 'ignored';

export type AdmissionResult =
  | {
      readonly status: 200;
      readonly outcome: AdmissionOutcome;
      readonly body: AdmissionReviewResponse;
      /** `body` as JSON, when it was made ahead (a remembered answer's patch is serialized once). */
      readonly text?: string;
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
  let request = plainReviewRequest(body);
  if (request === undefined) {
    const parsed = admissionReviewSchema.safeParse(body);
    if (!parsed.success) {
      return {
        status: 400,
        outcome: 'invalid',
        message: `AdmissionReview ${describeSchemaError(parsed.error)}`,
      };
    }
    request = parsed.data.request;
  }
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
    // What JSON.stringify(body) gives, without serializing the patch again for each pod.
    text: `${responseHead}${JSON.stringify(request.uid)}${answer.responseTail}`,
  };
}

const responseHead = '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":';

type Answer =
  | { readonly outcome: 'mutated'; readonly patch: string; readonly responseTail: string }
  | { readonly outcome: 'unchanged' }
  | { readonly outcome: 'denied'; readonly message: string };

function mutatedAnswer(patch: string): Answer {
  return {
    outcome: 'mutated',
    patch,
    responseTail: `,"allowed":true,"patchType":"JSONPatch","patch":${JSON.stringify(patch)}}}`,
  };
}

const answerCaches = new WeakMap<InjectorConfig, AnswerCache<Answer>>();

/** The injection annotations (names and values, types included) as text: equal texts, equal plans. */
function injectionAnnotationsText(annotations: Readonly<Record<string, unknown>>): string {
  const relevant: unknown[] = [];
  for (const name of Object.keys(annotations)) {
    if (isInjectionAnnotation(name)) relevant.push(name, annotations[name]);
  }
  return JSON.stringify(relevant);
}

/**
 * The answer for one pod. The mutation reads only the injection annotations and the spec (it
 * adds the status annotation and edits the spec), and the pods of one ReplicaSet share both (but
 * for their token volume's name, see answer-cache.ts), so answers for valid pods are remembered by
 * those two: a rollout of N pods runs the mutation once.
 * A hit's spec equals one that was validated; its metadata is still checked, so a malformed pod
 * is denied whatever came before it.
 */
function answerFor(object: unknown, config: InjectorConfig): Answer {
  const raw = rawAnnotations(object);
  if (raw === undefined || !mentionsInjection(raw)) return { outcome: 'unchanged' };
  const annotationsText = injectionAnnotationsText(raw);
  const spec = (object as { spec?: unknown }).spec;
  const names = tokenVolumeNames(spec);
  let cache = answerCaches.get(config);
  const cached = cache?.get(annotationsText, spec, names);
  if (cached !== undefined) {
    const metadata = (object as { metadata?: unknown }).metadata;
    if (isPlainPodMetadata(metadata) || podMetadataSchema.safeParse(metadata).success) return cached;
  }

  const result = mutatePod(object, config);
  const patchText = 'denied' in result || !result.changed ? undefined : JSON.stringify(result.patch);
  const answer: Answer =
    'denied' in result
      ? { outcome: 'denied', message: result.denied }
      : patchText !== undefined
        ? mutatedAnswer(Buffer.from(patchText).toString('base64'))
        : { outcome: 'unchanged' };
  // Only a pod of valid shape is remembered (mutatePod checked it; a malformed one is denied),
  // and only an answer that holds none of this pod's own names (a sibling's would differ there).
  const answerText = patchText ?? ('denied' in result ? result.denied : '');
  const cacheable =
    !('denied' in result && result.malformed) && ![...names].some((name) => answerText.includes(name));
  if (cacheable) {
    if (cache === undefined) {
      cache = new AnswerCache();
      answerCaches.set(config, cache);
    }
    cache.set(annotationsText, spec, names, answer);
  }
  return answer;
}
