import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { identityKey } from '../aws/identity.ts';
import { InvalidInputError } from '../core/errors.ts';
import { parseMountAttributes } from './attributes.ts';
import { identityFor, podIdentityAgentUrls, rememberRoleArns } from './identity.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const roleArn = 'arn:aws:iam::123456789012:role/app';

describe('identityFor', () => {
  it("assumes the annotated role with the pod's sts.amazonaws.com token", async () => {
    const attributes = parseMountAttributes(fixture('attributes-irsa.json'));
    const asked: string[] = [];
    const identity = await identityFor(attributes, {
      roleArn: async (ref) => {
        asked.push(`${ref.namespace}/${ref.name}`);
        return roleArn;
      },
    });
    assert.deepEqual(asked, ['default/nginx-deployment-sa']);
    assert.equal(identity.kind, 'webIdentity');
    if (identity.kind !== 'webIdentity') return;
    assert.equal(identity.roleArn, roleArn);
    assert.equal(await identity.token(), 'header.payload.signature');
    assert.equal(identity.sessionName, 'smk.default.nginx-deployment-sa');
    assert.doesNotMatch(identityKey(identity), /signature/);
  });

  it('uses Pod Identity with the pods.eks.amazonaws.com token at the preferred address', async () => {
    const attributes = parseMountAttributes(fixture('attributes-pod-identity.json'));
    const identity = await identityFor(attributes, {
      roleArn: () => Promise.reject(new Error('IRSA must not be consulted')),
    });
    assert.equal(identity.kind, 'podIdentity');
    if (identity.kind !== 'podIdentity') return;
    assert.equal(await identity.token(), 'pi.token.value');
    assert.equal(identity.endpoint, podIdentityAgentUrls.ipv6);
    assert.equal(identity.subject, 'team-a/api');
  });

  it('refuses IRSA without a token before looking the role up, saying how to request one', async () => {
    const base = JSON.parse(fixture('attributes-irsa.json')) as Record<string, string>;
    delete base['csi.storage.k8s.io/serviceAccount.tokens'];
    let looked = false;
    await assert.rejects(
      identityFor(parseMountAttributes(JSON.stringify(base)), {
        roleArn: async () => {
          looked = true;
          return roleArn;
        },
      }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidInputError);
        assert.equal(error.field, 'csi.storage.k8s.io/serviceAccount.tokens');
        assert.match(error.message, /tokenRequests: \[\{audience: "sts\.amazonaws\.com"\}\]/);
        return true;
      },
    );
    assert.equal(looked, false);
  });
});

describe('identityFor: assumeRoleArn (role chaining, ASCP PR 555 parameter names)', () => {
  const target = 'arn:aws:iam::222233334444:role/shared-secrets';
  const withChain = (extra: Record<string, string>): string =>
    JSON.stringify({ ...(JSON.parse(fixture('attributes-irsa.json')) as Record<string, string>), ...extra });

  it("chains from the pod's own IRSA identity, never the provider's", async () => {
    const attributes = parseMountAttributes(
      withChain({
        assumeRoleArn: target,
        assumeRoleExternalId: 'shop-7f3a',
        assumeRoleSessionTags: 'team=shop',
      }),
    );
    const identity = await identityFor(attributes, { roleArn: async () => roleArn });
    assert.equal(identity.kind, 'assumeRole');
    if (identity.kind !== 'assumeRole') return;
    assert.deepEqual(identity.chain, {
      roleArn: target,
      externalId: 'shop-7f3a',
      sessionTags: { team: 'shop' },
    });
    assert.equal(identity.field, 'assumeRoleArn');
    assert.equal(identity.sessionName, 'smk.default.nginx-deployment-sa');
    assert.equal(identity.source.kind, 'webIdentity');
    if (identity.source.kind !== 'webIdentity') return;
    assert.equal(identity.source.roleArn, roleArn);
    assert.equal(await identity.source.token(), 'header.payload.signature');
  });

  it('refuses a bad duration before any AWS work, naming the parameter and the class', async () => {
    const attributes = parseMountAttributes(
      withChain({ assumeRoleArn: target, assumeRoleDurationSeconds: '43200' }),
    );
    await assert.rejects(identityFor(attributes, { roleArn: async () => roleArn }), (error: unknown) => {
      assert.ok(error instanceof InvalidInputError);
      assert.equal(error.field, 'assumeRoleDurationSeconds');
      assert.match(error.message, /^SecretProviderClass .*assumeRoleDurationSeconds: expected at most 3600/);
      return true;
    });
  });
});

describe('rememberRoleArns', () => {
  it('asks once per ServiceAccount within the TTL, shares a running lookup, and keeps no failure', async () => {
    let clock = 0;
    const asked: string[] = [];
    let fail = true;
    const lookup = rememberRoleArns(
      async (ref) => {
        asked.push(ref.name);
        if (ref.name === 'flaky' && fail) throw new InvalidInputError('no annotation');
        return `${roleArn}-${ref.name}`;
      },
      1000,
      () => clock,
    );
    const [a, b] = await Promise.all([
      lookup({ namespace: 'n', name: 'a' }),
      lookup({ namespace: 'n', name: 'a' }),
    ]);
    assert.equal(a, `${roleArn}-a`);
    assert.equal(b, a);
    await lookup({ namespace: 'n', name: 'a' });
    assert.deepEqual(asked, ['a']);
    clock = 1001;
    await lookup({ namespace: 'n', name: 'a' });
    assert.deepEqual(asked, ['a', 'a']);

    await assert.rejects(lookup({ namespace: 'n', name: 'flaky' }), InvalidInputError);
    fail = false;
    assert.equal(await lookup({ namespace: 'n', name: 'flaky' }), `${roleArn}-flaky`);
  });
});
