/**
 * THE pipeline every role uses: objects spec + a reader bound to one identity → named payloads.
 * The agent writes them as files, the CSI provider returns them, the sync controller stores them.
 *
 * Reads: one read() for every request (duplicates merged; the aws layer batches). With a
 * failoverRegion both regions are read, as ASCP reads them (its README, "Automated Failover
 * Regions"): a client error (not found, denied, invalid) from either fails the object, as a
 * configuration error; a 5xx or network failure in one region is
 * covered by the other's answer; the primary's value wins when both answer. An extraction error
 * is never hidden behind a failover. Any failure throws; no partial sets.
 */
import { expandDiscoveries } from './discovery.ts';
import { about, InvalidInputError, isSmkError, type SmkError, TransientError } from './errors.ts';
import type { ExpressionEvaluator } from './expressions.ts';
import {
  evaluateExpressions,
  extractKeys,
  type FieldSelections,
  selectFields,
  wholeValue,
} from './extract.ts';
import {
  assertSafeRelativeName,
  jmesPathFileName,
  type NamedFile,
  nameConflicts,
  objectFileName,
} from './naming.ts';
import {
  followedStage,
  type ReadResult,
  requestedStage,
  type SecretReader,
  type SecretRequest,
  type SecretValue,
} from './source.ts';
import type { FileMode, MountSpec, ObjectSpec, Payload } from './spec-types.ts';
import type { FileTemplate } from './template.ts';
import { renderTemplates, renderTemplatesOffThread, type TemplateRenderer } from './template-render.ts';

export const defaultFileMode: FileMode = 0o644;

export interface PlannedObject {
  readonly object: ObjectSpec;
  /** `objects[1] (db)`, for messages. */
  readonly label: string;
  readonly primary: SecretRequest;
  /** Present when the spec has a failoverRegion other than this object's region. */
  readonly failover?: SecretRequest;
}

export interface ResolveOptions {
  /** Region for objects whose spec names none (no ARN, no `region`), e.g. from AWS_REGION. */
  readonly defaultRegion?: string | undefined;
  /** Mode for files without a filePermission; 0o644 (as ASCP) when not given. */
  readonly defaultFileMode?: FileMode | undefined;
  /** Prefix of every error message, e.g. `SecretProviderClass default/aws-secrets`. */
  readonly subject?: string | undefined;
  /**
   * Runs full JMESPath expressions (off the event loop, within a budget); only where the
   * administrator enabled them. Without it a spec may hold plain field paths only.
   */
  readonly expressions?: ExpressionEvaluator | undefined;
  /**
   * Ask where each Secrets Manager stage (AWSCURRENT, a label) points now (one DescribeSecret
   * per secret) before reading, instead of trusting a resolution for up to the stage TTL: for
   * the CSI driver's rotation re-mount, as ASCP does. The value is read again only when the
   * version moved; a failed check leaves the read to report.
   */
  readonly recheckStages?: boolean | undefined;
  /**
   * Files made from several of the spec's own files (./template.ts), added after them. Parsed and
   * checked against the spec by the role with parseTemplates, so a template's syntax and the names
   * it reads fail before anything is read.
   */
  readonly templates?: readonly FileTemplate[] | undefined;
  /**
   * Renders the templates in a worker thread (the shared controller: a tenant's template must not
   * hold the event loop that serves every namespace). Without it they render on this thread.
   */
  readonly templateRenderer?: TemplateRenderer | undefined;
  /** Whose work this is (the namespace), for the worker pool's turns between tenants. */
  readonly tenant?: string | undefined;
}

const labelOf = (object: ObjectSpec): string =>
  object.discoveredBy === undefined
    ? `objects[${object.index}] (${object.objectName})`
    : `${object.discoveredBy}: found ${object.objectName}`;

function request(
  object: ObjectSpec,
  id: string,
  region: string,
  versionId: string | undefined,
  label: string | undefined,
): SecretRequest {
  const versionStage = requestedStage({ objectType: object.objectType, versionId, versionStage: label });
  return {
    objectType: object.objectType,
    id,
    region,
    ...(versionId === undefined ? {} : { versionId }),
    ...(versionStage === undefined ? {} : { versionStage }),
  };
}

