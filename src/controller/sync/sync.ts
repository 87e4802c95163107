/**
 * One sync of one job: objects spec + the namespace's identity → payloads (the core pipeline) →
 * each target Secret's data → create / update / leave / refuse. Every failure becomes an outcome
 * with a condition reason and a value-free message; nothing is written unless every payload was
 * produced, so a failing AWS read leaves the existing Secret exactly as it was.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { describeError, isSmkError, type SmkError, TransientError } from '../../core/errors.ts';
import type { ExpressionEvaluator } from '../../core/expressions.ts';
import { planRequests, resolvePayloads } from '../../core/payloads.ts';
import type { SecretReader, SecretRequest } from '../../core/source.ts';
import { parseMountSpec } from '../../core/spec.ts';
import type { MountSpec, Payload } from '../../core/spec-types.ts';
import { type FileTemplate, parseTemplates } from '../../core/template.ts';
import type { TemplateRenderer } from '../../core/template-render.ts';
import { apiErrorOf } from '../../kube/client.ts';
import type { IdentityResolver } from '../identity.ts';
import { type SyncJob, sourceLabel } from '../jobs.ts';
import { ownedBy, planSecretWrite } from './plan.ts';
import type { ReadAhead } from './read-ahead.ts';
import { type RenderedSecret, renderSecretData } from './render.ts';

export interface SyncDeps {
  readonly identities: IdentityResolver;
  readonly defaultRegion: string | undefined;
  /** Full JMESPath expressions, where the administrator enabled them; else plain field paths only. */
  readonly expressions?: ExpressionEvaluator | undefined;
  /** Renders spec.target.templates off the event loop, per namespace in turn (shared process). */
  readonly templateRenderer?: TemplateRenderer | undefined;
  /**
   * The Secret as the informer cache holds it, or undefined when the cache does not know it:
   * absent, or not labelled as smk's (the cache only watches those), or not seen yet.
   */
  cachedSecret(namespace: string, name: string): V1Secret | undefined;
  /** A fresh read; undefined when it does not exist. */
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
  /** Creates the Secret; undefined when a Secret of that name already exists. */
  createSecret(body: V1Secret): Promise<V1Secret | undefined>;
  /**
   * Folds smk's create entry into the apply entry of `manager` (see createManager), if the Secret
   * is still at `resourceVersion`; returns the resourceVersion to apply against.
   */
  adoptCreatedFields(
    namespace: string,
    name: string,
    resourceVersion: string,
    manager: string,
  ): Promise<string>;
  applySecret(body: V1Secret, options: { force: boolean; manager: string }): Promise<unknown>;
  /** Requests of the syncs queued next under the same identity, read with this one's (read-ahead.ts). */
  readonly readAhead?: ReadAhead | undefined;
}

export type TargetAction = 'created' | 'updated' | 'unchanged';

export interface SyncedVersion {
  readonly objectName: string;
  readonly versionId: string;
}

export type FailureReason =
  | 'InvalidSpec'
  | 'ServiceAccountNotFound'
  | 'RoleNotConfigured'
  | 'AccessDenied'
  | 'SecretNotFound'
  | 'InvalidObject'
  | 'TooLarge'
  | 'ProviderUnavailable'
  | 'ApiUnavailable'
  | 'SecretNotOwned'
  | 'SecretMissing'
  | 'SecretTypeMismatch'
  | 'MergeNotAllowed'
  | 'SecretTypeNotMergeable'
  | 'SecretImmutable'
  | 'Conflict';

export type SyncOutcome =
  | {
      readonly ok: true;
      readonly targets: readonly { readonly name: string; readonly action: TargetAction }[];
      readonly versions: readonly SyncedVersion[];
      readonly roleArn: string;
      readonly keys: number;
    }
  | {
      readonly ok: false;
      readonly reason: FailureReason;
      readonly message: string;
      /** The spec field at fault, when the error names one (logged beside the reason). */
      readonly field?: string;
      /** Worth retrying soon with backoff; false: wait for a change of the object (or a slow retry). */
      readonly retry: boolean;
      /** Targets written before a later target was refused. */
      readonly targets: readonly { readonly name: string; readonly action: TargetAction }[];
      readonly roleArn?: string;
      /** The API server's Retry-After: retry no sooner than this. */
      readonly retryAfterMs?: number;
    };

