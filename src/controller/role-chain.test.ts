/** Role chaining in the sync controller: both sources carry it, and the resolver chains from the account's own role. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { type Identity, identityKey } from '../aws/identity.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { SecretReader } from '../core/source.ts';
import type { ServiceAccounts } from '../kube/service-accounts.ts';
import { createIdentityResolver } from './identity.ts';
import { secretSyncJob } from './jobs.ts';
import { spcJob } from './spc-job.ts';

const target = 'arn:aws:iam::222233334444:role/shared-secrets';
const own = 'arn:aws:iam::111122223333:role/shop-api';

function secretSync(assumeRole: unknown): unknown {
  return {
    metadata: { name: 'db', namespace: 'shop', uid: 'u', generation: 1 },
    spec: {
      serviceAccountName: 'api',
      assumeRole,
      objects: [{ objectName: 'db', objectType: 'secretsmanager' }],
    },
  };
}

const seedSpc = parse(
  readFileSync(new URL('../../test/controller/fixtures/seed-004-spc.yaml', import.meta.url), 'utf8'),
) as {
  metadata: { annotations: Record<string, string>; namespace?: string };
  spec: { parameters: Record<string, string> };
};

describe('jobs: the role to chain to', () => {
  it('SecretSync spec.assumeRole, tags sorted, errors pointing at spec.assumeRole.roleArn', () => {
    const job = secretSyncJob(
      secretSync({ roleArn: target, externalId: 'shop-7f3a', sessionTags: { z: '1', a: '2' } }),
    );
    assert.deepEqual(job.roleChain, {
      chain: { roleArn: target, externalId: 'shop-7f3a', sessionTags: { a: '2', z: '1' } },
      field: 'spec.assumeRole.roleArn',
    });
    assert.equal(secretSyncJob(secretSync(undefined)).roleChain, undefined);
  });

  it('SecretSync: a malformed role or a session over one hour is refused naming the field', () => {
    assert.throws(
      () => secretSyncJob(secretSync({ roleArn: 'role/x' })),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'spec.assumeRole.roleArn',
    );
    assert.throws(
      () => secretSyncJob(secretSync({ roleArn: target, durationSeconds: 7200 })),
      (error: unknown) =>
        error instanceof InvalidInputError && error.field === 'spec.assumeRole.durationSeconds',
    );
  });

  it("a synced SecretProviderClass reads ASCP's assumeRole* parameters", () => {
    const spc = structuredClone(seedSpc);
    spc.metadata.namespace = 'shop';
    spc.spec.parameters.assumeRoleArn = target;
    spc.spec.parameters.assumeRoleExternalId = 'shop-7f3a';
    assert.deepEqual(spcJob(spc).roleChain, {
      chain: { roleArn: target, externalId: 'shop-7f3a' },
      field: 'spec.parameters.assumeRoleArn',
    });
    spc.spec.parameters.assumeRoleArn = 'nope';
    assert.throws(
      () => spcJob(spc),
      (error: unknown) =>
        error instanceof InvalidInputError && error.field === 'spec.parameters.assumeRoleArn',
    );
  });
});

describe('identity resolver: chaining starts from the account, never the controller', () => {
  const serviceAccounts: ServiceAccounts = {
    roleArn: async () => own,
    roleArnIfAny: async () => own,
    token: async () => ({ token: 'sa-token', expiresAt: new Date(Date.now() + 3_600_000) }),
  };
  const reader: SecretReader = {
    read: async () => [],
    describe: async () => {
      throw new Error('unused');
    },
  };

  it('wraps the account web identity; one reader per (account, chain)', async () => {
    const made: Identity[] = [];
    const resolver = createIdentityResolver({
      serviceAccounts,
      makeReader: (identity) => {
        made.push(identity);
        return reader;
      },
    });
    const chain = { chain: { roleArn: target, externalId: 'one-id' }, field: 'spec.assumeRole.roleArn' };
    const resolved = await resolver.resolve('shop', 'api', chain);
    await resolver.resolve('shop', 'api', chain);
    await resolver.resolve('shop', 'api', { ...chain, chain: { roleArn: target, externalId: 'two-id' } });
    await resolver.resolve('shop', 'api');
    assert.equal(made.length, 3);
    assert.equal(resolved.roleArn, target, 'status names the role reads are made as');
    const [first] = made;
    assert.equal(first?.kind, 'assumeRole');
    if (first?.kind !== 'assumeRole') return;
    assert.equal(first.field, 'spec.assumeRole.roleArn');
    assert.equal(first.sessionName, 'smk.shop.api');
    assert.equal(first.source.kind, 'webIdentity');
    assert.match(identityKey(first), /webIdentity:arn:aws:iam::111122223333:role\/shop-api:shop\/api$/);
    assert.ok(!identityKey(first).includes('one-id'));
  });
});
