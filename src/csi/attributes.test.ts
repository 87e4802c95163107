import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { InvalidInputError } from '../core/errors.ts';
import { parseDefaultMode, parseGoBool, parseMountAttributes } from './attributes.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

function invalidWith(pattern: RegExp, field: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
    assert.match(error.message, pattern);
    assert.equal(error.field, field);
    return true;
  };
}

describe('parseMountAttributes', () => {
  it('reads the pod, the SecretProviderClass name and the IRSA token of a driver request', () => {
    const attributes = parseMountAttributes(fixture('attributes-irsa.json'));
    assert.deepEqual(attributes.pod, {
      namespace: 'default',
      name: 'test-secrets',
      uid: '5c1f5a8e-0d7b-4a53-9a43-3e0f4b1f9a10',
      serviceAccount: 'nginx-deployment-sa',
    });
    assert.equal(attributes.subject, 'SecretProviderClass aws-secrets (pod default/test-secrets)');
    assert.equal(attributes.usePodIdentity, false);
    assert.equal(attributes.preferredAddressType, 'auto');
    const token = attributes.tokens.get('sts.amazonaws.com');
    assert.equal(token?.token, 'header.payload.signature');
    assert.equal(token?.expiresAt?.toISOString(), '2030-01-01T00:00:00.000Z');
    assert.equal(attributes.parameters.region, 'us-east-1');
  });

  it('reads usePodIdentity as Go does and preferredAddressType case-insensitively', () => {
    const attributes = parseMountAttributes(fixture('attributes-pod-identity.json'));
    assert.equal(attributes.usePodIdentity, true);
    assert.equal(attributes.preferredAddressType, 'ipv6');
    assert.equal(attributes.ignoredAddressType, false);
    assert.equal(attributes.tokens.get('pods.eks.amazonaws.com')?.token, 'pi.token.value');
  });

  it('falls back to auto for an unknown preferredAddressType, as ASCP does, and says so', () => {
    const base = JSON.parse(fixture('attributes-pod-identity.json')) as Record<string, string>;
    const attributes = parseMountAttributes(JSON.stringify({ ...base, preferredAddressType: 'ipv7' }));
    assert.equal(attributes.preferredAddressType, 'auto');
    assert.equal(attributes.ignoredAddressType, true);
  });

  it('refuses text that is not JSON without quoting it (it carries tokens)', () => {
    const text = '{"csi.storage.k8s.io/serviceAccount.tokens": "sekrit-token-value"';
    assert.throws(
      () => parseMountAttributes(text),
      (error: unknown) => {
        assert.ok(error instanceof InvalidInputError);
        assert.match(error.message, /attributes is not valid JSON/);
        assert.doesNotMatch(error.message, /sekrit/);
        return true;
      },
    );
  });

  it('refuses JSON that is not an object of strings, naming the key', () => {
    assert.throws(() => parseMountAttributes('[1,2]'), invalidWith(/not a JSON object/, 'attributes'));
    assert.throws(
      () => parseMountAttributes('{"region": 5}'),
      invalidWith(/attributes\.region is not a string/, 'attributes.region'),
    );
  });

  for (const key of [
    'csi.storage.k8s.io/pod.namespace',
    'csi.storage.k8s.io/pod.name',
    'csi.storage.k8s.io/serviceAccount.name',
  ]) {
    it(`refuses a request without ${key}`, () => {
      const base = JSON.parse(fixture('attributes-irsa.json')) as Record<string, string>;
      delete base[key];
      assert.throws(() => parseMountAttributes(JSON.stringify(base)), invalidWith(/is missing/, key));
    });
  }

  it('refuses a malformed tokens attribute without quoting it', () => {
    const base = JSON.parse(fixture('attributes-irsa.json')) as Record<string, string>;
    const text = JSON.stringify({ ...base, 'csi.storage.k8s.io/serviceAccount.tokens': '{"a": "sekrit"}' });
    assert.throws(
      () => parseMountAttributes(text),
      (error: unknown) => {
        assert.ok(error instanceof InvalidInputError);
        assert.match(
          error.message,
          /^SecretProviderClass aws-secrets \(pod default\/test-secrets\): attribute/,
        );
        assert.doesNotMatch(error.message, /sekrit/);
        return true;
      },
    );
  });

  it('refuses a usePodIdentity that Go would not parse', () => {
    const base = JSON.parse(fixture('attributes-irsa.json')) as Record<string, string>;
    assert.throws(
      () => parseMountAttributes(JSON.stringify({ ...base, usePodIdentity: 'yes' })),
      invalidWith(/usePodIdentity must be "true" or "false"/, 'usePodIdentity'),
    );
  });
});

describe('parseGoBool', () => {
  it('accepts exactly what strconv.ParseBool accepts', () => {
    for (const text of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(parseGoBool(text), true);
    for (const text of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(parseGoBool(text), false);
    for (const text of ['yes', 'tRUE', '', ' true']) assert.equal(parseGoBool(text), undefined);
  });
});

describe('parseDefaultMode', () => {
  it('reads the decimal mode the driver sends', () => {
    assert.equal(parseDefaultMode('420'), 0o644);
    assert.equal(parseDefaultMode('256'), 0o400);
    assert.equal(parseDefaultMode(''), 0o644);
  });

  it('refuses anything that is not a mode', () => {
    for (const text of ['"420"', '-1', '512', '4.5', 'x']) {
      assert.throws(() => parseDefaultMode(text), invalidWith(/permission is not a file mode/, 'permission'));
    }
  });
});
