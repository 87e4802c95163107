/**
 * The SecretProviderClass drop-in's side of ./jobs.ts: an opted-in SecretProviderClass
 * (`smk.dev/sync: "true"`) parsed once, with zod, into the same SyncJob a SecretSync gives.
 */
import * as z from 'zod';
import { parseRoleChain, roleChainKeys } from '../aws/role-chain.ts';
import { parseDuration } from '../core/duration.ts';
import { InvalidInputError } from '../core/errors.ts';
import {
  annotations,
  checkTarget,
  dataEntry,
  defaultRefreshIntervalMs,
  describeIssues,
  duration,
  labelOf,
  metadataSchema,
  name,
  type SyncJob,
  spcGroup,
  spcKind,
  spcVersion,
  stringMap,
} from './jobs.ts';

const spcSchema = z.object({
  metadata: metadataSchema,
  spec: z.object({
    provider: z.string().optional(),
    parameters: z.record(z.string(), z.string()).default({}),
    secretObjects: z
      .array(
        z.object({
          secretName: name,
          type: z.string().min(1).default('Opaque'),
          labels: stringMap.default({}),
          annotations: stringMap.default({}),
          data: z.array(dataEntry).min(1, 'expected at least one data entry'),
        }),
      )
      .default([]),
  }),
});

const spcAnnotations = z.object({
  [annotations.serviceAccount]: name,
  [annotations.refreshInterval]: duration.optional(),
  [annotations.creationPolicy]: z.enum(['Owner', 'Orphan', 'Merge']).default('Owner'),
  [annotations.deletionPolicy]: z.enum(['Retain', 'Delete']).default('Delete'),
});

/** True when a SecretProviderClass asks smk to sync it. */
export function spcOptedIn(object: { metadata?: { annotations?: Record<string, string> } }): boolean {
  return object.metadata?.annotations?.[annotations.sync]?.trim().toLowerCase() === 'true';
}

/**
 * An opted-in SecretProviderClass → a SyncJob: its `parameters.objects` (+ region settings) are
 * the objects spec, each `secretObjects` entry one target Secret. Defaults differ from SecretSync
 * where the CSI driver's behaviour suggests: the driver deletes the Secrets it made, so does this
 * (deletionPolicy Delete) unless the annotation says Retain.
 */
export function spcJob(object: unknown): SyncJob {
  const label = labelOf(spcKind, object);
  const parsed = spcSchema.safeParse(object);
  if (!parsed.success) throw describeIssues(label, parsed.error);
  const { metadata, spec } = parsed.data;
  const settings = spcAnnotations.safeParse(metadata.annotations ?? {});
  if (!settings.success) {
    const problem = describeIssues(`${label}: annotations`, settings.error);
    throw new InvalidInputError(problem.message, { subject: label, field: `metadata.annotations` });
  }
  if (spec.provider !== undefined && spec.provider !== 'aws') {
    throw new InvalidInputError(
      `${label}: spec.provider is "${spec.provider}"; smk syncs only provider "aws"`,
      {
        subject: label,
        field: 'spec.provider',
      },
    );
  }
  const objects = spec.parameters.objects;
  if (objects === undefined || objects.trim() === '') {
    throw new InvalidInputError(`${label}: spec.parameters.objects is empty; expected the objects to sync`, {
      subject: label,
      field: 'spec.parameters.objects',
    });
  }
  if (spec.secretObjects.length === 0) {
    throw new InvalidInputError(
      `${label}: spec.secretObjects is empty; expected at least one Secret to sync`,
      {
        subject: label,
        field: 'spec.secretObjects',
      },
    );
  }
  const seen = new Set<string>();
  for (const [index, target] of spec.secretObjects.entries()) {
    if (seen.has(target.secretName)) {
      throw new InvalidInputError(
        `${label}: spec.secretObjects[${index}].secretName "${target.secretName}" is listed twice`,
        { subject: label, field: `spec.secretObjects[${index}].secretName` },
      );
    }
    seen.add(target.secretName);
    checkTarget(
      label,
      metadata.namespace,
      { name: target.secretName, ...target },
      `spec.secretObjects[${index}]`,
    );
  }
  const refresh = settings.data[annotations.refreshInterval];
  const chain = parseRoleChain(spec.parameters, label, (key) => `spec.parameters.${roleChainKeys[key]}`);
  return {
    source: {
      kind: spcKind,
      apiVersion: `${spcGroup}/${spcVersion}`,
      namespace: metadata.namespace,
      name: metadata.name,
      uid: metadata.uid,
      generation: metadata.generation,
    },
    serviceAccountName: settings.data[annotations.serviceAccount],
    ...(chain ? { roleChain: { chain, field: `spec.parameters.${roleChainKeys.roleArn}` } } : {}),
    params: {
      objects,
      region: spec.parameters.region,
      failoverRegion: spec.parameters.failoverRegion,
      pathTranslation: spec.parameters.pathTranslation,
    },
    targets: spec.secretObjects.map((target) => ({
      name: target.secretName,
      type: target.type,
      labels: target.labels,
      annotations: target.annotations,
      data: target.data,
    })),
    templates: {},
    refreshPolicy: 'Periodic',
    refreshIntervalMs: refresh ? (parseDuration(refresh) ?? 0) : defaultRefreshIntervalMs,
    creationPolicy: settings.data[annotations.creationPolicy],
    deletionPolicy: settings.data[annotations.deletionPolicy],
  };
}
