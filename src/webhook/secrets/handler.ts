/**
 * `POST /mutate/secrets`: the I/O around ./review.ts. The only input besides the request is the
 * controller's published public key; the answer patches the Secret into its stored form (no
 * data, the new value sealed in an annotation, references, the finalizer). Nothing is written
 * anywhere: the controller writes to Secrets Manager what the API server stored
 * (src/controller/write-through), so a forged request changes nothing, and a request the API
 * server refuses after admission leaves nothing behind.
 */
import fastJsonPatch from 'fast-json-patch';
import { describeError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { counter } from '../../core/metrics.ts';
import { type SealingPublicKey, sealValue } from '../../core/seal.ts';
import type { AdmissionResult } from '../admission.ts';
import { describeSchemaError } from '../pod.ts';
import { decideSecret, type SecretObject, secretReviewSchema, type WriteThroughSettings } from './review.ts';

const { compare } = fastJsonPatch;

const admissions = counter(
  'smk_write_through_admissions_total',
  'Secret admissions of write-through, by operation and outcome (sealed, unchanged, denied, failed).',
  ['operation', 'outcome'],
);

export interface SecretAdmissionDeps {
  readonly settings: WriteThroughSettings;
  /** The controller's published public key (./sealing-key.ts); rejects while none is published. */
  readonly publicKey: () => Promise<SealingPublicKey>;
  readonly log: Logger;
}

function respond(
  uid: string,
  allowed: boolean,
  extra: { patch?: string; status?: { code: number; reason: string; message: string } } = {},
) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed,
      ...(extra.patch === undefined ? {} : { patchType: 'JSONPatch' as const, patch: extra.patch }),
      ...(extra.status === undefined ? {} : { status: extra.status }),
    },
  } as const;
}

function denied(uid: string, message: string, code = 400, reason = 'BadRequest'): AdmissionResult {
  return {
    status: 200,
    outcome: 'denied',
    message,
    body: respond(uid, false, { status: { code, reason, message } }),
  };
}

function patched(uid: string, original: unknown, object: SecretObject): AdmissionResult {
  const target = JSON.parse(JSON.stringify(object)) as SecretObject;
  const patch = compare(original as object, target);
  if (patch.length === 0) return { status: 200, outcome: 'unchanged', body: respond(uid, true) };
  return {
    status: 200,
    outcome: 'mutated',
    body: respond(uid, true, { patch: Buffer.from(JSON.stringify(patch)).toString('base64') }),
  };
}

/** Reviews one parsed AdmissionReview body for a Secret. Never throws. */
export async function reviewSecretAdmission(
  body: unknown,
  deps: SecretAdmissionDeps,
): Promise<AdmissionResult> {
  const parsed = secretReviewSchema.safeParse(body);
  if (!parsed.success) {
    return {
      status: 400,
      outcome: 'invalid',
      message: `AdmissionReview ${describeSchemaError(parsed.error)}`,
    };
  }
  const request = parsed.data.request;
  const operation = request.operation;
  const decision = decideSecret(request, deps.settings);
  switch (decision.kind) {
    case 'allow':
      return { status: 200, outcome: 'ignored', body: respond(request.uid, true) };
    case 'deny':
      admissions.inc({ operation, outcome: 'denied' });
      return denied(request.uid, decision.message);
    case 'store':
      admissions.inc({ operation, outcome: 'unchanged' });
      return patched(request.uid, request.object, decision.object);
    case 'seal':
      break;
  }
  // Only a new value needs the key: metadata-only changes and refusals never wait for it.
  let publicKey: SealingPublicKey;
  try {
    publicKey = await deps.publicKey();
  } catch (error) {
    admissions.inc({ operation, outcome: 'failed' });
    const message = `${decision.plan.owner.namespace}/${decision.plan.owner.name}: not stored: ${describeError(error)}; try again`;
    deps.log.warn({ operation }, message);
    return denied(request.uid, `Secret ${message}`, 503, 'ServiceUnavailable');
  }
  const { plan } = decision;
  const sealed = sealValue(publicKey, plan.owner, new TextEncoder().encode(plan.document));
  admissions.inc({ operation, outcome: 'sealed' });
  return patched(request.uid, request.object, plan.stored(sealed));
}