/** `error` is described value-free (describeError); a string is our own message, used as is. */
function fail(
  reason: FailureReason,
  error: unknown,
  retry: boolean,
  extra: { targets?: { name: string; action: TargetAction }[]; roleArn?: string; retryAfterMs?: number } = {},
): SyncOutcome {
  return {
    ok: false,
    reason,
    message: typeof error === 'string' ? error : describeError(error),
    retry,
    targets: extra.targets ?? [],
    ...(isSmkError(error) && error.field ? { field: error.field } : {}),
    ...(extra.roleArn ? { roleArn: extra.roleArn } : {}),
    ...(extra.retryAfterMs === undefined ? {} : { retryAfterMs: extra.retryAfterMs }),
  };
}

/**
 * A target Secret's read or write the API server failed. 409: changed since it was read, a
 * Conflict retried on what is there now (as is a 422 of the adoption patch, whose resourceVersion
 * test failed). 400/422 of the Secret itself: the server refuses what the spec asks for (a label
 * value it does not allow, …), InvalidSpec naming the field and not retried until the object
 * changes. The rest (429, 5xx, unreachable): retried with backoff, never before Retry-After.
 */
function apiFailure(
  error: unknown,
  step: 'write' | 'adopt',
  extra: { targets: { name: string; action: TargetAction }[]; roleArn: string },
): SyncOutcome {
  const failure = apiErrorOf(error);
  const status = failure?.status;
  if (status === 409 || (step === 'adopt' && status === 422)) return fail('Conflict', error, true, extra);
  if (status === 400 || status === 422) return fail('InvalidSpec', error, false, extra);
  const retryAfterMs = failure?.retryAfterMs;
  return fail('ApiUnavailable', error, true, {
    ...extra,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

function identityFailure(error: unknown): SyncOutcome {
  if (!isSmkError(error)) return fail('ApiUnavailable', error, true);
  switch (error.kind) {
    case 'NotFound':
      return fail('ServiceAccountNotFound', error, true);
    case 'InvalidInput':
      return fail('RoleNotConfigured', error, true);
    case 'AccessDenied':
      return fail('AccessDenied', error, true);
    default:
      return fail('ApiUnavailable', error, true);
  }
}

function fetchFailure(error: SmkError, roleArn: string): SyncOutcome {
  const extra = { roleArn };
  switch (error.kind) {
    case 'AccessDenied':
      return fail('AccessDenied', error, true, extra);
    case 'NotFound':
      return fail('SecretNotFound', error, true, extra);
    case 'InvalidInput':
      return fail('InvalidObject', error, true, extra);
    case 'TooLarge':
      return fail('TooLarge', error, true, extra);
    default:
      return fail('ProviderUnavailable', error, true, extra);
  }
}

function versionsOf(payloads: readonly Payload[]): SyncedVersion[] {
  const seen = new Map<string, string>();
  for (const payload of payloads) {
    if (!seen.has(payload.objectVersion.id))
      seen.set(payload.objectVersion.id, payload.objectVersion.version);
  }
  return [...seen].map(([objectName, versionId]) => ({ objectName, versionId }));
}

/**
 * refreshPolicy CreatedOnce: the target Secrets when every one exists and is this source's (then
 * nothing is read from AWS nor written again); undefined otherwise, and a read failure counts as
 * not created, leaving the normal path to decide.
 */
async function createdSecrets(job: SyncJob, deps: SyncDeps): Promise<V1Secret[] | undefined> {
  const secrets: V1Secret[] = [];
  for (const target of job.targets) {
    const secret = await Promise.resolve(
      deps.cachedSecret(job.source.namespace, target.name) ??
        deps.readSecret(job.source.namespace, target.name),
    ).catch(() => undefined);
    if (!secret || !ownedBy(secret, job.source)) return undefined;
    secrets.push(secret);
  }
  return secrets;
}

/**
 * Starts the read of what the next queued syncs of this identity need, so it joins this sync's
 * read in one batch call (the reader coalesces reads that start together); its outcome is theirs
 * to see, when they read the same requests from the cache.
 */
function readAheadFor(job: SyncJob, spec: MountSpec, reader: SecretReader, deps: SyncDeps): void {
  const held = reader.held?.bind(reader);
  if (!deps.readAhead || !held) return;
  let own: SecretRequest[];
  try {
    own = planRequests(spec, deps.defaultRegion).map((object) => object.primary);
  } catch {
    return; // resolvePayloads reports the same problem for this sync
  }
  const ahead = deps.readAhead(job, own, held);
  if (ahead.length > 0) reader.read(ahead).catch(() => undefined);
}

export async function syncJob(job: SyncJob, deps: SyncDeps): Promise<SyncOutcome> {
  const label = sourceLabel(job.source);
  let spec: ReturnType<typeof parseMountSpec>;
  let templates: FileTemplate[];
  try {
    spec = parseMountSpec(job.params, label, { allowExpressions: deps.expressions !== undefined });
    templates = parseTemplates(job.templates, (key) => `spec.target.templates.${key}`, label, spec);
  } catch (error) {
    return fail('InvalidSpec', error, false);
  }

  const created = job.refreshPolicy === 'CreatedOnce' ? await createdSecrets(job, deps) : undefined;
  if (created) {
    return {
      ok: true,
      targets: job.targets.map((target) => ({ name: target.name, action: 'unchanged' as const })),
      versions: [],
      // The condition says "(role …)": nothing was read, and this says why.
      roleArn: 'not used: refreshPolicy CreatedOnce and the Secret exists',
      keys: created.reduce((sum, secret) => sum + Object.keys(secret.data ?? {}).length, 0),
    };
  }

  let identity: Awaited<ReturnType<IdentityResolver['resolve']>>;
  try {
    identity = await deps.identities.resolve(job.source.namespace, job.serviceAccountName, job.roleChain);
  } catch (error) {
    return identityFailure(error);
  }
  const roleArn = identity.roleArn;
  readAheadFor(job, spec, identity.reader, deps);

  let payloads: Payload[];
  try {
    payloads = await resolvePayloads(spec, identity.reader, {
      defaultRegion: deps.defaultRegion,
      subject: label,
      expressions: deps.expressions,
      templates,
      templateRenderer: deps.templateRenderer,
      tenant: job.source.namespace,
    });
  } catch (error) {
    if (isSmkError(error)) return fetchFailure(error, roleArn);
    return fail('ProviderUnavailable', new TransientError(`${label}: ${describeError(error)}`), true, {
      roleArn,
    });
  }

  // Render every target before writing any, so a bad mapping writes nothing.
  const rendered: RenderedSecret[] = [];
  for (const target of job.targets) {
    try {
      rendered.push(renderSecretData(payloads, target, label));
    } catch (error) {
      const reason = isSmkError(error) && error.kind === 'TooLarge' ? 'TooLarge' : 'InvalidSpec';
      return fail(reason, error, reason === 'TooLarge', { roleArn });
    }
  }

  const written: { name: string; action: TargetAction }[] = [];
  let refusal: { reason: FailureReason; message: string } | undefined;
  let keys = 0;
  const namespace = job.source.namespace;
  const versions = versionsOf(payloads);
  const versionMap = Object.fromEntries(versions.map((entry) => [entry.objectName, entry.versionId]));
  for (const [index, target] of job.targets.entries()) {
    const data = rendered[index]?.data ?? {};
    keys += Object.keys(data).length;
    const desired = {
      source: job.source,
      target,
      creationPolicy: job.creationPolicy,
      data,
      versions: versionMap,
    };
    let existing = deps.cachedSecret(namespace, target.name);
    try {
      if (!existing && job.creationPolicy !== 'Merge') {
        // Not in the cache: most likely absent (a first sync). Create it outright; only when a
        // Secret of that name exists (409) is it read and judged like any other.
        const create = planSecretWrite(desired, undefined);
        if (create.action === 'create' && (await deps.createSecret(create.body))) {
          written.push({ name: target.name, action: 'created' });
          continue;
        }
      }
      existing ??= await deps.readSecret(namespace, target.name);
    } catch (error) {
      return apiFailure(error, 'write', { targets: written, roleArn });
    }
    const plan = planSecretWrite(desired, existing);
    if (plan.action === 'refuse') {
      // Other targets are still written; the first refusal is what the condition reports.
      refusal ??= { reason: plan.reason, message: plan.message };
      continue;
    }
    if (plan.action === 'unchanged') {
      written.push({ name: target.name, action: 'unchanged' });
      continue;
    }
    let step: 'write' | 'adopt' = 'write';
    try {
      let body = plan.body;
      const resourceVersion = existing?.metadata?.resourceVersion;
      if (plan.action === 'update' && plan.adoptCreated && resourceVersion) {
        step = 'adopt';
        const adopted = await deps.adoptCreatedFields(namespace, target.name, resourceVersion, plan.manager);
        step = 'write';
        body = { ...body, metadata: { ...body.metadata, resourceVersion: adopted } };
      }
      await deps.applySecret(body, { force: plan.force, manager: plan.manager });
    } catch (error) {
      return apiFailure(error, step, { targets: written, roleArn });
    }
    written.push({ name: target.name, action: plan.action === 'create' ? 'created' : 'updated' });
  }
  if (refusal) return fail(refusal.reason, refusal.message, true, { targets: written, roleArn });
  return { ok: true, targets: written, versions, roleArn, keys };
}
