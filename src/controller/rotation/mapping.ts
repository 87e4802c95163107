/**
 * Seed 003's `SecretsRotationMapping` (awssecretsoperator.secretoperator/v1), accepted unchanged:
 * `spec.SecretID` (name or ARN) and `spec.Labels` (label → value). Unlike the seed's operator,
 * a mapping only ever matches workloads in its own namespace, and empty Labels match nothing
 * (the seed would have restarted every Deployment in the cluster).
 */
import * as z from 'zod';
import { InvalidInputError } from '../../core/errors.ts';

export const mappingGroup = 'awssecretsoperator.secretoperator';
export const mappingVersion = 'v1';
export const mappingKind = 'SecretsRotationMapping';
export const mappingPlural = 'secretsrotationmappings';

export interface RotationMapping {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
  readonly secretId: string;
  readonly labels: Readonly<Record<string, string>>;
}

const labelValue = z.string().max(63);
const schema = z.object({
  metadata: z.object({
    name: z.string().min(1),
    namespace: z.string().min(1),
    uid: z.string().default(''),
    generation: z.number().int().default(0),
  }),
  spec: z.object({
    SecretID: z.string().trim().min(1, 'expected the secret name or ARN').max(2048),
    Labels: z
      .record(z.string().min(1).max(317), labelValue)
      .refine(
        (labels) => Object.keys(labels).length > 0,
        'expected at least one label to match workloads by',
      ),
  }),
});

/** A mapping as the API server stores it → its plain form. Throws InvalidInputError naming the field. */
export function parseMapping(object: unknown): RotationMapping {
  const parsed = schema.safeParse(object);
  if (!parsed.success) {
    const metadata = (object as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
    const label = `${mappingKind} ${String(metadata?.namespace ?? '?')}/${String(metadata?.name ?? '?')}`;
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'object';
    throw new InvalidInputError(`${label}: ${field}: ${issue?.message ?? 'invalid'}`, {
      subject: label,
      field,
    });
  }
  const { metadata, spec } = parsed.data;
  return {
    namespace: metadata.namespace,
    name: metadata.name,
    uid: metadata.uid,
    generation: metadata.generation,
    secretId: spec.SecretID,
    labels: spec.Labels,
  };
}

/** True when every label of the mapping is on the workload (its own labels or its pod template's). */
export function mappingMatches(
  mapping: Pick<RotationMapping, 'namespace' | 'labels'>,
  workload: {
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly templateLabels: Readonly<Record<string, string>>;
  },
): boolean {
  if (mapping.namespace !== workload.namespace) return false;
  const entries = Object.entries(mapping.labels);
  if (entries.length === 0) return false;
  const within = (labels: Readonly<Record<string, string>>) =>
    entries.every(([key, value]) => labels[key] === value);
  return within(workload.labels) || within(workload.templateLabels);
}
