/** The EKS pod identity webhook stand-in's mutation, as amazon-eks-pod-identity-webhook makes it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { identityPatch, tokenDirectory, tokenVolumeName } from './pod-identity-webhook.ts';

const roleArn = 'arn:aws:iam::123456789012:role/webserver-secrets-role';

describe('pod identity webhook stand-in', () => {
  it('gives every container the web identity env and token mount, and the pod the projected token', () => {
    const patch = identityPatch(
      {
        containers: [
          { name: 'app' },
          { name: 'side', env: [{ name: 'AWS_REGION', value: 'eu-west-1' }], volumeMounts: [] },
        ],
        initContainers: [{ name: 'init' }],
      },
      roleArn,
      'us-east-1',
    );
    const at = (path: string): unknown =>
      patch.filter((operation) => operation.path === path).map((operation) => operation.value);
    assert.deepEqual(at('/spec/containers/0/env'), [
      [
        { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
        { name: 'AWS_DEFAULT_REGION', value: 'us-east-1' },
        { name: 'AWS_REGION', value: 'us-east-1' },
        { name: 'AWS_ROLE_ARN', value: roleArn },
        { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: `${tokenDirectory}/token` },
      ],
    ]);
    // A container's own AWS_REGION stays.
    assert.deepEqual(
      (at('/spec/containers/1/env/-') as { name: string }[]).map((variable) => variable.name),
      ['AWS_STS_REGIONAL_ENDPOINTS', 'AWS_DEFAULT_REGION', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE'],
    );
    assert.equal((at('/spec/initContainers/0/env') as unknown[]).length, 1);
    assert.deepEqual(at('/spec/containers/1/volumeMounts/-'), [
      { name: tokenVolumeName, mountPath: tokenDirectory, readOnly: true },
    ]);
    assert.deepEqual(at('/spec/volumes'), [
      [
        {
          name: tokenVolumeName,
          projected: {
            sources: [
              {
                serviceAccountToken: {
                  audience: 'sts.amazonaws.com',
                  expirationSeconds: 86400,
                  path: 'token',
                },
              },
            ],
          },
        },
      ],
    ]);
  });

  it('leaves a pod that already has the token volume alone (reinvocation)', () => {
    assert.deepEqual(
      identityPatch(
        { containers: [{ name: 'app' }], volumes: [{ name: tokenVolumeName }] },
        roleArn,
        'us-east-1',
      ),
      [],
    );
  });
});
