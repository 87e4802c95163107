/**
 * One Mount: attributes → spec → the pod's identity → the core's payloads → the driver's reply.
 * Nothing here fetches, extracts or names: the core's pipeline does, over the aws layer's reader
 * (one cache for the node), so a mount reads exactly as the agent and the sync controller do.
 */
import type { Identity } from '../aws/identity.ts';
import {
  describeError,
  InvalidInputError,
  isSmkError,
  type SmkError,
  type SmkErrorOptions,
  TooLargeError,
} from '../core/errors.ts';
import type { ExpressionEvaluator } from '../core/expressions.ts';
import type { Logger } from '../core/log.ts';
import { resolvePayloads } from '../core/payloads.ts';
import type { SecretReader } from '../core/source.ts';
import { parseMountSpec } from '../core/spec.ts';
import type { MountSpec, Payload } from '../core/spec-types.ts';
import { parseDefaultMode, parseMountAttributes } from './attributes.ts';
import { identityFor, type RoleLookup } from './identity.ts';
import type { MountRequest, MountResponse, ObjectVersion } from './protocol.ts';
import type { MountHandler } from './server.ts';

/** The driver's default limit on a reply (its --max-call-recv-msg-size), with room for framing. */
export const defaultMaxReplyBytes = 4 * 1024 * 1024 - 64 * 1024;

export interface MountOptions {
  /** A reader acting as `identity`, over the process's one shared cache. */
  readonly readerFor: (identity: Identity) => SecretReader;
  readonly identities: RoleLookup;
  /** The provider's AWS_REGION, if set: the default when the SecretProviderClass names none. */
  readonly environmentRegion?: string | undefined;
  /** The node's `topology.kubernetes.io/region` label: the last resort, as ASCP does. */
  readonly nodeRegion?: (() => Promise<string | undefined>) | undefined;
  readonly maxReplyBytes?: number;
  /** Full JMESPath expressions (--allow-jmespath-expressions); default plain field paths only. */
  readonly expressions?: ExpressionEvaluator | undefined;
  readonly logger: Logger;
}

/** Looks a value up until it is found once, then keeps it (a node's region does not change). */
export function rememberOnceFound(
  lookup: () => Promise<string | undefined>,
): () => Promise<string | undefined> {
  let found: string | undefined;
  let pending: Promise<string | undefined> | undefined;
  return async () => {
    if (found !== undefined) return found;
    pending ??= lookup().finally(() => {
      pending = undefined;
    });
    found = await pending;
    return found;
  };
}

function objectVersions(payloads: readonly Payload[]): ObjectVersion[] {
  const byId = new Map<string, ObjectVersion>();
  for (const payload of payloads) byId.set(payload.objectVersion.id, payload.objectVersion);
  return [...byId.values()];
}

function checkReplySize(payloads: readonly Payload[], limit: number, subject: string): void {
  let total = 0;
  for (const payload of payloads) total += payload.bytes.byteLength + Buffer.byteLength(payload.name) + 16;
  if (total <= limit) return;
  const largest = [...payloads]
    .sort((a, b) => b.bytes.byteLength - a.bytes.byteLength)
    .slice(0, 3)
    .map((payload) => `${payload.name} (${payload.bytes.byteLength} bytes)`);
  throw new TooLargeError(
    `${subject}: the mount's files total ${total} bytes, over the ${limit} bytes the driver accepts in one reply ` +
      `(largest: ${largest.join(', ')}); split the objects over several SecretProviderClasses or raise the driver's --max-call-recv-msg-size`,
    { subject, field: 'objects' },
  );
}

/** Distinct (class, field) warnings remembered; past it the memory starts over (a warning again, not growth). */
const maxRememberedWarnings = 4_096;

