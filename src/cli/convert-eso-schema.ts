/**
 * The External Secrets Operator shapes smk convert reads: ESO v1's ExternalSecret, SecretStore and
 * ClusterSecretStore fields as its API reference gives them. Loose: a field they do not list is
 * kept, so it can be reported by its path.
 */
import * as z from 'zod';
import type { ConvertIssue } from './convert-output.ts';

export const esoGroup = 'external-secrets.io';

export const metadataSchema = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export const serviceAccountRef = z.object({
  name: z.string().min(1),
  namespace: z.string().optional(),
  audiences: z.array(z.string()).optional(),
});
export const awsAuth = z.object({
  jwt: z.object({ serviceAccountRef }).optional(),
  secretRef: z.unknown().optional(),
});
export const awsProvider = z.looseObject({
  service: z.enum(['SecretsManager', 'ParameterStore']),
  region: z.string().optional(),
  role: z.string().optional(),
  externalID: z.string().optional(),
  sessionTags: z.array(z.object({ key: z.string(), value: z.string() })).optional(),
  transitiveTagKeys: z.array(z.string()).optional(),
  additionalRoles: z.array(z.string()).optional(),
  prefix: z.string().optional(),
  auth: awsAuth.optional(),
  secretsManager: z.unknown().optional(),
});
export const storeSchema = z.object({
  apiVersion: z.string(),
  kind: z.enum(['SecretStore', 'ClusterSecretStore']),
  metadata: metadataSchema,
  spec: z.looseObject({ provider: z.looseObject({ aws: awsProvider.optional() }) }),
});
export type EsoStore = z.infer<typeof storeSchema>;

export const remoteRef = z.looseObject({
  key: z.string().min(1),
  property: z.string().optional(),
  version: z.string().optional(),
  metadataPolicy: z.enum(['None', 'Fetch']).optional(),
  conversionStrategy: z.enum(['Default', 'Unicode']).optional(),
  decodingStrategy: z.enum(['None', 'Base64', 'Base64URL', 'Auto']).optional(),
  nullBytePolicy: z.string().optional(),
});
export const dataEntry = z.looseObject({
  secretKey: z.string().min(1),
  remoteRef,
  sourceRef: z.unknown().optional(),
});
/** ESO's ExternalSecretFind: `name.regexp` (Go), `path`, `tags`, and how keys and values are treated. */
export const findSchema = z.looseObject({
  path: z.string().optional(),
  name: z.looseObject({ regexp: z.string() }).optional(),
  tags: z.record(z.string(), z.string()).optional(),
  conversionStrategy: z.enum(['Default', 'Unicode']).optional(),
  decodingStrategy: z.enum(['None', 'Base64', 'Base64URL', 'Auto']).optional(),
});
export const dataFromEntry = z.object({
  extract: remoteRef.optional(),
  find: findSchema.optional(),
  rewrite: z.unknown().optional(),
  sourceRef: z.unknown().optional(),
});
export const templateSchema = z.looseObject({
  type: z.string().optional(),
  engineVersion: z.string().optional(),
  metadata: z
    .object({
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  mergePolicy: z.string().optional(),
  data: z.record(z.string(), z.string()).optional(),
  templateFrom: z.array(z.unknown()).optional(),
});
export const targetSchema = z.looseObject({
  name: z.string().optional(),
  creationPolicy: z.enum(['Owner', 'Orphan', 'Merge', 'None']).optional(),
  deletionPolicy: z.enum(['Delete', 'Merge', 'Retain']).optional(),
  template: templateSchema.optional(),
  immutable: z.boolean().optional(),
});
export const externalSecretSpec = z.looseObject({
  secretStoreRef: z
    .object({ name: z.string().min(1), kind: z.enum(['SecretStore', 'ClusterSecretStore']).optional() })
    .optional(),
  target: targetSchema.optional(),
  refreshInterval: z.string().optional(),
  refreshPolicy: z.enum(['CreatedOnce', 'Periodic', 'OnChange']).optional(),
  data: z.array(dataEntry).optional(),
  dataFrom: z.array(dataFromEntry).optional(),
});
export const externalSecretSchema = z.object({
  apiVersion: z.string(),
  kind: z.literal('ExternalSecret'),
  metadata: metadataSchema,
  spec: externalSecretSpec,
});

export function isEsoObject(object: unknown): object is { apiVersion: string; kind: string } {
  const apiVersion = (object as { apiVersion?: unknown } | null)?.apiVersion;
  return typeof apiVersion === 'string' && apiVersion.startsWith(`${esoGroup}/`);
}

export function describeObject(object: unknown): string {
  const { kind, metadata } = (object ?? {}) as {
    kind?: unknown;
    metadata?: { name?: unknown; namespace?: unknown };
  };
  const namespace = typeof metadata?.namespace === 'string' ? `${metadata.namespace}/` : '';
  return `${typeof kind === 'string' ? kind : 'object'} ${namespace}${typeof metadata?.name === 'string' ? metadata.name : '?'}`;
}

export function zodIssue(subject: string, error: z.ZodError): ConvertIssue {
  const first = error.issues[0];
  return {
    severity: 'unsupported',
    subject,
    field: first?.path.join('.') || 'object',
    message: `not a valid ESO object: ${first?.message ?? 'invalid'}`,
  };
}
