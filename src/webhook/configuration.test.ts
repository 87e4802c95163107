import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultNamespaceSelector, webhookConfiguration, webhookName } from './configuration.ts';

describe('webhookConfiguration', () => {
  test('in-cluster service target: pods on CREATE, fail closed, reinvoked when needed', () => {
    const config = webhookConfiguration({
      name: 'smk-injector',
      caBundlePem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
      target: { service: { namespace: 'smk-system', name: 'smk-webhook' } },
    });
    const webhook = config.webhooks?.[0];
    assert.equal(webhook?.name, webhookName);
    assert.deepEqual(webhook?.clientConfig.service, {
      namespace: 'smk-system',
      name: 'smk-webhook',
      path: '/mutate/pods',
      port: 443,
    });
    assert.equal(
      Buffer.from(webhook?.clientConfig.caBundle ?? '', 'base64').toString(),
      '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
    );
    assert.equal(webhook?.failurePolicy, 'Fail');
    assert.equal(webhook?.reinvocationPolicy, 'IfNeeded');
    assert.equal(webhook?.sideEffects, 'None');
    assert.deepEqual(webhook?.rules?.[0]?.operations, ['CREATE']);
    assert.deepEqual(webhook?.namespaceSelector, defaultNamespaceSelector);
    assert.notEqual(webhook?.namespaceSelector, defaultNamespaceSelector);
    assert.equal(webhook?.objectSelector, undefined);
  });

  test('url target (out of cluster) gets the mutate path', () => {
    const config = webhookConfiguration({
      name: 'x',
      caBundlePem: 'pem',
      target: { url: 'https://127.0.0.1:8443' },
      failurePolicy: 'Ignore',
      objectSelector: { matchLabels: { app: 'web' } },
    });
    assert.equal(config.webhooks?.[0]?.clientConfig.url, 'https://127.0.0.1:8443/mutate/pods');
    assert.equal(config.webhooks?.[0]?.failurePolicy, 'Ignore');
    assert.deepEqual(config.webhooks?.[0]?.objectSelector, { matchLabels: { app: 'web' } });
  });
});
