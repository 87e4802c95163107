/**
 * Role chaining: a second role assumed (sts:AssumeRole) with the workload's own credentials, for
 * secrets in another account. One shape for every role: the CSI drop-in's flat parameters (ASCP's
 * names, aws/secrets-store-csi-driver-provider-aws PR 555: `assumeRoleArn`,
 * `assumeRoleExternalId`, `assumeRoleDurationSeconds`, plus smk's `assumeRoleSessionTags`), the
 * injector's annotations and `smk fetch`'s flags all parse through `parseRoleChain`, and the
 * SecretSync CRD's `spec.assumeRole` through `roleChainSchema`. Messages name the field and the
 * role ARN; an external id is not echoed (it is not a secret in AWS's model, but it is not ours to show).
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { InvalidInputError } from '../core/errors.ts';

export interface RoleChain {
  readonly roleArn: string;
  readonly externalId?: string | undefined;
  /** Session tags (sts:TagSession on the target role's trust policy); sorted by key when parsed. */
  readonly sessionTags?: Readonly<Record<string, string>> | undefined;
  /** AWS caps a chained session at one hour, whatever the role's maximum. */
  readonly durationSeconds?: number | undefined;
}

/** The flat keys (SecretProviderClass parameters, env, flags) and where errors point. */
export const roleChainKeys = {
  roleArn: 'assumeRoleArn',
  externalId: 'assumeRoleExternalId',
  durationSeconds: 'assumeRoleDurationSeconds',
  sessionTags: 'assumeRoleSessionTags',
} as const;

/** AWS's bounds: a chained session lasts 15 min to 1 h; at most 50 session tags. */
export const chainedSessionSeconds = { min: 900, max: 3600 } as const;
export const maxSessionTags = 50;

const roleArnPattern = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const externalIdPattern = /^[\w+=,.@:/-]{2,1224}$/;
// AWS's tag charset (letters, digits, spaces, _ . : / = + - @).
const tagKeyPattern = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const tagValuePattern = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

const roleArn = z
  .string()
  .regex(roleArnPattern, 'expected an IAM role ARN like arn:aws:iam::111122223333:role/name');
const externalId = z
  .string()
  .regex(externalIdPattern, 'expected 2–1224 characters of letters, digits and _ + = , . @ : / -');
const durationSeconds = z
  .number()
  .int()
  .min(chainedSessionSeconds.min, 'expected at least 900 seconds')
  .max(
    chainedSessionSeconds.max,
    'expected at most 3600 seconds (AWS limits a chained role session to 1 hour)',
  );
const sessionTags = z
  .record(
    z.string().regex(tagKeyPattern, 'expected a tag key of 1–128 letters, digits, spaces or _ . : / = + - @'),
    z
      .string()
      .regex(
        tagValuePattern,
        'expected a tag value of at most 256 letters, digits, spaces or _ . : / = + - @',
      ),
  )
  .refine(
    (tags) => Object.keys(tags).length <= maxSessionTags,
    `expected at most ${maxSessionTags} session tags`,
  );

/** The CRD's `spec.assumeRole` (deploy/crds mirrors these bounds). */
export const roleChainSchema = z.strictObject({
  roleArn,
  externalId: externalId.optional(),
  sessionTags: sessionTags.optional(),
  durationSeconds: durationSeconds.optional(),
});

function invalid(subject: string, field: string, message: string): InvalidInputError {
  return new InvalidInputError(`${subject}: ${field}: ${message}`, { subject, field });
}

/**
 * `key=value,key2=value2` (split at the first `=`: a key cannot hold one in this form; the CRD's
 * map can). AWS tag values hold no comma, so the list is unambiguous.
 */
export function parseSessionTags(text: string, subject: string, field: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const entry of text.split(',')) {
    if (entry.trim() === '') continue;
    const at = entry.indexOf('=');
    if (at <= 0) throw invalid(subject, field, 'expected key=value pairs separated by commas');
    const key = entry.slice(0, at).trim();
    if (key in tags) throw invalid(subject, field, `tag key ${JSON.stringify(key)} is given twice`);
    tags[key] = entry.slice(at + 1).trim();
  }
  return tags;
}

function firstIssue(error: z.ZodError): string {
  return error.issues[0]?.message ?? 'invalid';
}

