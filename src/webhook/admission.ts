/**
 * AdmissionReview v1 in → AdmissionReview v1 out. The pod mutation is computed on a copy and the
 * response carries the JSON patch of the difference (fast-json-patch `compare`), so there is no
 * patch state shared between requests. Input is validated once here; anything malformed is a
 * clean 400 for the caller to report, never an exception escaping to the server.
 */
import fastJsonPatch from 'fast-json-patch';
import { z } from 'zod';
import { type InjectorConfig, mutatePod } from './mutate.ts';
import { describeSchemaError } from './pod.ts';

const { compare } = fastJsonPatch;

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
  const result = mutatePod(request.object, config);
  if ('denied' in result) {
    return {
      status: 200,
      outcome: 'denied',
      message: result.denied,
      body: respond(request.uid, false, {
        status: { code: 400, reason: 'BadRequest', message: result.denied },
      }),
    };
  }
  if (!result.changed) return { status: 200, outcome: 'unchanged', body: respond(request.uid, true) };
  const patch = compare(request.object as object, result.pod);
  return {
    status: 200,
    outcome: 'mutated',
    body: respond(request.uid, true, {
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
    }),
  };
}
