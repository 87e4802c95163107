/**
 * Secrets Manager writes for one identity in one region: what write-through (a Kubernetes Secret
 * whose value lives in Secrets Manager) needs — create, put a version, stage labels, tags,
 * describe, delete/restore and a tag-filtered listing. Every call goes through
 * `AwsClients.call()` (deadline, metric, error mapping); values are never part of a message.
 */
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  TagResourceCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { NotFoundError, TransientError } from '../core/errors.ts';
import { currentStage } from '../core/source.ts';
import type { AwsClients } from './clients.ts';
import type { Identity } from './identity.ts';

export type SecretTags = Readonly<Record<string, string>>;

/** A version as a write left it. */
export interface WrittenVersion {
  readonly arn: string;
  readonly name: string;
  readonly versionId: string;
  /** Stage labels on the version after the call (PutSecretValue reports them; CreateSecret gives AWSCURRENT). */
  readonly stages: readonly string[];
}

export interface SecretDescription {
  readonly arn: string;
  readonly name: string;
  readonly tags: SecretTags;
  /** VersionId → stage labels. */
  readonly versionsToStages: ReadonlyMap<string, readonly string[]>;
  readonly createdDate?: Date;
  readonly lastChangedDate?: Date;
  /** Set while the secret is scheduled for deletion. */
  readonly deletedDate?: Date;
}

export interface CreateSecretInput {
  readonly name: string;
  readonly value: string;
  /** 32–64 characters; becomes the version id, and makes a retry with the same value a no-op. */
  readonly clientRequestToken: string;
  readonly tags: SecretTags;
  readonly description?: string;
  readonly kmsKeyId?: string;
}

export type CreateSecretResult =
  | { readonly created: true; readonly version: WrittenVersion }
  /** A secret of that name exists already (possibly scheduled for deletion): nothing was written. */
  | { readonly created: false };

export interface PutSecretValueInput {
  /** Name or ARN. */
  readonly id: string;
  readonly value: string;
  readonly clientRequestToken: string;
  /** Labels for the new version; AWS's default (AWSCURRENT) when not given. */
  readonly stages?: readonly string[];
}

export type DeleteOptions =
  | { readonly recoveryWindowDays: number }
  /** Gone at once, no recovery: only for a secret nobody ever consumed. */
  | { readonly force: true };

export interface ListByTagOptions {
  /** Only secrets carrying this tag with this value (filtered at AWS by key and value, checked here). */
  readonly tagKey: string;
  readonly tagValue: string;
  /** Only names starting with this prefix. */
  readonly namePrefix?: string;
}

/** The writes write-through makes. One writer per (identity, region). */
export interface SecretWriter {
  readonly region: string;
  create(input: CreateSecretInput): Promise<CreateSecretResult>;
  putValue(input: PutSecretValueInput): Promise<WrittenVersion>;
  /** DescribeSecret with tags; undefined when there is no such secret. */
  describe(id: string): Promise<SecretDescription | undefined>;
  /** Adds or overwrites these tags. */
  tag(id: string, tags: SecretTags): Promise<void>;
  /**
   * Moves `stage` to `versionId`, taking it from `fromVersionId` (AWS requires naming the
   * version that holds it, if any).
   */
  moveStage(id: string, stage: string, versionId: string, fromVersionId?: string): Promise<void>;
  /** Takes `stage` off `versionId`. */
  removeStage(id: string, stage: string, versionId: string): Promise<void>;
  /** Schedules deletion (or deletes at once with `force`); a secret already gone counts as deleted. */
  delete(id: string, options: DeleteOptions): Promise<void>;
  /** Cancels a scheduled deletion. */
  restore(id: string): Promise<void>;
  /** Every secret with the tag (including those scheduled for deletion). */
  listByTag(options: ListByTagOptions): Promise<SecretDescription[]>;
}

export interface SecretWriterDeps {
  readonly clients: AwsClients;
}

const listPageSize = 100;

function errorName(error: unknown): string | undefined {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return typeof name === 'string' ? name : undefined;
}

