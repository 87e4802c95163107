import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Secret } from '@kubernetes/client-node';
import { refOfSecret } from './cache.ts';

const location = { prefix: 'kubernetes/', region: 'us-east-1' };
const own = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-a/db-AbCdEf';

function secret(annotations: Record<string, string>, labelled = true): V1Secret {
  return {
    metadata: {
      name: 'db',
      namespace: 'team-a',
      labels: labelled ? { 'smk.dev/write-through': 'true' } : {},
      annotations,
    },
  };
}

test('the pod path reads the secret derived from namespace and name; the recorded ARN only when it is that one', () => {
  assert.deepEqual(refOfSecret(secret({ 'smk.dev/keys': 'password,username' }), location), {
    secretId: 'kubernetes/team-a/db',
    region: 'us-east-1',
    keys: ['password', 'username'],
    base64Keys: [],
  });
  assert.equal(refOfSecret(secret({ 'smk.dev/aws-secret-arn': own }), location)?.secretId, own);
  for (const forged of [
    'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-b/db-AbCdEf',
    'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-a/db-other-AbCdEf',
    'arn:aws:secretsmanager:eu-west-1:123456789012:secret:kubernetes/team-a/db-AbCdEf',
    'arn:aws:ssm:us-east-1:123456789012:parameter/kubernetes/team-a/db',
    'kubernetes/team-b/db',
  ]) {
    assert.equal(
      refOfSecret(secret({ 'smk.dev/aws-secret-arn': forged }), location)?.secretId,
      'kubernetes/team-a/db',
      forged,
    );
  }
});

test('a chosen name counts only under the namespace prefix; keys that are no Secret key are dropped', () => {
  const named = secret({ 'smk.dev/aws-secret-name': 'kubernetes/team-a/payments/db' });
  assert.equal(refOfSecret(named, location)?.secretId, 'kubernetes/team-a/payments/db');
  assert.equal(
    refOfSecret(secret({ 'smk.dev/aws-secret-name': 'kubernetes/team-b/db' }), location),
    undefined,
  );
  assert.deepEqual(refOfSecret(secret({ 'smk.dev/keys': 'ok,../x,a/b,..' }), location)?.keys, ['ok']);
  assert.equal(refOfSecret(secret({}, false), location), undefined);
});