function regionOf(
  object: ObjectSpec,
  spec: MountSpec,
  defaultRegion: string | undefined,
  subject: string,
): string {
  const region = object.arnRegion ?? spec.region ?? defaultRegion;
  if (region === undefined) {
    const label = labelOf(object);
    throw new InvalidInputError(
      `${subject}: ${label}: no region; expected region in the spec, an ARN objectName, or a default region (AWS_REGION)`,
      { subject: `${subject}: ${label}`, field: 'region' },
    );
  }
  return region;
}

/**
 * The requests a spec makes, per object: where each secret is read (region from the ARN, else
 * the spec's region, else defaultRegion) and at which version. Rotation uses this to know
 * which secrets a spec depends on. A `discover` entry plans nothing: its objects are known only
 * once listed (resolvePayloads does that on every run).
 */
export function planRequests(
  spec: MountSpec,
  defaultRegion: string | undefined,
  subject = 'objects spec',
): PlannedObject[] {
  return spec.objects.flatMap((object) => {
    if (object.discover !== undefined) return [];
    const label = labelOf(object);
    const region = regionOf(object, spec, defaultRegion, subject);
    const primary = request(
      object,
      object.objectName,
      region,
      object.objectVersion,
      object.objectVersionLabel,
    );
    const failoverRegion = spec.failoverRegion;
    if (failoverRegion === undefined || failoverRegion === region) return [{ object, label, primary }];
    const alternate = object.failoverObject;
    const failover = request(
      object,
      alternate?.objectName ?? object.objectName,
      failoverRegion,
      alternate?.objectVersion ?? object.objectVersion,
      alternate?.objectVersionLabel ?? object.objectVersionLabel,
    );
    return [{ object, label, primary, failover }];
  });
}

/** A request's identity: equal keys, equal reads (what a batch merges, what a sync's read-ahead skips). */
export const requestKey = (r: SecretRequest): string =>
  JSON.stringify([r.objectType, r.id, r.region, r.versionId ?? null, r.versionStage ?? null]);

/** One read() for all requests, identical ones merged; results in request order. */
async function readAll(reader: SecretReader, requests: readonly SecretRequest[]): Promise<ReadResult[]> {
  if (requests.length === 0) return [];
  const unique = new Map<string, SecretRequest>();
  for (const r of requests) if (!unique.has(requestKey(r))) unique.set(requestKey(r), r);
  const asked = [...unique.values()];
  const answers = await reader.read(asked);
  if (answers.length !== asked.length) {
    throw new TransientError(`secret reader answered ${answers.length} of ${asked.length} requests`);
  }
  const byKey = new Map<string, ReadResult>();
  asked.forEach((r, i) => {
    const answer = answers[i];
    if (answer) byKey.set(requestKey(r), answer);
  });
  return requests.map((r) => byKey.get(requestKey(r)) as ReadResult);
}

/** The reader learns where the stages point from each describe; errors are left to the read. */
async function recheckStages(reader: SecretReader, requests: readonly SecretRequest[]): Promise<void> {
  const moving = new Map<string, SecretRequest>();
  for (const r of requests) {
    // Only Secrets Manager resolves stages through the reader's cache; SSM reads name the label.
    if (r.objectType === 'secretsmanager' && followedStage(r) !== undefined) moving.set(requestKey(r), r);
  }
  await Promise.all(
    [...moving.values()].map((r) =>
      reader.describe(r).catch((error: unknown) => {
        if (!isSmkError(error)) throw error;
      }),
    ),
  );
}

interface Failure {
  readonly plan: PlannedObject;
  readonly error: SmkError;
}

function throwFirst(failures: readonly Failure[], subject: string): never {
  const [first, ...rest] = failures.toSorted((a, b) => a.plan.object.index - b.plan.object.index);
  if (!first) throw new TransientError(`${subject}: no failure to report`);
  const more =
    rest.length === 0 ? '' : ` (and ${rest.length} more object${rest.length > 1 ? 's' : ''} failed)`;
  throw about(first.error, `${subject}: ${first.plan.label}`, `${first.error.message}${more}`);
}

