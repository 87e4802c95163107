/**
 * `POST /mutate/secrets`: the I/O around ./review.ts. The decision is made first (every check
 * that can refuse); then, unless it is a dry run, the value is written to Secrets Manager with
 * the webhook's own identity, and the answer patches the Secret into its stored form (no data,
 * references in annotations, the finalizer). Any failure to store denies the request.
 *
 * Order, and what a refusal after the write leaves behind:
 *  - CREATE: CreateSecret carries value and tags in one call (no half state). Should Kubernetes
 *    then refuse the Secret, the secret has no committed tag; the controller's sweep deletes it
 *    (no recovery window: nothing ever consumed it).
 *  - UPDATE: PutSecretValue stages the new version `smk-pending`, not AWSCURRENT. Only the
 *    controller makes a version current, and only the one a stored Secret names, so a version
 *    Kubernetes refused is never served; it stays without AWSCURRENT and loses its label to the
 *    next write (AWS has no call that deletes one version).
 */
import fastJsonPatch from 'fast-json-patch';
import type { SecretWriter } from '../../aws/index.ts';
import {
  AccessDeniedError,
  isSmkError,
  type SmkError,
  ThrottledError,
  TransientError,
} from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { counter } from '../../core/metrics.ts';
import { pendingStage, writeThroughTags } from '../../core/write-through.ts';
import type { AdmissionResult } from '../admission.ts';
import { describeSchemaError } from '../pod.ts';
import {
  decideSecret,
  type SecretObject,
  secretReviewSchema,
  type TokenOf,
  type WritePlan,
  type WriteThroughSettings,
  type WrittenRef,
} from './review.ts';

const { compare } = fastJsonPatch;

const admissions = counter(
  'smk_write_through_admissions_total',
  'Secret admissions of write-through, by operation and outcome (written, unchanged, dry_run, denied, failed).',
  ['operation', 'outcome'],
);

export interface SecretAdmissionDeps {
  readonly settings: WriteThroughSettings;
  readonly writer: Pick<SecretWriter, 'create' | 'putValue' | 'describe' | 'restore'>;
  /** The token function with the current key material (read per request: it may rotate with the serving key). */
  readonly tokenOf: () => Promise<TokenOf>;
  /** KMS key (id, alias or ARN) new secrets are encrypted with; default the account's aws/secretsmanager key. */
  readonly kmsKeyId?: string;
  /** Whether a Secret of that name exists (CREATE pre-check); undefined when it cannot be told. */
  readonly secretExists?: (namespace: string, name: string) => Promise<boolean | undefined>;
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

/** HTTP status and reason for a failed write: the client sees whether retrying may help. */
function statusFor(error: SmkError): { code: number; reason: string } {
  if (error instanceof AccessDeniedError) return { code: 403, reason: 'Forbidden' };
  if (error instanceof ThrottledError) return { code: 429, reason: 'TooManyRequests' };
  if (error instanceof TransientError) return { code: 503, reason: 'ServiceUnavailable' };
  return { code: 400, reason: 'BadRequest' };
}

class Conflict extends Error {}

/** Adopting an existing secret of that name: only the one this cluster made for this Secret. */
async function adopt(plan: WritePlan, deps: SecretAdmissionDeps): Promise<WrittenRef> {
  const existing = await deps.writer.describe(plan.secretName);
  if (existing === undefined) {
    throw new TransientError(`${plan.subject}: secret ${plan.secretName} exists and vanished; try again`);
  }
  const tags = existing.tags;
  const ours =
    tags[writeThroughTags.cluster] === plan.tags[writeThroughTags.cluster] &&
    tags[writeThroughTags.namespace] === plan.namespace &&
    tags[writeThroughTags.name] === plan.name;
  if (!ours) {
    throw new Conflict(
      `${plan.subject}: Secrets Manager secret ${plan.secretName} exists and was not written through for this Secret in this cluster; name another with annotation smk.dev/aws-secret-name, or remove it`,
    );
  }
  // A Secret deleted with a recovery window and made again: take its secret back.
  if (existing.deletedDate !== undefined) await deps.writer.restore(existing.arn);
  const put = await deps.writer.putValue({
    id: existing.arn,
    value: plan.document,
    clientRequestToken: plan.token,
    stages: [pendingStage],
  });
  return { arn: put.arn, versionId: put.versionId };
}

async function write(plan: WritePlan, deps: SecretAdmissionDeps): Promise<WrittenRef> {
  if (plan.mode === 'update' && plan.arn !== undefined) {
    const put = await deps.writer.putValue({
      id: plan.arn,
      value: plan.document,
      clientRequestToken: plan.token,
      stages: [pendingStage],
    });
    return { arn: put.arn, versionId: put.versionId };
  }
  const created = await deps.writer.create({
    name: plan.secretName,
    value: plan.document,
    clientRequestToken: plan.token,
    tags: plan.tags,
    description: plan.description,
    ...(deps.kmsKeyId === undefined ? {} : { kmsKeyId: deps.kmsKeyId }),
  });
  if (created.created) return { arn: created.version.arn, versionId: created.version.versionId };
  return adopt(plan, deps);
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
  let tokenOf: TokenOf;
  try {
    tokenOf = await deps.tokenOf();
  } catch {
    admissions.inc({ operation, outcome: 'failed' });
    return denied(
      request.uid,
      'write-through: the webhook cannot read its token key; try again',
      503,
      'ServiceUnavailable',
    );
  }
  const decision = decideSecret(request, deps.settings, tokenOf);
  switch (decision.kind) {
    case 'allow':
      return { status: 200, outcome: 'ignored', body: respond(request.uid, true) };
    case 'deny':
      admissions.inc({ operation, outcome: 'denied' });
      return denied(request.uid, decision.message);
    case 'store':
      admissions.inc({ operation, outcome: request.dryRun ? 'dry_run' : 'unchanged' });
      return patched(request.uid, request.object, decision.object);
    case 'write':
      break;
  }
  const plan = decision.plan;
  const where = { namespace: plan.namespace, name: plan.name, secretName: plan.secretName, operation };
  try {
    if (request.operation === 'CREATE' && (await deps.secretExists?.(plan.namespace, plan.name)) === true) {
      admissions.inc({ operation, outcome: 'denied' });
      return denied(
        request.uid,
        `${plan.subject}: already exists; nothing was written`,
        409,
        'AlreadyExists',
      );
    }
    const ref = await write(plan, deps);
    admissions.inc({ operation, outcome: 'written' });
    deps.log.info(
      { ...where, arn: ref.arn, versionId: ref.versionId, mode: plan.mode },
      'secret written through',
    );
    return patched(request.uid, request.object, plan.stored(ref));
  } catch (error) {
    admissions.inc({ operation, outcome: 'failed' });
    if (error instanceof Conflict) {
      deps.log.info(where, error.message);
      return denied(request.uid, error.message, 409, 'Conflict');
    }
    const failure = isSmkError(error) ? error : new TransientError('unexpected error');
    const message = `${plan.subject}: not stored, the value could not be written to Secrets Manager: ${failure.message}`;
    deps.log.warn(where, message);
    const { code, reason } = statusFor(failure);
    return denied(request.uid, message, code, reason);
  }
}
