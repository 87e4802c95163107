import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type TlsFlagValues, tlsSettingsFromFlags } from './flags.ts';

const defaults: TlsFlagValues = {
  'tls-ca-validity': '87600h',
  'tls-cert-validity': '8760h',
  'tls-check-interval': '1m',
  'tls-cluster-domain': 'cluster.local',
};
const chart: TlsFlagValues = {
  ...defaults,
  'tls-secret': 'smk-webhook-tls',
  'tls-service': 'smk-webhook',
  'tls-webhook-config': 'smk-webhook',
};
const hour = 3_600_000;

describe('smk webhook --tls-* flags', () => {
  test('absent --tls-secret: files come from elsewhere', () => {
    assert.equal(tlsSettingsFromFlags(defaults, 'smk'), undefined);
  });

  test("the chart's flags, namespace from POD_NAMESPACE", () => {
    assert.deepEqual(tlsSettingsFromFlags(chart, 'smk-system'), {
      secretName: 'smk-webhook-tls',
      serviceName: 'smk-webhook',
      namespace: 'smk-system',
      webhookConfigurations: { mutating: ['smk-webhook'], validating: [] },
      policy: { caValidityMs: 87_600 * hour, servingValidityMs: 8_760 * hour },
      checkIntervalMs: 60_000,
      clusterDomain: 'cluster.local',
    });
  });

  test('lists and an explicit namespace', () => {
    const settings = tlsSettingsFromFlags(
      {
        ...chart,
        'tls-namespace': 'other',
        'tls-webhook-config': 'a, b',
        'tls-validating-webhook-config': 'c',
      },
      'smk-system',
    );
    assert.equal(settings?.namespace, 'other');
    assert.deepEqual(settings?.webhookConfigurations, { mutating: ['a', 'b'], validating: ['c'] });
  });

  const refusals: Array<[string, TlsFlagValues, string | undefined, string]> = [
    [
      'no service',
      { ...chart, 'tls-service': undefined },
      'ns',
      '--tls-service is required with --tls-secret',
    ],
    [
      'no namespace anywhere',
      chart,
      undefined,
      '--tls-namespace is required with --tls-secret when POD_NAMESPACE is not set',
    ],
    [
      'no configuration to patch',
      { ...chart, 'tls-webhook-config': undefined },
      'ns',
      '--tls-webhook-config needs at least one webhook configuration to patch the caBundle into',
    ],
    ['bad secret name', { ...chart, 'tls-secret': 'Bad_Name' }, 'ns', '--tls-secret must be a Secret name'],
    [
      'bad duration',
      { ...chart, 'tls-cert-validity': '1 year' },
      'ns',
      '--tls-cert-validity must be a duration like 90s, 30m or 8760h',
    ],
    [
      'too eager',
      { ...chart, 'tls-check-interval': '0s' },
      'ns',
      '--tls-check-interval must be a duration like 90s, 30m or 8760h',
    ],
    [
      'certificate outlives its CA',
      { ...chart, 'tls-ca-validity': '100h', 'tls-cert-validity': '200h' },
      'ns',
      '--tls-cert-validity must not be longer than --tls-ca-validity',
    ],
  ];
  for (const [name, values, namespace, message] of refusals) {
    test(`refused: ${name}`, () => {
      assert.throws(
        () => tlsSettingsFromFlags(values, namespace),
        (error: Error) =>
          error.name === 'InvalidInputError' &&
          error.message === `smk webhook: ${message} (see smk webhook --help)`,
      );
    });
  }
});