/**
 * An object's payloads: `fixed` (the whole value, or its extracted keys) complete, `entries` (one
 * per jmesPath entry) with their bytes still to come from `fields`; `files` names them all, for
 * the conflict check of names known only after the read.
 */
interface PreparedObject {
  readonly fixed: Payload[];
  readonly entries: Payload[];
  readonly fields: FieldSelections;
  readonly files: NamedFile[];
}

function prepare(
  plan: PlannedObject,
  value: SecretValue,
  spec: MountSpec,
  options: ResolveOptions,
  subject: string,
): PreparedObject {
  const { object, label } = plan;
  const where = `${subject}: ${label}`;
  const fallbackMode = options.defaultFileMode ?? defaultFileMode;
  const mode = object.filePermission ?? fallbackMode;
  const versioned = (name: string) => ({ id: name, version: value.versionId });
  const fixed: Payload[] = [];
  const files: NamedFile[] = [];
  if (object.extractKeys) {
    // Versioned as the object (its name as a whole-value file would be), not per key: the key
    // set is the value's, while sync status and rotation name what the spec names.
    const objectId = objectFileName(object, spec.pathTranslation);
    for (const key of extractKeys(value.bytes, object.extractKeys.prefix, where)) {
      fixed.push({ name: key.name, bytes: key.bytes, mode, objectVersion: versioned(objectId) });
      files.push({ name: key.name, origin: label, field: 'extractKeys' });
    }
  } else {
    const name = objectFileName(object, spec.pathTranslation);
    const field = object.objectAlias === undefined ? 'objectName' : 'objectAlias';
    assertSafeRelativeName(name, where, field);
    fixed.push({ name, bytes: wholeValue(value.bytes, where), mode, objectVersion: versioned(name) });
    files.push({ name, origin: label, field });
  }
  const fields = selectFields(value.bytes, object.jmesPath, where, options.expressions !== undefined);
  const entries = object.jmesPath.map((entry, position): Payload => {
    const entryName = jmesPathFileName(entry, spec.pathTranslation);
    const field = `jmesPath[${position}].objectAlias`;
    assertSafeRelativeName(entryName, where, field);
    files.push({ name: entryName, origin: label, field });
    return {
      name: entryName,
      bytes: new Uint8Array(),
      mode: entry.filePermission ?? mode,
      objectVersion: versioned(entryName),
    };
  });
  return { fixed, entries, fields, files };
}

/**
 * Names made from a value's keys can meet each other or the spec's own names only now: the error
 * names both sources (object and field) and the name, which is a valid file name and Secret key
 * that anyone reading the output would see; never a value.
 */
function checkExtractedNames(
  prepared: readonly PreparedObject[],
  discovered: boolean,
  subject: string,
): void {
  if (!discovered && !prepared.some((object) => object.files.some((file) => file.field === 'extractKeys')))
    return;
  const [first] = nameConflicts(prepared.flatMap((object) => object.files));
  if (first) {
    throw new InvalidInputError(`${subject}: ${first.message}`, { subject, field: first.field });
  }
}

/**
 * Every object's payloads, in spec order. Structural failures (names, sizes, field paths) are
 * found for all objects, in order, before any expression runs, so which one is reported never
 * depends on an expression's outcome.
 */
async function payloadsOf(
  plans: readonly PlannedObject[],
  values: ReadonlyMap<PlannedObject, SecretValue>,
  spec: MountSpec,
  options: ResolveOptions,
  subject: string,
): Promise<Payload[]> {
  const prepared = plans.map((plan) =>
    prepare(plan, values.get(plan) as SecretValue, spec, options, subject),
  );
  checkExtractedNames(
    prepared,
    plans.some((plan) => plan.object.discoveredBy !== undefined),
    subject,
  );
  const selections = await evaluateExpressions(
    prepared.map((object) => object.fields),
    options.expressions,
    subject,
    options.tenant,
  );
  return prepared.flatMap(({ fixed, entries }, index) => {
    const selected = selections[index] ?? [];
    return [
      ...fixed,
      ...entries.map((payload, position) => ({ ...payload, bytes: selected[position] as Uint8Array })),
    ];
  });
}

