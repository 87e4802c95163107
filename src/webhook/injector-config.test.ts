import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError } from '../core/errors.ts';
import { smkVersion } from '../core/version.ts';
import { injectorConfigFromFlags } from './injector-config.ts';
import { defaultInjectorConfig } from './mutate.ts';

describe('injectorConfigFromFlags', () => {
  test('no flags: the defaults, with this release as the agent image', () => {
    assert.deepEqual(injectorConfigFromFlags({}, 'webhook'), defaultInjectorConfig);
    assert.equal(defaultInjectorConfig.agentImage, `ghcr.io/smk-dev/smk:${smkVersion}`);
  });

  test('flags override the defaults', () => {
    const config = injectorConfigFromFlags(
      {
        agentImage: ' registry.example/smk@sha256:abc ',
        pullPolicy: 'Always',
        volumeSizeLimit: '1Mi',
        nativeSidecar: false,
        agentUser: '1001',
        awsEndpointUrl: 'https://localstack.example:4566',
      },
      'inject',
    );
    assert.equal(config.agentImage, 'registry.example/smk@sha256:abc');
    assert.equal(config.imagePullPolicy, 'Always');
    assert.equal(config.volumeSizeLimit, '1Mi');
    assert.equal(config.nativeSidecar, false);
    assert.equal(config.agentUser, 1001);
    assert.equal(config.awsEndpointUrl, 'https://localstack.example:4566');
  });

  test('a bad value names the flag', () => {
    for (const [flags, flag] of [
      [{ pullPolicy: 'Sometimes' }, '--agent-pull-policy'],
      [{ volumeSizeLimit: 'big' }, '--volume-size-limit'],
      [{ agentImage: 'a b' }, '--agent-image'],
      [{ agentUser: '0' }, '--agent-user'],
      [{ awsEndpointUrl: 'localstack:4566' }, '--agent-aws-endpoint-url'],
      [{ awsEndpointUrl: 'file:///etc/passwd' }, '--agent-aws-endpoint-url'],
    ] as const) {
      assert.throws(
        () => injectorConfigFromFlags(flags, 'webhook'),
        (error: unknown) =>
          error instanceof InvalidInputError &&
          error.field === flag &&
          error.message.startsWith(`smk webhook: ${flag} `),
      );
    }
  });
});
