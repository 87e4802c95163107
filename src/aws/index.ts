/** The aws layer's public surface: what roles and the CLI import. */

export { secretIdMatches } from './arn.ts';
export { SecretCache, type SecretCacheOptions } from './cache.ts';
export type { AwsClientsOptions } from './client-options.ts';
export { AwsClients } from './clients.ts';
export { mapAwsError } from './errors.ts';
export { type Credentials, chainedIdentity, type Identity, identityKey } from './identity.ts';
export { type AwsSecretReader, createSecretReader, type SecretReaderDeps } from './reader.ts';
export {
  normaliseRoleChain,
  parseRoleChain,
  type RoleChain,
  roleChainKeys,
  roleChainSchema,
} from './role-chain.ts';
export type { ListSecretVersionsOptions } from './secrets-manager.ts';
export { batchLimit } from './secrets-manager.ts';
export {
  createQueueReader,
  parseQueueUrl,
  type QueueMessage,
  type QueueReader,
  type QueueState,
  queueRegion,
  type ReceiveOptions,
  readQueueState,
  sqsBatchLimit,
} from './sqs.ts';
export {
  type CreateSecretInput,
  type CreateSecretResult,
  createSecretWriter,
  type DeleteOptions,
  type ListByTagOptions,
  type PutSecretValueInput,
  type SecretDescription,
  type SecretTags,
  type SecretWriter,
  type SecretWriterDeps,
  type WrittenVersion,
} from './write.ts';
