/**
 * THE pipeline every role uses: objects spec + a reader bound to one identity → named payloads.
 * The agent writes them as files, the CSI provider returns them, the sync controller stores them.
 *
 * Reads: one read() for every primary request (duplicates merged; the aws layer batches), then at
 * most one more for the objects whose primary read failed in a way another region can fix.
 * Unlike ASCP, the failover region is never asked when the primary answered, and an
 * extraction error is never hidden behind a failover. Any failure throws; no partial sets.
 */
import {
  AccessDeniedError,
  InvalidInputError,
  NotFoundError,
  NotModifiedError,
  type SmkError,
  type SmkErrorKind,
  type SmkErrorOptions,
  ThrottledError,
  TooLargeError,
  TransientError,
} from './errors.ts';
import type { ExpressionEvaluator } from './expressions.ts';
import { evaluateExpressions, type FieldSelections, selectFields, wholeValue } from './extract.ts';
import { assertSafeRelativeName, jmesPathFileName, objectFileName } from './naming.ts';
import {
  currentStage,
  type ReadResult,
  type SecretReader,
  type SecretRequest,
  type SecretValue,
} from './source.ts';
import type { FileMode, MountSpec, ObjectSpec, Payload } from './spec-types.ts';

export const defaultFileMode: FileMode = 0o644;

/** Primary-read failures that another region may not have: worth one failover read. */
const failoverKinds: ReadonlySet<SmkErrorKind> = new Set([
  'NotFound',
  'Transient',
  'Throttled',
  'AccessDenied',
]);

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
}

const labelOf = (object: ObjectSpec): string => `objects[${object.index}] (${object.objectName})`;

function request(
  object: ObjectSpec,
  id: string,
  region: string,
  versionId: string | undefined,
  label: string | undefined,
): SecretRequest {
  // Secrets Manager always gets an explicit stage (moto.md #1): AWSCURRENT unless pinned.
  const versionStage =
    label ?? (object.objectType === 'secretsmanager' && versionId === undefined ? currentStage : undefined);
  return {
    objectType: object.objectType,
    id,
    region,
    ...(versionId === undefined ? {} : { versionId }),
    ...(versionStage === undefined ? {} : { versionStage }),
  };
}

/**
 * The requests a spec makes, per object: where each secret is read (region from the ARN, else
 * the spec's region, else defaultRegion) and at which version. Rotation uses this to know
 * which secrets a spec depends on.
 */
export function planRequests(
  spec: MountSpec,
  defaultRegion: string | undefined,
  subject = 'objects spec',
): PlannedObject[] {
  return spec.objects.map((object) => {
    const label = labelOf(object);
    const region = object.arnRegion ?? spec.region ?? defaultRegion;
    if (region === undefined) {
      throw new InvalidInputError(
        `${subject}: ${label}: no region; expected region in the spec, an ARN objectName, or a default region (AWS_REGION)`,
        { subject: `${subject}: ${label}`, field: 'region' },
      );
    }
    const primary = request(
      object,
      object.objectName,
      region,
      object.objectVersion,
      object.objectVersionLabel,
    );
    const failoverRegion = spec.failoverRegion;
    if (failoverRegion === undefined || failoverRegion === region) return { object, label, primary };
    const alternate = object.failoverObject;
    const failover = request(
      object,
      alternate?.objectName ?? object.objectName,
      failoverRegion,
      alternate?.objectVersion ?? object.objectVersion,
      alternate?.objectVersionLabel ?? object.objectVersionLabel,
    );
    return { object, label, primary, failover };
  });
}

const requestKey = (r: SecretRequest): string =>
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

type ErrorClass = new (message: string, options?: SmkErrorOptions) => SmkError;
const errorClasses: Record<SmkErrorKind, ErrorClass> = {
  NotFound: NotFoundError,
  AccessDenied: AccessDeniedError,
  Throttled: ThrottledError,
  InvalidInput: InvalidInputError,
  NotModified: NotModifiedError,
  TooLarge: TooLargeError,
  Transient: TransientError,
};

