import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInputError } from '../core/errors.ts';
import { normaliseRoleChain, parseRoleChain, roleChainKey, roleChainSchema } from './role-chain.ts';

const arn = 'arn:aws:iam::222233334444:role/shared-secrets-reader';
const subject = 'SecretProviderClass db (pod shop/api)';

function refused(run: () => unknown, field: string, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof InvalidInputError, String(error));
    assert.equal(error.field, field);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('parseRoleChain: the flat form (SecretProviderClass parameters, annotations, flags)', () => {
  it('no role named: no chain', () => {
    assert.equal(parseRoleChain({}, subject), undefined);
    assert.equal(parseRoleChain({ assumeRoleArn: '  ' }, subject), undefined);
  });

  it('reads every key, ASCP names, tags sorted', () => {
    assert.deepEqual(
      parseRoleChain(
        {
          assumeRoleArn: arn,
          assumeRoleExternalId: 'shop-prod-7f3a',
          assumeRoleDurationSeconds: '1800',
          assumeRoleSessionTags: 'team=shop, env = prod',
        },
        subject,
      ),
      {
        roleArn: arn,
        externalId: 'shop-prod-7f3a',
        durationSeconds: 1800,
        sessionTags: { env: 'prod', team: 'shop' },
      },
    );
  });

  it('a setting without the role is refused, naming both fields', () => {
    refused(
      () => parseRoleChain({ assumeRoleExternalId: 'abc' }, subject),
      'assumeRoleExternalId',
      /needs assumeRoleArn/,
    );
  });

  it('refuses a malformed ARN, naming the field the user wrote', () => {
    refused(
      () => parseRoleChain({ assumeRoleArn: 'arn:aws:iam::1:user/x' }, subject, (key) => `smk.dev/${key}`),
      'smk.dev/roleArn',
      /IAM role ARN/,
    );
  });

  it('refuses a session over the one hour AWS allows a chained role, and a non-number', () => {
    refused(
      () => parseRoleChain({ assumeRoleArn: arn, assumeRoleDurationSeconds: '7200' }, subject),
      'assumeRoleDurationSeconds',
      /at most 3600/,
    );
    refused(
      () => parseRoleChain({ assumeRoleArn: arn, assumeRoleDurationSeconds: '1h' }, subject),
      'assumeRoleDurationSeconds',
      /whole number/,
    );
  });

  it('refuses an external id outside AWS charset without echoing it', () => {
    const externalId = 'has a space and ☃';
    assert.throws(
      () => parseRoleChain({ assumeRoleArn: arn, assumeRoleExternalId: externalId }, subject),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        error.field === 'assumeRoleExternalId' &&
        !error.message.includes(externalId),
    );
  });

  it('refuses malformed and repeated tags', () => {
    refused(
      () => parseRoleChain({ assumeRoleArn: arn, assumeRoleSessionTags: 'team' }, subject),
      'assumeRoleSessionTags',
      /key=value/,
    );
    refused(
      () => parseRoleChain({ assumeRoleArn: arn, assumeRoleSessionTags: 'a=1,a=2' }, subject),
      'assumeRoleSessionTags',
      /given twice/,
    );
    const many = Array.from({ length: 51 }, (_, n) => `k${n}=v`).join(',');
    refused(
      () => parseRoleChain({ assumeRoleArn: arn, assumeRoleSessionTags: many }, subject),
      'assumeRoleSessionTags',
      /at most 50/,
    );
  });
});

describe('roleChainSchema / normaliseRoleChain: the CRD form', () => {
  it('accepts the same shape and sorts tags; unknown fields are refused', () => {
    const parsed = roleChainSchema.parse({ roleArn: arn, sessionTags: { z: '1', a: '2' } });
    assert.deepEqual(Object.keys(normaliseRoleChain(parsed).sessionTags ?? {}), ['a', 'z']);
    assert.equal(roleChainSchema.safeParse({ roleArn: arn, externalID: 'x' }).success, false);
  });
});

describe('roleChainKey', () => {
  it('differs by role, external id, duration and tags; holds no external id', () => {
    const base = { roleArn: arn };
    const keys = new Set([
      roleChainKey(base),
      roleChainKey({ ...base, externalId: 'one-id' }),
      roleChainKey({ ...base, externalId: 'two-id' }),
      roleChainKey({ ...base, durationSeconds: 900 }),
      roleChainKey({ ...base, sessionTags: { team: 'a' } }),
      roleChainKey({ roleArn: 'arn:aws:iam::222233334444:role/other' }),
    ]);
    assert.equal(keys.size, 6);
    assert.ok(!roleChainKey({ ...base, externalId: 'one-id' }).includes('one-id'));
  });
});