/** Sorted by key, so the same tags make the same cache key whatever order they were written in. */
function sortedTags(tags: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The chain from flat string settings, or undefined when no role is named. `fieldOf` turns a key
 * of `roleChainKeys` into the name the user wrote (an annotation, a flag).
 */
export function parseRoleChain(
  settings: Readonly<Record<string, string | undefined>>,
  subject: string,
  fieldOf: (key: keyof typeof roleChainKeys) => string = (key) => roleChainKeys[key],
): RoleChain | undefined {
  const text = (key: keyof typeof roleChainKeys): string | undefined => {
    const value = settings[roleChainKeys[key]]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const arnText = text('roleArn');
  if (arnText === undefined) {
    for (const key of ['externalId', 'durationSeconds', 'sessionTags'] as const) {
      if (text(key) !== undefined) {
        throw invalid(subject, fieldOf(key), `needs ${fieldOf('roleArn')} (the role to assume)`);
      }
    }
    return undefined;
  }
  const arn = roleArn.safeParse(arnText);
  if (!arn.success) throw invalid(subject, fieldOf('roleArn'), firstIssue(arn.error));
  const chain: { -readonly [K in keyof RoleChain]: RoleChain[K] } = { roleArn: arn.data };
  const idText = text('externalId');
  if (idText !== undefined) {
    const id = externalId.safeParse(idText);
    if (!id.success) throw invalid(subject, fieldOf('externalId'), firstIssue(id.error));
    chain.externalId = id.data;
  }
  const durationText = text('durationSeconds');
  if (durationText !== undefined) {
    const duration = durationSeconds.safeParse(
      /^\d+$/.test(durationText) ? Number(durationText) : Number.NaN,
    );
    if (!duration.success) {
      throw invalid(
        subject,
        fieldOf('durationSeconds'),
        /^\d+$/.test(durationText) ? firstIssue(duration.error) : 'expected a whole number of seconds',
      );
    }
    chain.durationSeconds = duration.data;
  }
  const tagsText = text('sessionTags');
  if (tagsText !== undefined) {
    const tags = sessionTags.safeParse(parseSessionTags(tagsText, subject, fieldOf('sessionTags')));
    if (!tags.success) throw invalid(subject, fieldOf('sessionTags'), firstIssue(tags.error));
    chain.sessionTags = sortedTags(tags.data);
  }
  return chain;
}

/**
 * The chain from settings under other names (annotations, environment variables, flags):
 * `names` maps each setting to the name the user wrote, which errors then use.
 */
export function parseNamedRoleChain(
  values: Readonly<Record<string, string | undefined>>,
  names: Readonly<Record<keyof typeof roleChainKeys, string>>,
  subject: string,
): RoleChain | undefined {
  const settings: Record<string, string | undefined> = {};
  for (const key of Object.keys(roleChainKeys) as (keyof typeof roleChainKeys)[]) {
    settings[roleChainKeys[key]] = values[names[key]];
  }
  return parseRoleChain(settings, subject, (key) => names[key]);
}

/** The flat form of a chain, under `names` (what the injector hands the agent). */
export function roleChainSettings(
  chain: RoleChain,
  names: Readonly<Record<keyof typeof roleChainKeys, string>>,
): { name: string; value: string }[] {
  return [
    { name: names.roleArn, value: chain.roleArn },
    ...(chain.externalId === undefined ? [] : [{ name: names.externalId, value: chain.externalId }]),
    ...(chain.durationSeconds === undefined
      ? []
      : [{ name: names.durationSeconds, value: String(chain.durationSeconds) }]),
    ...(chain.sessionTags === undefined
      ? []
      : [
          {
            name: names.sessionTags,
            value: Object.entries(chain.sessionTags)
              .map(([key, value]) => `${key}=${value}`)
              .join(','),
          },
        ]),
  ];
}

/** A chain from the CRD field (already validated by `roleChainSchema`), normalised like the flat form. */
export function normaliseRoleChain(chain: z.infer<typeof roleChainSchema>): RoleChain {
  return {
    roleArn: chain.roleArn,
    ...(chain.externalId === undefined ? {} : { externalId: chain.externalId }),
    ...(chain.durationSeconds === undefined ? {} : { durationSeconds: chain.durationSeconds }),
    ...(chain.sessionTags === undefined || Object.keys(chain.sessionTags).length === 0
      ? {}
      : { sessionTags: sortedTags(chain.sessionTags) }),
  };
}

/**
 * The part of an identity key that tells chains apart: role, a hash of the external id (the key
 * may be logged in a debug line; the id need not be), duration and the sorted tags.
 */
export function roleChainKey(chain: RoleChain): string {
  const id =
    chain.externalId === undefined
      ? ''
      : createHash('sha256').update(chain.externalId).digest('hex').slice(0, 16);
  const tags = chain.sessionTags ? JSON.stringify(chain.sessionTags) : '';
  return `${chain.roleArn}|${id}|${chain.durationSeconds ?? ''}|${tags}`;
}
