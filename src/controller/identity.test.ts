import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Identity, identityKey } from '../aws/identity.ts';
import { InvalidInputError, NotFoundError } from '../core/errors.ts';
import type { SecretReader } from '../core/source.ts';
import type { ServiceAccounts } from '../kube/service-accounts.ts';
import { createIdentityResolver } from './identity.ts';

function accounts(roles: Record<string, string | Error>) {
  const calls = { roleArn: 0, token: 0 };
  const serviceAccounts: ServiceAccounts = {
    async roleArn(ref) {
      calls.roleArn += 1;
      const role = roles[`${ref.namespace}/${ref.name}`];
      if (role === undefined)
        throw new NotFoundError(`ServiceAccount ${ref.namespace}/${ref.name}: not found`);
      if (role instanceof Error) throw role;
      return role;
    },
    async roleArnIfAny(ref) {
      calls.roleArn += 1;
      const role = roles[`${ref.namespace}/${ref.name}`];
      if (role instanceof Error) throw role;
      return role === 'none' ? undefined : role;
    },
    async token(ref, audience) {
      calls.token += 1;
      return {
        token: `token-for-${ref.namespace}-${ref.name}-${audience}`,
        expiresAt: new Date(Date.now() + 3_600_000),
      };
    },
  };
  return { serviceAccounts, calls };
}

const reader: SecretReader = {
  read: async () => [],
  describe: async () => {
    throw new Error('unused');
  },
};

describe('per-namespace identity', () => {
  it("acts as the namespace's own ServiceAccount and role, one reader per identity", async () => {
    const made: Identity[] = [];
    const { serviceAccounts, calls } = accounts({
      'team-a/app': 'arn:aws:iam::111122223333:role/a',
      'team-b/app': 'arn:aws:iam::111122223333:role/b',
    });
    const resolver = createIdentityResolver({
      serviceAccounts,
      makeReader: (identity) => {
        made.push(identity);
        return reader;
      },
    });
    const a = await resolver.resolve('team-a', 'app');
    const again = await resolver.resolve('team-a', 'app');
    const b = await resolver.resolve('team-b', 'app');
    assert.equal(a.roleArn, 'arn:aws:iam::111122223333:role/a');
    assert.equal(b.roleArn, 'arn:aws:iam::111122223333:role/b');
    assert.equal(again, a, 'the same identity reuses its reader (and so its cache entries)');
    assert.equal(made.length, 2);
    assert.equal(calls.roleArn, 2, 'the role annotation is cached for a while');
    const [identityA] = made;
    assert.equal(identityA?.kind, 'webIdentity');
    if (identityA?.kind !== 'webIdentity') return;
    assert.equal(identityA.sessionName, 'smk.team-a.app');
    assert.equal(await identityA.token(), 'token-for-team-a-app-sts.amazonaws.com');
    assert.equal(await identityA.token(), 'token-for-team-a-app-sts.amazonaws.com');
    assert.equal(calls.token, 1, 'a token is reused until shortly before it expires');
  });

  it('re-reads the role after its TTL, so a changed annotation takes effect', async () => {
    let now = 0;
    const roles: Record<string, string> = { 'ns/app': 'arn:aws:iam::111122223333:role/old' };
    const { serviceAccounts } = accounts(roles);
    const resolver = createIdentityResolver({
      serviceAccounts,
      makeReader: () => reader,
      roleTtlMs: 1000,
      now: () => now,
    });
    assert.match((await resolver.resolve('ns', 'app')).roleArn, /old$/);
    roles['ns/app'] = 'arn:aws:iam::111122223333:role/new';
    assert.match((await resolver.resolve('ns', 'app')).roleArn, /old$/);
    now = 1000;
    assert.match((await resolver.resolve('ns', 'app')).roleArn, /new$/);
  });

  it('names a missing ServiceAccount and passes a missing annotation through', async () => {
    const { serviceAccounts } = accounts({
      'ns/plain': new InvalidInputError(
        'ServiceAccount ns/plain has no eks.amazonaws.com/role-arn annotation',
      ),
    });
    const resolver = createIdentityResolver({ serviceAccounts, makeReader: () => reader });
    await assert.rejects(
      resolver.resolve('ns', 'ghost'),
      (error: unknown) =>
        error instanceof NotFoundError && /ServiceAccount ns\/ghost not found/.test(error.message),
    );
    await assert.rejects(resolver.resolve('ns', 'plain'), InvalidInputError);
  });

  it('with Pod Identity on, an account without the IRSA annotation goes to the Pod Identity agent', async () => {
    const made: Identity[] = [];
    const { serviceAccounts } = accounts({ 'ns/app': 'none', 'ns/irsa': 'arn:aws:iam::111122223333:role/i' });
    const resolver = createIdentityResolver({
      serviceAccounts,
      makeReader: (identity) => {
        made.push(identity);
        return reader;
      },
      podIdentity: {},
    });
    const pod = await resolver.resolve('ns', 'app');
    assert.equal(pod.roleArn, 'EKS Pod Identity association');
    assert.equal(made[0]?.kind, 'podIdentity');
    if (made[0]?.kind !== 'podIdentity') return;
    assert.equal(made[0].subject, 'ns/app');
    assert.equal(await made[0].token(), 'token-for-ns-app-pods.eks.amazonaws.com');
    assert.equal(
      (await resolver.resolve('ns', 'irsa')).roleArn,
      'arn:aws:iam::111122223333:role/i',
      'IRSA still wins',
    );
  });

  it('keys identities by the whole namespace/account, not by the shortened session name', async () => {
    const made: Identity[] = [];
    const names = ['a'.repeat(63), 'b'.repeat(63)];
    const { serviceAccounts } = accounts(
      Object.fromEntries(names.map((name) => [`${'n'.repeat(63)}/${name}`, 'arn:aws:iam::1:role/r'])),
    );
    const resolver = createIdentityResolver({
      serviceAccounts,
      makeReader: (identity) => {
        made.push(identity);
        return reader;
      },
    });
    for (const name of names) await resolver.resolve('n'.repeat(63), name);
    const [first, second] = made;
    assert.ok(first?.kind === 'webIdentity' && second?.kind === 'webIdentity');
    assert.equal(first.subject, `${'n'.repeat(63)}/${names[0]}`);
    // Even if two session names were equal (a 48-bit hash can collide), the cache keys differ.
    assert.notEqual(identityKey(first), identityKey({ ...second, sessionName: first.sessionName }));
  });

  it('keeps at most maxAccounts identities; a dropped one is resolved again', async () => {
    const made: Identity[] = [];
    const { serviceAccounts, calls } = accounts({
      'ns/a': 'arn:aws:iam::1:role/a',
      'ns/b': 'arn:aws:iam::1:role/b',
      'ns/c': 'arn:aws:iam::1:role/c',
    });
    const resolver = createIdentityResolver({
      serviceAccounts,
      maxAccounts: 2,
      makeReader: (identity) => {
        made.push(identity);
        return reader;
      },
    });
    for (const name of ['a', 'b', 'a', 'c']) await resolver.resolve('ns', name);
    assert.equal(made.length, 3, 'a was kept while it was used');
    assert.equal(calls.roleArn, 3);
    await resolver.resolve('ns', 'b');
    assert.equal(made.length, 4, 'b, the least recently used, was dropped and is built again');
    assert.equal(calls.roleArn, 4);
  });
});