/** The same sentinel class, with the spec's subject and object in front of the reader's message. */
function about(error: SmkError, where: string, message: string): SmkError {
  return new errorClasses[error.kind](`${where}: ${message}`, {
    subject: where,
    ...(error.field === undefined ? {} : { field: error.field }),
    cause: error,
  });
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

/** An object's payloads, its jmesPath entries' bytes still to come from its selections. */
interface PreparedObject {
  readonly payloads: Payload[];
  readonly fields: FieldSelections;
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
  const name = objectFileName(object, spec.pathTranslation);
  assertSafeRelativeName(name, where, object.objectAlias === undefined ? 'objectName' : 'objectAlias');
  const payloads: Payload[] = [
    {
      name,
      bytes: wholeValue(value.bytes, where),
      mode: object.filePermission ?? fallbackMode,
      objectVersion: { id: name, version: value.versionId },
    },
  ];
  const fields = selectFields(value.bytes, object.jmesPath, where, options.expressions !== undefined);
  object.jmesPath.forEach((entry, position) => {
    const entryName = jmesPathFileName(entry, spec.pathTranslation);
    assertSafeRelativeName(entryName, where, `jmesPath[${position}].objectAlias`);
    payloads.push({
      name: entryName,
      bytes: new Uint8Array(),
      mode: entry.filePermission ?? object.filePermission ?? fallbackMode,
      objectVersion: { id: entryName, version: value.versionId },
    });
  });
  return { payloads, fields };
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
  const selections = await evaluateExpressions(
    prepared.map((object) => object.fields),
    options.expressions,
    subject,
  );
  return prepared.flatMap(({ payloads }, index) => {
    const [whole, ...entries] = payloads;
    const selected = selections[index] ?? [];
    return [
      whole as Payload,
      ...entries.map((payload, position) => ({ ...payload, bytes: selected[position] as Uint8Array })),
    ];
  });
}

/**
 * Reads every object of `spec` through `reader` and returns one payload per file: the whole
 * value (named by naming.ts) and one per jmesPath entry, in spec order. Throws the first
 * failing object's SmkError (same sentinel class as the reader's) and returns nothing then.
 */
export async function resolvePayloads(
  spec: MountSpec,
  reader: SecretReader,
  options: ResolveOptions = {},
): Promise<Payload[]> {
  const subject = options.subject ?? 'objects spec';
  const plans = planRequests(spec, options.defaultRegion, subject);
  const primaryResults = await readAll(
    reader,
    plans.map((plan) => plan.primary),
  );

  const values = new Map<PlannedObject, SecretValue>();
  const failures: Failure[] = [];
  const retry: { plan: PlannedObject; primaryError: SmkError; request: SecretRequest }[] = [];
  plans.forEach((plan, i) => {
    const result = primaryResults[i];
    if (result === undefined) return;
    if (result.ok) values.set(plan, result.value);
    else if (plan.failover && failoverKinds.has(result.error.kind)) {
      retry.push({ plan, primaryError: result.error, request: plan.failover });
    } else failures.push({ plan, error: result.error });
  });

  const failoverResults = await readAll(
    reader,
    retry.map((r) => r.request),
  );
  retry.forEach(({ plan, primaryError, request: failoverRequest }, i) => {
    const result = failoverResults[i];
    if (result === undefined) return;
    if (result.ok) {
      values.set(plan, result.value);
      return;
    }
    // A retry may help when either region's failure is transient: report that one.
    const chosen = primaryError.transient || !result.error.transient ? primaryError : result.error;
    const message = `${plan.primary.region} (primary): ${primaryError.message}; ${failoverRequest.region} (failover): ${result.error.message}`;
    failures.push({ plan, error: about(chosen, 'both regions failed', message) });
  });
  if (failures.length > 0) throwFirst(failures, subject);

  return payloadsOf(plans, values, spec, options, subject);
}
