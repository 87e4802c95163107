/**
 * Fuzz: the CSI provider's Mount inputs — `attributes` JSON (the SecretProviderClass parameters
 * merged with the pod context and its tokens) and `permission` — through the real parser and the
 * whole Mount handler (fake identity and reader, real spec parser and payload pipeline). A reply
 * whose files stay inside the volume, or an SmkError; tokens and values never in a message or a
 * log line.
 */
import assert from 'node:assert/strict';
import { resolve, sep } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { InvalidInputError, isSmkError } from '../../src/core/errors.ts';
import type { ReadResult, SecretReader, SecretRequest } from '../../src/core/source.ts';
import {
  parseDefaultMode,
  parseMountAttributes,
  podNameKey,
  podNamespaceKey,
  podUidKey,
  secretProviderClassKey,
  serviceAccountNameKey,
  serviceAccountTokensKey,
} from '../../src/csi/attributes.ts';
import { createMountHandler } from '../../src/csi/mount.ts';
import { leafStrings, objectsTextArb, secretJsonArb, validObjectArb } from './arbitraries.ts';
import { checkProperty } from './settings.ts';

const volume = resolve('/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets/mount');

/** A token no message template could contain by chance. */
const tokenArb = fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/).map((body) => `tok.${body}`);

const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });

/** Usually the value the driver sends, sometimes missing, sometimes odd. */
const usually = <T>(good: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof(
    { weight: 12, arbitrary: good },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: odd },
  );

const tokensTextArb = fc.oneof(
  {
    weight: 8,
    arbitrary: tokenArb.map((token) =>
      JSON.stringify({ 'sts.amazonaws.com': { token, expirationTimestamp: '2030-01-01T00:00:00Z' } }),
    ),
  },
  fc
    .dictionary(
      fc.constantFrom('sts.amazonaws.com', 'pods.eks.amazonaws.com', 'vault'),
      fc.record({
        token: tokenArb,
        expirationTimestamp: maybe(fc.constantFrom('2030-01-01T00:00:00Z', 'soon', '')),
      }),
      { maxKeys: 2 },
    )
    .map((tokens) => JSON.stringify(tokens)),
  tokenArb.map((token) => `{"sts.amazonaws.com":"${token}"}`),
  tokenArb.map((token) => `{"sts.amazonaws.com":{"token":"${token}"`),
  tokenArb,
);

const objectsParamArb = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.array(validObjectArb, { minLength: 1, maxLength: 3 }).map((list) => JSON.stringify(list)),
  },
  { weight: 2, arbitrary: objectsTextArb },
);

/** Attribute maps as the driver builds them, with any entry missing, odd, or of the wrong type. */
const attributesArb = fc
  .record({
    [podNamespaceKey]: usually(fc.constant('team-a'), fc.constantFrom('', ' ')),
    [podNameKey]: usually(fc.constant('api-7d9f'), fc.constant('')),
    [podUidKey]: maybe(fc.uuid()),
    [serviceAccountNameKey]: usually(fc.constant('api'), fc.constant('')),
    [serviceAccountTokensKey]: usually(tokensTextArb, fc.constant('')),
    [secretProviderClassKey]: maybe(fc.constantFrom('db', '')),
    objects: usually(objectsParamArb, fc.constant('')),
    region: maybe(fc.constantFrom('us-east-1', 'eu-west-2', 'moon-1', '')),
    failoverRegion: maybe(fc.constantFrom('us-west-2', 'us-east-1', '')),
    pathTranslation: maybe(fc.constantFrom('True', 'False', '-', '/', '')),
    usePodIdentity: maybe(fc.constantFrom('false', 'F', '0', 'true', 'yes', '')),
    preferredAddressType: maybe(fc.constantFrom('ipv4', 'ipv6', 'auto', 'IPV4', 'x')),
    wrongType: usually(
      fc.constant(undefined),
      fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.integer(), { maxLength: 1 })),
    ),
  })
  .map((record) => Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)));