export function createMountHandler(options: MountOptions): MountHandler {
  const maxReplyBytes = options.maxReplyBytes ?? defaultMaxReplyBytes;
  const { logger } = options;
  const warned = new Set<string>();

  /** ASCP ignores unknown object fields, so smk does too, and says so once per class and field. */
  function warnIgnoredFields(subject: string, spec: MountSpec): void {
    const fresh = spec.ignoredFields.filter((field) => !warned.has(`${subject}\0${field}`));
    if (fresh.length === 0) return;
    if (warned.size + fresh.length > maxRememberedWarnings) warned.clear();
    for (const field of fresh) warned.add(`${subject}\0${field}`);
    logger.warn(
      { mount: subject, ignoredFields: fresh },
      'unknown fields in the objects are ignored, as ASCP ignores them; check them for typos',
    );
  }

  /** The default region, required only when some object is not an ARN (an ARN names its own). */
  async function regionFor(subject: string, spec: MountSpec): Promise<string | undefined> {
    const needed = spec.objects.some((object) => object.arnRegion === undefined);
    const advice =
      'set parameters.region in the SecretProviderClass, AWS_REGION on the provider, or the node label topology.kubernetes.io/region';
    let region = spec.region ?? options.environmentRegion;
    if (region === undefined && needed && options.nodeRegion) {
      region = await options.nodeRegion().catch((error: unknown) => {
        if (!isSmkError(error)) throw error;
        const Kind = error.constructor as new (message: string, options: SmkErrorOptions) => SmkError;
        throw new Kind(
          `${subject}: no AWS region (${advice}); the node's label could not be read: ${error.message}`,
          {
            subject,
            field: 'region',
            cause: error,
          },
        );
      });
    }
    if (region !== undefined || !needed) return region;
    throw new InvalidInputError(`${subject}: no AWS region: ${advice}`, { subject, field: 'region' });
  }

  async function mount(request: MountRequest, context: { subject?: string }): Promise<MountResponse> {
    const attributes = parseMountAttributes(request.attributes);
    const { subject } = attributes;
    context.subject = subject;
    const defaultFileMode = parseDefaultMode(request.permission);
    const { objects, region, failoverRegion, pathTranslation } = attributes.parameters;
    if (objects === undefined || objects.trim() === '') {
      throw new InvalidInputError(
        `${subject}: parameters.objects is missing or empty; expected a YAML list of objects in the SecretProviderClass`,
        { subject, field: 'objects' },
      );
    }
    // The ServiceAccount read waits on the API server; the spec is parsed meanwhile. It is awaited
    // after the spec and region checks, so their errors still come first (its own is then dropped).
    const identityLookup = identityFor(attributes, options.identities);
    identityLookup.catch(() => undefined);
    const spec = parseMountSpec({ objects, region, failoverRegion, pathTranslation }, subject, {
      allowExpressions: options.expressions !== undefined,
    });
    warnIgnoredFields(subject, spec);
    const defaultRegion = await regionFor(subject, spec);
    if (spec.failoverRegion !== undefined && spec.failoverRegion === defaultRegion) {
      throw new InvalidInputError(
        `${subject}: failoverRegion must differ from the primary region (both are ${defaultRegion}${spec.region ? '' : ', the primary taken from the provider or node'})`,
        { subject, field: 'failoverRegion' },
      );
    }
    const identity = await identityLookup;
    const payloads = await resolvePayloads(spec, options.readerFor(identity), {
      ...(defaultRegion === undefined ? {} : { defaultRegion }),
      defaultFileMode,
      expressions: options.expressions,
      // The node's pods take turns in the expression pool by namespace.
      tenant: attributes.pod.namespace,
      // The driver sends the versions it holds only on a re-mount (its rotation poll): that one
      // must return the current version, not one cached for up to --stage-ttl.
      recheckStages: request.current_object_version.length > 0,
    });
    checkReplySize(payloads, maxReplyBytes, subject);
    const versions = objectVersions(payloads);
    if (versions.length === 0) {
      // The driver refuses a reply without object versions; the spec parser makes this unreachable.
      throw new InvalidInputError(`${subject}: the objects produced no files`, { subject, field: 'objects' });
    }
    return {
      object_version: versions,
      files: payloads.map((payload) => ({ path: payload.name, mode: payload.mode, contents: payload.bytes })),
    };
  }

  return async (request) => {
    const started = performance.now();
    const context: { subject?: string } = {};
    try {
      const response = await mount(request, context);
      logger.info(
        {
          mount: context.subject,
          objects: response.object_version.length,
          files: response.files.length,
          ms: elapsed(started),
        },
        'mounted',
      );
      return response;
    } catch (error) {
      logger.warn(
        {
          mount: context.subject,
          errorKind: isSmkError(error) ? error.kind : 'Internal',
          subject: isSmkError(error) ? error.subject : undefined,
          field: isSmkError(error) ? error.field : undefined,
          error: describeError(error),
          ms: elapsed(started),
        },
        'mount refused',
      );
      throw error;
    }
  };
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
