/**
 * The parts of a Pod (or pod template) the injector reads and writes, as zod schemas that keep
 * every other field untouched (loose objects), so a mutated pod differs from its input only
 * where the injector meant it to.
 */
import * as z from 'zod';

const name = z.string().min(1);

export const envVarSchema = z.looseObject({ name });
export type EnvVar = z.infer<typeof envVarSchema>;

export const volumeMountSchema = z.looseObject({
  name,
  mountPath: z.string().min(1),
  readOnly: z.boolean().optional(),
});
export type VolumeMount = z.infer<typeof volumeMountSchema>;

const runAs = z.looseObject({
  runAsUser: z.number().int().optional(),
  runAsGroup: z.number().int().optional(),
});

export const containerSchema = z.looseObject({
  name,
  env: z.array(envVarSchema).optional(),
  volumeMounts: z.array(volumeMountSchema).optional(),
  securityContext: runAs.optional(),
  restartPolicy: z.string().optional(),
});
export type Container = z.infer<typeof containerSchema>;

export const volumeSchema = z.looseObject({ name });
export type Volume = z.infer<typeof volumeSchema>;

export const podSpecSchema = z.looseObject({
  containers: z.array(containerSchema).min(1),
  initContainers: z.array(containerSchema).optional(),
  volumes: z.array(volumeSchema).optional(),
  securityContext: runAs.optional(),
});
export type PodSpec = z.infer<typeof podSpecSchema>;

export const podMetadataSchema = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

/** A JSON object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An optional string field as JSON gives it. */
export const absentOrString = (value: unknown): boolean => value === undefined || typeof value === 'string';

/**
 * True only where `podMetadataSchema` accepts `value`, answered without zod for the plain shape
 * the API server sends; false means "ask the schema", not "invalid". A remembered answer's pod has
 * its metadata checked on every request, and zod's general object walk cost ~6 µs of it in the
 * webhook's profile. pod.test.ts proves that whatever this accepts, the schema accepts.
 */
export function isPlainPodMetadata(value: unknown): boolean {
  if (!isRecord(value)) return false;
  if (!absentOrString(value.name) || !absentOrString(value.generateName) || !absentOrString(value.namespace))
    return false;
  const annotations = value.annotations;
  if (annotations === undefined) return true;
  if (!isRecord(annotations) || Object.getPrototypeOf(annotations) !== Object.prototype) return false;
  for (const key in annotations) {
    if (!Object.hasOwn(annotations, key) || typeof annotations[key] !== 'string') return false;
  }
  return true;
}

/** A Pod or a pod template: both are `{ metadata, spec }` for the injector. */
export const podSchema = z.looseObject({
  metadata: podMetadataSchema.optional(),
  spec: podSpecSchema,
});
export type Pod = z.infer<typeof podSchema>;

/** The annotations of a pod-like object without validating the rest (the fast path for pods that did not opt in). */
export function rawAnnotations(object: unknown): Readonly<Record<string, unknown>> | undefined {
  if (typeof object !== 'object' || object === null) return undefined;
  const metadata: unknown = (object as { metadata?: unknown }).metadata;
  if (typeof metadata !== 'object' || metadata === null) return undefined;
  const annotations: unknown = (metadata as { annotations?: unknown }).annotations;
  if (typeof annotations !== 'object' || annotations === null) return undefined;
  return annotations as Record<string, unknown>;
}

/** "spec.containers[1].volumeMounts[0].mountPath: expected string" — names the field, never echoes its value. */
export function describeSchemaError(error: z.ZodError, prefix = ''): string {
  const issue = error.issues[0];
  if (issue === undefined) return `${prefix || 'object'}: invalid`;
  const path = issue.path.reduce<string>((text, key) => {
    if (typeof key === 'number') return `${text}[${key}]`;
    return text === '' ? String(key) : `${text}.${String(key)}`;
  }, prefix);
  return `${path || 'object'}: ${issue.message}`;
}