/** An AWS 4XX: a spec or policy to fix. Throttling is one (400 ThrottlingException), as in ASCP. */
const isClientError = (error: SmkError): boolean => !error.transient || error.kind === 'Throttled';

/**
 * ASCP's failover rule: a client error in either region fails the object (a missing or
 * forbidden secret is a configuration error, not a reason to read elsewhere); otherwise the
 * primary's value, else the failover's; both failing names both answers.
 */
function eitherRegion(plan: PlannedObject, primary: ReadResult, failover: ReadResult): ReadResult {
  const failoverRegion = plan.failover?.region ?? '';
  const inRegion = (error: SmkError, region: string, role: string): SmkError =>
    about(error, `${region} (${role})`, error.message);
  if (primary.ok && (failover.ok || !isClientError(failover.error))) return primary;
  if (failover.ok) {
    if (!primary.ok && isClientError(primary.error)) {
      return { ok: false, error: inRegion(primary.error, plan.primary.region, 'primary') };
    }
    return failover;
  }
  if (primary.ok) return { ok: false, error: inRegion(failover.error, failoverRegion, 'failover') };
  // Both failed: say what each answered; a client error (something to fix) decides the class.
  const chosen =
    isClientError(primary.error) || !isClientError(failover.error) ? primary.error : failover.error;
  const message = `${plan.primary.region} (primary): ${primary.error.message}; ${failoverRegion} (failover): ${failover.error.message}`;
  return { ok: false, error: about(chosen, 'both regions failed', message) };
}

/**
 * Reads every object of `spec` through `reader` and returns one payload per file: the whole
 * value (named by naming.ts) and one per jmesPath entry, in spec order. Throws the first
 * failing object's SmkError (same sentinel class as the reader's) and returns nothing then.
 * `discover` entries are listed first (./discovery.ts), as the reader's identity; a failed
 * listing throws like a failed read, so the caller keeps what it had.
 */
export async function resolvePayloads(
  given: MountSpec,
  reader: SecretReader,
  options: ResolveOptions = {},
): Promise<Payload[]> {
  const subject = options.subject ?? 'objects spec';
  const spec = await expandDiscoveries(
    given,
    reader,
    (object) => regionOf(object, given, options.defaultRegion, subject),
    subject,
  );
  const plans = planRequests(spec, options.defaultRegion, subject);
  const requests = plans.flatMap((plan) => (plan.failover ? [plan.primary, plan.failover] : [plan.primary]));
  if (options.recheckStages) await recheckStages(reader, requests);
  const results = await readAll(reader, requests);

  const values = new Map<PlannedObject, SecretValue>();
  const failures: Failure[] = [];
  let next = 0;
  for (const plan of plans) {
    const primary = results[next++] as ReadResult;
    const failover = plan.failover ? (results[next++] as ReadResult) : undefined;
    const chosen = failover === undefined ? primary : eitherRegion(plan, primary, failover);
    if (chosen.ok) values.set(plan, chosen.value);
    else failures.push({ plan, error: chosen.error });
  }
  if (failures.length > 0) throwFirst(failures, subject);

  const produced = await payloadsOf(plans, values, spec, options, subject);
  const templates = options.templates ?? [];
  if (templates.length === 0) return produced;
  const conflict = nameConflicts([
    ...produced.map((payload) => ({ name: payload.name, origin: 'the objects', field: 'that produce it' })),
    ...templates.map((template) => ({ name: template.name, origin: 'template', field: template.field })),
  ])[0];
  if (conflict) {
    throw new InvalidInputError(`${subject}: ${conflict.message}`, { subject, field: conflict.field });
  }
  const mode = options.defaultFileMode ?? defaultFileMode;
  const rendered = options.templateRenderer
    ? await renderTemplatesOffThread(
        produced,
        templates,
        mode,
        subject,
        options.templateRenderer,
        options.tenant ?? '',
      )
    : renderTemplates(produced, templates, mode, subject);
  return [...produced, ...rendered];
}
