import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Identity } from '../aws/identity.ts';
import { InvalidInputError, NotFoundError, TooLargeError } from '../core/errors.ts';
import { silentLogger } from '../core/log.ts';
import type { ReadResult, SecretReader, SecretRequest } from '../core/source.ts';
import { createMountHandler, type MountOptions, rememberOnceFound } from './mount.ts';
import type { MountRequest } from './protocol.ts';

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/attributes-irsa.json', import.meta.url), 'utf8'),
) as Record<string, string>;

/** A reader answering every request with `value` (or NotFound for ids in `missing`), recording what it was asked. */
function fakeReader(value: string, missing: readonly string[] = []) {
  const asked: SecretRequest[] = [];
  const reader: SecretReader = {
    async read(requests) {
      asked.push(...requests);
      return requests.map(
        (request): ReadResult =>
          missing.includes(request.id)
            ? { ok: false, error: new NotFoundError(`${request.id}: not found`, { subject: request.id }) }
            : {
                ok: true,
                value: {
                  request,
                  arn: `arn:aws:secretsmanager:${request.region}:123456789012:secret:${request.id}-AbCdEf`,
                  name: request.id,
                  versionId: 'v-0000000000000000000000000000000001',
                  bytes: new TextEncoder().encode(value),
                  binary: false,
                },
              },
      );
    },
    describe: () => Promise.reject(new Error('not used')),
  };
  return { reader, asked };
}

function handler(overrides: Partial<MountOptions> & { value?: string } = {}) {
  const { reader, asked } = fakeReader(overrides.value ?? 'v');
  const identities: Identity[] = [];
  const mount = createMountHandler({
    readerFor: (identity) => {
      identities.push(identity);
      return reader;
    },
    identities: { roleArn: async () => 'arn:aws:iam::123456789012:role/app' },
    logger: silentLogger(),
    ...overrides,
  });
  return { mount, asked, identities };
}

function request(parameters: Record<string, string>, permission = '420'): MountRequest {
  const attributes = { ...fixture, ...parameters };
  for (const [key, value] of Object.entries(parameters)) if (value === '') delete attributes[key];
  return {
    attributes: JSON.stringify(attributes),
    secrets: '',
    target_path: '/t',
    permission,
    current_object_version: [],
  };
}

describe('createMountHandler', () => {
  it('returns every file with its mode and one object version per file', async () => {
    const { mount, asked } = handler({ value: '{"a":"1"}' });
    const objects = '- {objectName: db, objectType: secretsmanager, jmesPath: [{path: a, objectAlias: a}]}';
    const response = await mount(request({ objects, region: 'eu-west-1' }, String(0o440)));
    assert.deepEqual(
      response.files.map((file) => [file.path, file.mode, Buffer.from(file.contents).toString()]),
      [
        ['db', 0o440, '{"a":"1"}'],
        ['a', 0o440, '1'],
      ],
    );
    assert.deepEqual(
      response.object_version.map((version) => version.id),
      ['db', 'a'],
    );
    assert.equal(asked[0]?.region, 'eu-west-1');
    assert.equal(asked[0]?.versionStage, 'AWSCURRENT');
  });

  it('takes the region from the class, then the environment, then the node (asked once)', async () => {
    let nodeAsks = 0;
    const nodeRegion = rememberOnceFound(async () => {
      nodeAsks += 1;
      return 'ap-south-1';
    });
    const objects = '- {objectName: db, objectType: secretsmanager}';
    const fromNode = handler({ nodeRegion });
    await fromNode.mount(request({ objects, region: '' }));
    await fromNode.mount(request({ objects, region: '' }));
    assert.deepEqual(
      fromNode.asked.map((asked) => asked.region),
      ['ap-south-1', 'ap-south-1'],
    );
    assert.equal(nodeAsks, 1);

    const fromEnvironment = handler({ nodeRegion, environmentRegion: 'us-west-2' });
    await fromEnvironment.mount(request({ objects, region: '' }));
    assert.equal(fromEnvironment.asked[0]?.region, 'us-west-2');

    const fromClass = handler({ nodeRegion, environmentRegion: 'us-west-2' });
    await fromClass.mount(request({ objects, region: 'eu-north-1' }));
    assert.equal(fromClass.asked[0]?.region, 'eu-north-1');
  });

  it('refuses a reply larger than the driver accepts, naming the largest file', async () => {
    const { mount } = handler({ value: 'x'.repeat(600), maxReplyBytes: 1000 });
    const objects =
      '- {objectName: a, objectType: secretsmanager}\n- {objectName: b, objectType: secretsmanager}';
    await assert.rejects(mount(request({ objects })), (error: unknown) => {
      assert.ok(error instanceof TooLargeError);
      assert.match(
        error.message,
        /^SecretProviderClass aws-secrets \(pod default\/test-secrets\): the mount's files total/,
      );
      assert.match(error.message, /a \(600 bytes\)/);
      return true;
    });
  });

  it('refuses a missing objects parameter and never builds an identity for a bad spec', async () => {
    const { mount, identities } = handler();
    await assert.rejects(mount(request({ objects: '' })), InvalidInputError);
    await assert.rejects(
      mount(
        request({ objects: '- {objectName: "../x", objectType: ssmparameter}', pathTranslation: 'False' }),
      ),
      InvalidInputError,
    );
    assert.equal(identities.length, 0);
  });

  it('reads the ServiceAccount while the spec is parsed, yet reports a bad spec before a failed lookup', async () => {
    let lookups = 0;
    const { mount } = handler({
      identities: {
        roleArn: () => {
          lookups += 1;
          return Promise.reject(new NotFoundError('ServiceAccount default/app: not found', { subject: 'x' }));
        },
      },
    });
    await assert.rejects(mount(request({ objects: '- {objectType: secretsmanager}' })), (error: unknown) => {
      assert.ok(error instanceof InvalidInputError);
      assert.equal(error.field, 'objectName');
      return true;
    });
    assert.equal(lookups, 1, 'the lookup started before the spec was parsed');
    await assert.rejects(
      mount(request({ objects: '- {objectName: db, objectType: secretsmanager}' })),
      NotFoundError,
    );
  });
});