function tagList(tags: SecretTags): { Key: string; Value: string }[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function tagRecord(tags: readonly { Key?: string | undefined; Value?: string | undefined }[] | undefined) {
  const record: Record<string, string> = {};
  for (const tag of tags ?? []) if (tag.Key !== undefined) record[tag.Key] = tag.Value ?? '';
  return record;
}

function description(
  answer: {
    ARN?: string | undefined;
    Name?: string | undefined;
    Tags?: { Key?: string | undefined; Value?: string | undefined }[] | undefined;
    CreatedDate?: Date | undefined;
    LastChangedDate?: Date | undefined;
    DeletedDate?: Date | undefined;
  },
  stages: Record<string, string[]> | undefined,
  api: string,
  subject: string,
  region: string,
): SecretDescription {
  if (!answer.ARN || !answer.Name) {
    throw new TransientError(`${api} ${subject} in ${region}: answer without ARN or name`, { subject });
  }
  return {
    arn: answer.ARN,
    name: answer.Name,
    tags: tagRecord(answer.Tags),
    versionsToStages: new Map(Object.entries(stages ?? {})),
    ...(answer.CreatedDate ? { createdDate: answer.CreatedDate } : {}),
    ...(answer.LastChangedDate ? { lastChangedDate: answer.LastChangedDate } : {}),
    ...(answer.DeletedDate ? { deletedDate: answer.DeletedDate } : {}),
  };
}

export function createSecretWriter(identity: Identity, region: string, deps: SecretWriterDeps): SecretWriter {
  const { clients } = deps;
  const client = () => clients.secretsManager(identity, region);
  clients.credentials(identity);

  return {
    region,

    async create(input) {
      const api = 'CreateSecret';
      const answer = await clients.call({ api, subject: input.name, region }, async (abortSignal) => {
        try {
          return await client().send(
            new CreateSecretCommand({
              Name: input.name,
              SecretString: input.value,
              ClientRequestToken: input.clientRequestToken,
              Tags: tagList(input.tags),
              ...(input.description === undefined ? {} : { Description: input.description }),
              ...(input.kmsKeyId === undefined ? {} : { KmsKeyId: input.kmsKeyId }),
            }),
            { abortSignal },
          );
        } catch (error) {
          // An answer, not a failure: the caller decides whether the existing secret is its own.
          if (errorName(error) === 'ResourceExistsException') return undefined;
          throw error;
        }
      });
      if (answer === undefined) return { created: false };
      if (!answer.ARN || !answer.VersionId) {
        throw new TransientError(`${api} ${input.name} in ${region}: answer without ARN or version`, {
          subject: input.name,
        });
      }
      return {
        created: true,
        version: {
          arn: answer.ARN,
          name: answer.Name ?? input.name,
          versionId: answer.VersionId,
          stages: [currentStage],
        },
      };
    },

    async putValue(input) {
      const api = 'PutSecretValue';
      const answer = await clients.call({ api, subject: input.id, region }, (abortSignal) =>
        client().send(
          new PutSecretValueCommand({
            SecretId: input.id,
            SecretString: input.value,
            ClientRequestToken: input.clientRequestToken,
            ...(input.stages === undefined ? {} : { VersionStages: [...input.stages] }),
          }),
          { abortSignal },
        ),
      );
      if (!answer.ARN || !answer.VersionId) {
        throw new TransientError(`${api} ${input.id} in ${region}: answer without ARN or version`, {
          subject: input.id,
        });
      }
      return {
        arn: answer.ARN,
        name: answer.Name ?? input.id,
        versionId: answer.VersionId,
        stages: answer.VersionStages ?? [],
      };
    },

    async describe(id) {
      const api = 'DescribeSecret';
      try {
        const answer = await clients.call({ api, subject: id, region }, (abortSignal) =>
          client().send(new DescribeSecretCommand({ SecretId: id }), { abortSignal }),
        );
        return description(answer, answer.VersionIdsToStages, api, id, region);
      } catch (error) {
        if (error instanceof NotFoundError) return undefined;
        throw error;
      }
    },

    async tag(id, tags) {
      await clients.call({ api: 'TagResource', subject: id, region }, (abortSignal) =>
        client().send(new TagResourceCommand({ SecretId: id, Tags: tagList(tags) }), { abortSignal }),
      );
    },

    async moveStage(id, stage, versionId, fromVersionId) {
      await clients.call({ api: 'UpdateSecretVersionStage', subject: id, region }, (abortSignal) =>
        client().send(
          new UpdateSecretVersionStageCommand({
            SecretId: id,
            VersionStage: stage,
            MoveToVersionId: versionId,
            ...(fromVersionId === undefined || fromVersionId === versionId
              ? {}
              : { RemoveFromVersionId: fromVersionId }),
          }),
          { abortSignal },
        ),
      );
    },

    async removeStage(id, stage, versionId) {
      await clients.call({ api: 'UpdateSecretVersionStage', subject: id, region }, (abortSignal) =>
        client().send(
          new UpdateSecretVersionStageCommand({
            SecretId: id,
            VersionStage: stage,
            RemoveFromVersionId: versionId,
          }),
          { abortSignal },
        ),
      );
    },

    async delete(id, options) {
      try {
        await clients.call({ api: 'DeleteSecret', subject: id, region }, (abortSignal) =>
          client().send(
            new DeleteSecretCommand({
              SecretId: id,
              ...('force' in options
                ? { ForceDeleteWithoutRecovery: true }
                : { RecoveryWindowInDays: options.recoveryWindowDays }),
            }),
            { abortSignal },
          ),
        );
      } catch (error) {
        if (error instanceof NotFoundError) return;
        throw error;
      }
    },

    async restore(id) {
      await clients.call({ api: 'RestoreSecret', subject: id, region }, (abortSignal) =>
        client().send(new RestoreSecretCommand({ SecretId: id }), { abortSignal }),
      );
    },

    async listByTag(options) {
      const api = 'ListSecrets';
      const filters = [
        { Key: 'tag-key' as const, Values: [options.tagKey] },
        { Key: 'tag-value' as const, Values: [options.tagValue] },
        ...(options.namePrefix === undefined ? [] : [{ Key: 'name' as const, Values: [options.namePrefix] }]),
      ];
      const found: SecretDescription[] = [];
      let nextToken: string | undefined;
      do {
        const answer = await clients.call({ api, region }, (abortSignal) =>
          client().send(
            new ListSecretsCommand({
              MaxResults: listPageSize,
              IncludePlannedDeletion: true,
              Filters: filters,
              ...(nextToken === undefined ? {} : { NextToken: nextToken }),
            }),
            { abortSignal },
          ),
        );
        for (const entry of answer.SecretList ?? []) {
          if (!entry.ARN || !entry.Name) continue;
          const secret = description(entry, entry.SecretVersionsToStages, api, entry.Name, region);
          // The two filters match the key and the value independently: check the pair here.
          if (secret.tags[options.tagKey] !== options.tagValue) continue;
          if (options.namePrefix !== undefined && !secret.name.startsWith(options.namePrefix)) continue;
          found.push(secret);
        }
        nextToken = answer.NextToken;
      } while (nextToken);
      return found;
    },
  };
}