const attributesTextArb = fc.oneof(
  { weight: 6, arbitrary: attributesArb.map((record) => JSON.stringify(record)) },
  { weight: 1, arbitrary: fc.json() },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
);

const permissionArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('', '420', '384') },
  fc.constantFrom('511', '512', '-1', '0644', '"420"', '4.2', 'null'),
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);

function secretsIn(text: string): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(/tok\.[A-Za-z0-9_-]{16,40}/g)) found.add(match[0]);
  return [...found];
}

test('fuzz: attributes and permission parse to a MountAttributes / mode or an InvalidInputError that quotes no input', async (t) => {
  let parsed = 0;
  await checkProperty(
    t,
    3_000,
    fc.property(attributesTextArb, permissionArb, (text, permission) => {
      try {
        const attributes = parseMountAttributes(text);
        parsed += 1;
        assert.ok(attributes.subject.length > 0);
        assert.ok(attributes.pod.namespace.trim() !== '' && attributes.pod.serviceAccount.trim() !== '');
      } catch (error) {
        assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
        assert.ok(error.field !== undefined, 'a refusal names the field');
        for (const token of secretsIn(text))
          assert.ok(!error.message.includes(token), `token in: ${error.message}`);
      }
      try {
        const mode = parseDefaultMode(permission);
        assert.ok(Number.isInteger(mode) && mode >= 0 && mode <= 0o777);
      } catch (error) {
        assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
        assert.equal(error.field, 'permission');
      }
    }),
  );
  t.diagnostic(`fuzz: ${parsed} attribute sets accepted`);
  assert.ok(parsed > 0);
});

function fakeReader(valueText: string): SecretReader {
  const bytes = new TextEncoder().encode(valueText);
  return {
    async read(requests: readonly SecretRequest[]): Promise<ReadResult[]> {
      return requests.map((request) => ({
        ok: true,
        value: {
          request,
          arn: `arn:aws:secretsmanager:${request.region}:1:secret:${request.id}`,
          name: request.id,
          versionId: 'v1',
          bytes,
          binary: false,
        },
      }));
    },
    async describe() {
      throw new Error('not used');
    },
  };
}

test('fuzz: the whole Mount handler answers files inside the volume or a clean SmkError, never leaking', async (t) => {
  let mounted = 0;
  await checkProperty(
    t,
    1_500,
    fc.asyncProperty(
      attributesTextArb,
      permissionArb,
      secretJsonArb,
      async (attributes, permission, value) => {
        const lines: string[] = [];
        const logger = pino(
          { level: 'debug' },
          new Writable({
            write(chunk, _encoding, done) {
              lines.push(String(chunk));
              done();
            },
          }),
        );
        const valueText = JSON.stringify(value);
        const handler = createMountHandler({
          logger,
          readerFor: () => fakeReader(valueText),
          identities: { roleArn: async () => 'arn:aws:iam::123456789012:role/fuzz' },
          environmentRegion: 'us-east-1',
        });
        const request = {
          attributes,
          secrets: '{}',
          target_path: volume,
          permission,
          current_object_version: [],
        };
        const secrets = [...secretsIn(attributes), ...leafStrings(value).filter((leaf) => leaf.length >= 6)];
        let message = '';
        try {
          const response = await handler(request);
          mounted += 1;
          assert.ok(response.object_version.length > 0);
          for (const file of response.files) {
            const full = resolve(volume, file.path);
            assert.ok(full.startsWith(volume + sep), `${file.path} leaves the volume`);
          }
        } catch (error) {
          assert.ok(isSmkError(error), `expected an SmkError, got ${String(error)}`);
          message = error.message;
        }
        for (const secret of secrets) {
          assert.ok(!message.includes(secret), `secret in the error: ${message}`);
          for (const line of lines)
            assert.ok(!line.includes(JSON.stringify(secret).slice(1, -1)), `secret in a log line: ${line}`);
        }
      },
    ),
  );
  t.diagnostic(`fuzz: ${mounted} mounts answered with files`);
  assert.ok(mounted > 0, 'no case reached a successful mount; the generator is too wild');
});
