import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  AccessDeniedError,
  InvalidInputError,
  NotFoundError,
  type SmkError,
  ThrottledError,
  TooLargeError,
  TransientError,
} from './errors.ts';
import { createExpressionEvaluator } from './expressions.ts';
import { planRequests, resolvePayloads } from './payloads.ts';
import type { ReadResult, SecretReader, SecretRequest, SecretValue, SecretVersions } from './source.ts';
import { parseMountSpec } from './spec.ts';
import type { MountSpec } from './spec-types.ts';

const S = 'SecretProviderClass default/aws-secrets';
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

interface StoredVersion {
  readonly versionId: string;
  readonly stages: readonly string[];
  readonly bytes: Uint8Array;
  readonly binary: boolean;
}

/** A test double for the SecretReader port: secrets by region and id, failures injected per secret. */
class MemoryReader implements SecretReader {
  readonly calls: SecretRequest[][] = [];
  readonly #secrets = new Map<string, StoredVersion[]>();
  readonly #failures = new Map<string, SmkError>();

  put(
    region: string,
    id: string,
    value: string | Uint8Array,
    versionId = 'v1',
    stages = ['AWSCURRENT'],
  ): this {
    const binary = typeof value !== 'string';
    const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    const versions = this.#secrets.get(`${region}|${id}`) ?? [];
    versions.push({ versionId, stages, bytes, binary });
    this.#secrets.set(`${region}|${id}`, versions);
    return this;
  }

  fail(region: string, id: string, error: SmkError): this {
    this.#failures.set(`${region}|${id}`, error);
    return this;
  }

  async read(requests: readonly SecretRequest[]): Promise<ReadResult[]> {
    this.calls.push([...requests]);
    return requests.map((request): ReadResult => {
      const key = `${request.region}|${request.id}`;
      const failure = this.#failures.get(key);
      if (failure) return { ok: false, error: failure };
      const version = this.#secrets
        .get(key)
        ?.find((v) =>
          request.versionId !== undefined
            ? v.versionId === request.versionId
            : v.stages.includes(request.versionStage ?? 'AWSCURRENT'),
        );
      if (!version)
        return { ok: false, error: new NotFoundError(`secret ${request.id} not found in ${request.region}`) };
      const value: SecretValue = {
        request,
        arn: request.id.startsWith('arn:')
          ? request.id
          : `arn:aws:secretsmanager:${request.region}:1:secret:${request.id}`,
        name: request.id,
        versionId: version.versionId,
        bytes: version.bytes,
        binary: version.binary,
      };
      return { ok: true, value };
    });
  }

  readonly described: SecretRequest[] = [];

  /** Records the check; a secret failing reads fails its describe too. */
  async describe(request: SecretRequest): Promise<SecretVersions> {
    this.described.push(request);
    const failure = this.#failures.get(`${request.region}|${request.id}`);
    if (failure) throw failure;
    return { arn: request.id, name: request.id, versionsToStages: new Map() };
  }
}

const spec = (
  objects: string | unknown[],
  top: Partial<Record<'region' | 'failoverRegion' | 'pathTranslation', string>> = {},
): MountSpec => parseMountSpec({ objects, ...top }, S);

const seedArn = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:MySecret-00AACC';
const seedArn2 = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:MySecret2-00AABB';

describe('resolvePayloads', () => {
  test('the ASCP README example: whole value + jmesPath files, one read for all', async () => {
    const reader = new MemoryReader()
      .put('eu-west-1', seedArn, JSON.stringify({ username: 'john.doe', password: '123456' }), 'ver-1')
      .put('eu-west-1', seedArn2, 'whole value, any format', 'ver-2');
    const payloads = await resolvePayloads(
      spec([
        {
          objectName: seedArn,
          jmesPath: [
            { path: 'username', objectAlias: 'dbusername' },
            { path: 'password', objectAlias: 'dbpassword', filePermission: '0400' },
          ],
        },
        { objectName: seedArn2, objectAlias: 'foobar', filePermission: '0640' },
      ]),
      reader,
      { subject: S },
    );
    assert.deepEqual(
      payloads.map((p) => [
        p.name,
        text(p.bytes),
        p.mode.toString(8),
        p.objectVersion.id,
        p.objectVersion.version,
      ]),
      [
        [
          'arn:aws:secretsmanager:eu-west-1:111122223333:secret:MySecret-00AACC',
          '{"username":"john.doe","password":"123456"}',
          '644',
          'arn:aws:secretsmanager:eu-west-1:111122223333:secret:MySecret-00AACC',
          'ver-1',
        ],
        ['dbusername', 'john.doe', '644', 'dbusername', 'ver-1'],
        ['dbpassword', '123456', '400', 'dbpassword', 'ver-1'],
        ['foobar', 'whole value, any format', '640', 'foobar', 'ver-2'],
      ],
    );
    assert.deepEqual(reader.calls, [
      [
        { objectType: 'secretsmanager', id: seedArn, region: 'eu-west-1', versionStage: 'AWSCURRENT' },
        { objectType: 'secretsmanager', id: seedArn2, region: 'eu-west-1', versionStage: 'AWSCURRENT' },
      ],
    ]);
  });

  test('SecretBinary bytes are written raw', async () => {
    const raw = Uint8Array.from([0, 255, 1, 128]);
    const reader = new MemoryReader().put('us-east-1', 'bin', raw);
    const [payload] = await resolvePayloads(
      spec([{ objectName: 'bin', objectType: 'secretsmanager' }]),
      reader,
      {
        defaultRegion: 'us-east-1',
      },
    );
    assert.deepEqual(payload?.bytes, raw);
  });

  test('modes: entry filePermission, then object filePermission, then defaultFileMode, then 0644', async () => {
    const reader = new MemoryReader().put('us-east-1', 'a', '{"x":"1","y":"2"}').put('us-east-1', 'b', 'b');
    const objects = [
      {
        objectName: 'a',
        objectType: 'secretsmanager',
        filePermission: '0600',
        jmesPath: [
          { path: 'x', objectAlias: 'x', filePermission: '0400' },
          { path: 'y', objectAlias: 'y' },
        ],
      },
      { objectName: 'b', objectType: 'secretsmanager' },
    ];
    const withDefault = await resolvePayloads(spec(objects, { region: 'us-east-1' }), reader, {
      defaultFileMode: 0o440,
    });
    assert.deepEqual(
      withDefault.map((p) => [p.name, p.mode]),
      [
        ['a', 0o600],
        ['x', 0o400],
        ['y', 0o600],
        ['b', 0o440],
      ],
    );
    const plain = await resolvePayloads(spec(objects, { region: 'us-east-1' }), reader);
    assert.equal(plain.find((p) => p.name === 'b')?.mode, 0o644);
  });

  test('identical requests are read once and fan out', async () => {
    const reader = new MemoryReader().put('us-east-1', 'db', '{"u":"x"}');
    const payloads = await resolvePayloads(
      spec(
        [
          { objectName: 'db', objectType: 'secretsmanager', objectAlias: 'one' },
          {
            objectName: 'db',
            objectType: 'secretsmanager',
            objectAlias: 'two',
            jmesPath: [{ path: 'u', objectAlias: 'u' }],
          },
        ],
        { region: 'us-east-1' },
      ),
      reader,
    );
    assert.deepEqual(
      payloads.map((p) => p.name),
      ['one', 'two', 'u'],
    );
    assert.equal(reader.calls.length, 1);
    assert.equal(reader.calls[0]?.length, 1);
  });

  test('failover region: both regions are read; a 5xx in the primary is covered by the failover value (ASCP README)', async () => {
    const reader = new MemoryReader()
      .put('us-east-1', 'ok', 'primary value')
      .put('us-east-2', 'ok', 'failover value (read, not used)')
      .fail('us-east-1', 'down', new TransientError('Secrets Manager in us-east-1 unavailable'))
      .put('us-east-2', 'down-replica', 'from the replica', 'r1');
    const payloads = await resolvePayloads(
      spec(
        [
          { objectName: 'ok', objectType: 'secretsmanager' },
          {
            objectName: 'down',
            objectType: 'secretsmanager',
            objectAlias: 'down',
            failoverObject: { objectName: 'down-replica' },
          },
        ],
        { region: 'us-east-1', failoverRegion: 'us-east-2' },
      ),
      reader,
    );
    assert.deepEqual(
      payloads.map((p) => [p.name, text(p.bytes), p.objectVersion.version]),
      [
        ['ok', 'primary value', 'v1'],
        ['down', 'from the replica', 'r1'],
      ],
    );
    assert.deepEqual(reader.calls, [
      [
        { objectType: 'secretsmanager', id: 'ok', region: 'us-east-1', versionStage: 'AWSCURRENT' },
        { objectType: 'secretsmanager', id: 'ok', region: 'us-east-2', versionStage: 'AWSCURRENT' },
        { objectType: 'secretsmanager', id: 'down', region: 'us-east-1', versionStage: 'AWSCURRENT' },
        { objectType: 'secretsmanager', id: 'down-replica', region: 'us-east-2', versionStage: 'AWSCURRENT' },
      ],
    ]);
  });

  for (const error of [
    new NotFoundError('secret db not found'),
    new AccessDeniedError('access denied'),
    new ThrottledError('rate exceeded'),
    new InvalidInputError('bad id'),
    new TooLargeError('too large'),
  ]) {
    for (const [failing, role, other] of [
      ['us-east-1', 'primary', 'us-east-2'],
      ['us-east-2', 'failover', 'us-east-1'],
    ] as const) {
      test(`failover region: a client error (${error.kind}) in the ${role} region fails the mount, though the other answers (ASCP README)`, async () => {
        const reader = new MemoryReader().fail(failing, 'db', error).put(other, 'db', 'the other copy');
        await assert.rejects(
          resolvePayloads(
            spec([{ objectName: 'db', objectType: 'secretsmanager' }], {
              region: 'us-east-1',
              failoverRegion: 'us-east-2',
            }),
            reader,
            { subject: S },
          ),
          (thrown: unknown) =>
            thrown instanceof error.constructor &&
            (thrown as Error).message === `${S}: objects[0] (db): ${failing} (${role}): ${error.message}`,
        );
      });
    }
  }

  test("recheckStages (the driver's rotation re-mount): one describe per moving Secrets Manager pointer before the read, none otherwise", async () => {
    const objects = [
      { objectName: 'current', objectType: 'secretsmanager' },
      { objectName: 'labelled', objectType: 'secretsmanager', objectVersionLabel: 'blue' },
      {
        objectName: 'pinned',
        objectType: 'secretsmanager',
        objectVersion: 'EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE',
      },
      { objectName: 'param', objectType: 'ssmparameter' },
      { objectName: 'gone', objectType: 'secretsmanager' },
    ];
    const reader = new MemoryReader()
      .put('us-east-1', 'current', 'c')
      .put('us-east-1', 'labelled', 'l', 'v2', ['blue'])
      .put('us-east-1', 'pinned', 'p', 'EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE')
      .put('us-east-1', 'param', 'x')
      .fail('us-east-1', 'gone', new NotFoundError('secret gone not found'));
    await assert.rejects(
      resolvePayloads(spec(objects, { region: 'us-east-1' }), reader, { recheckStages: true }),
      NotFoundError,
    );
    assert.deepEqual(
      reader.described.map((r) => r.id),
      ['current', 'labelled', 'gone'],
    );
    assert.equal(reader.calls.length, 1);

    const first = new MemoryReader().put('us-east-1', 'current', 'c');
    await resolvePayloads(spec([objects[0]], { region: 'us-east-1' }), first);
    assert.deepEqual(first.described, []);
  });

  test('an extraction error is never hidden behind a failover', async () => {
    const reader = new MemoryReader()
      .put('us-east-1', 'db', '{"user":"u"}')
      .put('us-east-2', 'db', '{"password":"p"}');
    await assert.rejects(
      resolvePayloads(
        spec(
          [
            {
              objectName: 'db',
              objectType: 'secretsmanager',
              jmesPath: [{ path: 'password', objectAlias: 'pw' }],
            },
          ],
          {
            region: 'us-east-1',
            failoverRegion: 'us-east-2',
          },
        ),
        reader,
        { subject: S },
      ),
      {
        name: 'InvalidInputError',
        message: `${S}: objects[0] (db): jmesPath[0] (password) selects nothing; expected a path to a string in the JSON value`,
      },
    );
    assert.equal(reader.calls.length, 1);
  });

  test('both regions failing with a 5xx: the primary class is reported, naming both regions', async () => {
    const reader = new MemoryReader()
      .fail('us-east-1', 'db', new TransientError('timed out'))
      .fail('us-east-2', 'db', new TransientError('unavailable'));
    await assert.rejects(
      resolvePayloads(
        spec([{ objectName: 'db', objectType: 'secretsmanager' }], {
          region: 'us-east-1',
          failoverRegion: 'us-east-2',
        }),
        reader,
        { subject: S },
      ),
      (thrown: unknown) =>
        thrown instanceof TransientError &&
        thrown.message ===
          `${S}: objects[0] (db): both regions failed: us-east-1 (primary): timed out; us-east-2 (failover): unavailable`,
    );
  });

  test('a 5xx in the primary and a 4XX in the failover region: the client error decides, both answers named', async () => {
    const reader = new MemoryReader()
      .fail('us-east-1', 'db', new TransientError('unavailable'))
      .fail('us-east-2', 'db', new NotFoundError('secret db not found'));
    await assert.rejects(
      resolvePayloads(
        spec([{ objectName: 'db', objectType: 'secretsmanager' }], {
          region: 'us-east-1',
          failoverRegion: 'us-east-2',
        }),
        reader,
        { subject: S },
      ),
      (thrown: unknown) =>
        thrown instanceof NotFoundError &&
        thrown.message ===
          `${S}: objects[0] (db): both regions failed: us-east-1 (primary): unavailable; us-east-2 (failover): secret db not found`,
    );
  });

  test('both regions failing permanently: the primary error class', async () => {
    const reader = new MemoryReader()
      .fail('us-east-1', 'db', new AccessDeniedError('access denied'))
      .fail('us-east-2', 'db', new NotFoundError('not found'));
    await assert.rejects(
      resolvePayloads(
        spec([{ objectName: 'db', objectType: 'secretsmanager' }], {
          region: 'us-east-1',
          failoverRegion: 'us-east-2',
        }),
        reader,
      ),
      AccessDeniedError,
    );
  });

  test('the first failing object is thrown with its class; the others are counted; nothing is returned', async () => {
    const reader = new MemoryReader()
      .put('us-east-1', 'a', 'a')
      .fail('us-east-1', 'b', new AccessDeniedError('not authorised to read b'))
      .fail('us-east-1', 'c', new NotFoundError('secret c not found'));
    const objects = ['a', 'b', 'c'].map((objectName) => ({ objectName, objectType: 'secretsmanager' }));
    await assert.rejects(
      resolvePayloads(spec(objects, { region: 'us-east-1' }), reader, { subject: S }),
      (thrown: unknown) => {
        assert.ok(thrown instanceof AccessDeniedError);
        assert.equal(
          thrown.message,
          `${S}: objects[1] (b): not authorised to read b (and 1 more object failed)`,
        );
        assert.equal(thrown.subject, `${S}: objects[1] (b)`);
        assert.ok(thrown.cause instanceof AccessDeniedError);
        return true;
      },
    );
  });

  test('a value over 64 KiB fails the whole set', async () => {
    const reader = new MemoryReader()
      .put('us-east-1', 'big', new Uint8Array(65_537))
      .put('us-east-1', 'small', 's');
    await assert.rejects(
      resolvePayloads(
        spec(
          ['small', 'big'].map((objectName) => ({ objectName, objectType: 'secretsmanager' })),
          { region: 'us-east-1' },
        ),
        reader,
        {
          subject: S,
        },
      ),
      {
        name: 'TooLargeError',
        message: `${S}: objects[1] (big): value is 65537 bytes; expected at most 65536 (the Secrets Manager limit)`,
      },
    );
  });

  test('a reader that answers fewer results than asked is an error, not a partial set', async () => {
    const reader: SecretReader = {
      read: async () => [],
      describe: async () => Promise.reject(new Error('unused')),
    };
    await assert.rejects(
      resolvePayloads(
        spec([{ objectName: 'a', objectType: 'secretsmanager' }], { region: 'us-east-1' }),
        reader,
      ),
      TransientError,
    );
  });
});

describe("resolvePayloads with expressions (the administrator's opt-in)", () => {
  const evaluator = createExpressionEvaluator({ workers: 1 });
  after(() => evaluator.close());
  const value = JSON.stringify({ user: 'u1', password: 'Hx9-payload-secret', port: 5432 });
  const reader = new MemoryReader().put('us-east-1', 'a', value).put('us-east-1', 'b', value);
  const expressionSpec = (objects: unknown[]): MountSpec =>
    parseMountSpec({ objects, region: 'us-east-1' }, S, { allowExpressions: true });

  test('expression results land in their files, in spec order', async () => {
    const payloads = await resolvePayloads(
      expressionSpec([
        {
          objectName: 'a',
          objectType: 'secretsmanager',
          jmesPath: [
            { path: 'user', objectAlias: 'user' },
            { path: 'to_string(port)', objectAlias: 'port' },
          ],
        },
        {
          objectName: 'b',
          objectType: 'secretsmanager',
          jmesPath: [{ path: "join(':', [user, to_string(port)])", objectAlias: 'dsn' }],
        },
      ]),
      reader,
      { subject: S, expressions: evaluator },
    );
    assert.deepEqual(
      payloads.map((p) => [p.name, text(p.bytes)]),
      [
        ['a', value],
        ['user', 'u1'],
        ['port', '5432'],
        ['b', value],
        ['dsn', 'u1:5432'],
      ],
    );
  });

  test('a spec with expressions is refused without an evaluator (a spec not parsed by this role)', async () => {
    await assert.rejects(
      resolvePayloads(
        expressionSpec([
          {
            objectName: 'a',
            objectType: 'secretsmanager',
            jmesPath: [{ path: 'to_string(port)', objectAlias: 'p' }],
          },
        ]),
        reader,
        { subject: S },
      ),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'jmesPath[0].path',
    );
  });

  test('a structural failure is reported (naming its object) whatever the expressions give', async () => {
    for (const probe of [
      "starts_with(password, 'H') && `1` || 'no'",
      "starts_with(password, 'Z') && `1` || 'no'",
    ]) {
      await assert.rejects(
        resolvePayloads(
          expressionSpec([
            { objectName: 'a', objectType: 'secretsmanager', jmesPath: [{ path: probe, objectAlias: 'p' }] },
            { objectName: 'b', objectType: 'secretsmanager', jmesPath: [{ path: 'nope', objectAlias: 'n' }] },
          ]),
          reader,
          { subject: S, expressions: evaluator },
        ),
        (error: unknown) =>
          error instanceof InvalidInputError &&
          error.message ===
            `${S}: objects[1] (b): jmesPath[0] (nope) selects nothing; expected a path to a string in the JSON value`,
      );
    }
  });

  test('finding 1: a failing expression names neither object nor entry, whichever object and entry failed', async () => {
    const probe = (guess: string): string => `starts_with(password, '${guess}') && \`1\` || 'no'`;
    const messages = new Set<string>();
    // Each guess makes a different object's entry fail (the right one, 'H', fails in object a).
    for (const [first, second] of [
      ['H', 'Z'],
      ['Z', 'H'],
    ]) {
      await assert.rejects(
        resolvePayloads(
          expressionSpec([
            {
              objectName: 'a',
              objectType: 'secretsmanager',
              jmesPath: [{ path: probe(first as string), objectAlias: 'p' }],
            },
            {
              objectName: 'b',
              objectType: 'secretsmanager',
              jmesPath: [
                { path: 'user', objectAlias: 'u' },
                { path: probe(second as string), objectAlias: 'q' },
              ],
            },
          ]),
          reader,
          { subject: S, expressions: evaluator },
        ),
        (error: unknown) => {
          assert.ok(error instanceof InvalidInputError);
          assert.equal(error.subject, S);
          messages.add(error.message);
          return true;
        },
      );
    }
    assert.equal(messages.size, 1, [...messages].join('\n'));
    assert.doesNotMatch([...messages][0] ?? '', /objects\[|jmesPath\[/);
  });
});

describe('resolvePayloads with extractKeys (every key of a JSON value)', () => {
  const region = { region: 'eu-west-1' };
  const invalid = (pattern: RegExp) => (error: unknown) => {
    assert.ok(error instanceof InvalidInputError, String(error));
    assert.match(error.message, pattern);
    assert.doesNotMatch(error.message, /s3cr3t|hunter2/);
    return true;
  };

  test('one file per top-level key, prefixed; strings as text, the rest as JSON; no whole-value file', async () => {
    const value = {
      user: 'app',
      password: 's3cr3t',
      port: 5432,
      tls: true,
      none: null,
      opts: { a: [1, 'x'] },
    };
    const reader = new MemoryReader().put('eu-west-1', 'prod/db', JSON.stringify(value), 'v7');
    const payloads = await resolvePayloads(
      spec(
        [
          {
            objectName: 'prod/db',
            objectType: 'secretsmanager',
            extractKeys: true,
            keyPrefix: 'db_',
            filePermission: '0400',
          },
          {
            objectName: 'prod/db',
            objectType: 'secretsmanager',
            objectAlias: 'whole',
            jmesPath: [{ path: 'user', objectAlias: 'u' }],
          },
        ],
        region,
      ),
      reader,
      { subject: S },
    );
    assert.deepEqual(
      payloads.map((p) => [
        p.name,
        text(p.bytes),
        p.mode.toString(8),
        p.objectVersion.id,
        p.objectVersion.version,
      ]),
      [
        ['db_user', 'app', '400', 'prod_db', 'v7'],
        ['db_password', 's3cr3t', '400', 'prod_db', 'v7'],
        ['db_port', '5432', '400', 'prod_db', 'v7'],
        ['db_tls', 'true', '400', 'prod_db', 'v7'],
        ['db_none', 'null', '400', 'prod_db', 'v7'],
        ['db_opts', '{"a":[1,"x"]}', '400', 'prod_db', 'v7'],
        ['whole', JSON.stringify(value), '644', 'whole', 'v7'],
        ['u', 'app', '644', 'u', 'v7'],
      ],
    );
    assert.equal(reader.calls.length, 1, 'one read for both objects');
  });

  test('a key produced by two objects fails, naming both objects and the key, never a value', async () => {
    const reader = new MemoryReader()
      .put('eu-west-1', 'prod/db', JSON.stringify({ password: 's3cr3t' }))
      .put('eu-west-1', 'prod/api', JSON.stringify({ token: 'x', password: 'hunter2' }));
    await assert.rejects(
      resolvePayloads(
        spec(
          [
            { objectName: 'prod/db', objectType: 'secretsmanager', extractKeys: true },
            { objectName: 'prod/api', objectType: 'secretsmanager', extractKeys: true },
          ],
          region,
        ),
        reader,
        { subject: S },
      ),
      invalid(
        /^SecretProviderClass default\/aws-secrets: objects\[1\] \(prod\/api\): extractKeys gives file name "password", already used by objects\[0\] \(prod\/db\) extractKeys; expected unique file names$/,
      ),
    );
  });

  test('a key meeting a name of the spec itself (an alias) fails, naming both', async () => {
    const reader = new MemoryReader().put('eu-west-1', 'prod/db', JSON.stringify({ password: 's3cr3t' }));
    await assert.rejects(
      resolvePayloads(
        spec(
          [
            { objectName: 'other', objectType: 'secretsmanager', objectAlias: 'password' },
            { objectName: 'prod/db', objectType: 'secretsmanager', extractKeys: true },
          ],
          region,
        ),
        reader.put('eu-west-1', 'other', 'hunter2'),
        { subject: S },
      ),
      invalid(
        /objects\[1\] \(prod\/db\): extractKeys gives file name "password", already used by objects\[0\] \(other\) objectAlias/,
      ),
    );
  });

  test('a key that is not a valid name fails, by position, without showing the key', async () => {
    for (const key of ['a/b', '..data', 'has space', '', 'x'.repeat(254)]) {
      const reader = new MemoryReader().put(
        'eu-west-1',
        'prod/db',
        JSON.stringify({ ok: 's3cr3t', [key]: 'hunter2' }),
      );
      await assert.rejects(
        resolvePayloads(
          spec([{ objectName: 'prod/db', objectType: 'secretsmanager', extractKeys: true }], region),
          reader,
          {
            subject: S,
          },
        ),
        (error: unknown) => {
          invalid(
            /objects\[0\] \(prod\/db\): extractKeys: key 2 of 2 \(in the value's order\) does not give a valid name/,
          )(error);
          if (key !== '') assert.ok(!(error as Error).message.includes(JSON.stringify(key)), key);
          return true;
        },
      );
    }
  });

  test('a value that is not a JSON object fails, saying what it is', async () => {
    for (const [value, what] of [
      ['s3cr3t', 'is not UTF-8 JSON text'],
      ['["s3cr3t"]', 'is a list'],
      ['"s3cr3t"', 'is a string'],
      ['null', 'is null'],
    ] as const) {
      const reader = new MemoryReader().put('eu-west-1', 'prod/db', value);
      await assert.rejects(
        resolvePayloads(
          spec([{ objectName: 'prod/db', objectType: 'secretsmanager', extractKeys: true }], region),
          reader,
          {
            subject: S,
          },
        ),
        invalid(
          new RegExp(`objects\\[0\\] \\(prod/db\\): extractKeys needs a JSON object, but the value ${what}$`),
        ),
      );
    }
  });
});

describe('planRequests', () => {
  const objects = [
    { objectName: 'arn:aws:secretsmanager:eu-west-1:1:secret:arn-wins-AbCdEf' },
    { objectName: 'named', objectType: 'secretsmanager' },
    {
      objectName: 'pinned',
      objectType: 'secretsmanager',
      objectVersion: 'EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE',
    },
    { objectName: 'staged', objectType: 'secretsmanager', objectVersionLabel: 'AWSPREVIOUS' },
    { objectName: '/prod/param', objectType: 'ssmparameter' },
    { objectName: 'param-v', objectType: 'ssmparameter', objectVersion: 3 },
    { objectName: 'param-l', objectType: 'ssmparameter', objectVersionLabel: 'blue' },
  ];

  test('regions (an ARN its own, else the default; an ARN outside `region` is refused by the parser) and explicit stages', () => {
    const plans = planRequests(spec(objects), 'us-east-1');
    assert.deepEqual(
      plans.map((plan) => plan.primary),
      [
        {
          objectType: 'secretsmanager',
          id: 'arn:aws:secretsmanager:eu-west-1:1:secret:arn-wins-AbCdEf',
          region: 'eu-west-1',
          versionStage: 'AWSCURRENT',
        },
        { objectType: 'secretsmanager', id: 'named', region: 'us-east-1', versionStage: 'AWSCURRENT' },
        {
          objectType: 'secretsmanager',
          id: 'pinned',
          region: 'us-east-1',
          versionId: 'EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE',
        },
        { objectType: 'secretsmanager', id: 'staged', region: 'us-east-1', versionStage: 'AWSPREVIOUS' },
        { objectType: 'ssmparameter', id: '/prod/param', region: 'us-east-1' },
        { objectType: 'ssmparameter', id: 'param-v', region: 'us-east-1', versionId: '3' },
        { objectType: 'ssmparameter', id: 'param-l', region: 'us-east-1', versionStage: 'blue' },
      ],
    );
    assert.ok(plans.every((plan) => plan.failover === undefined));
  });

  test('the default region fills in when the spec names none', () => {
    const [plan] = planRequests(spec([{ objectName: 'named', objectType: 'secretsmanager' }]), 'ap-south-1');
    assert.equal(plan?.primary.region, 'ap-south-1');
  });

  test('no region anywhere is an InvalidInputError naming the object and field', () => {
    assert.throws(
      () => planRequests(spec([{ objectName: 'named', objectType: 'secretsmanager' }]), undefined, S),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        error.field === 'region' &&
        error.message ===
          `${S}: objects[0] (named): no region; expected region in the spec, an ARN objectName, or a default region (AWS_REGION)`,
    );
  });

  test('failover requests carry the failoverObject name and version', () => {
    const [plan] = planRequests(
      spec(
        [
          {
            objectName: 'db',
            objectType: 'secretsmanager',
            objectAlias: 'db',
            objectVersionLabel: 'AWSPREVIOUS',
            failoverObject: { objectName: 'db-replica', objectVersionLabel: 'AWSCURRENT' },
          },
        ],
        { failoverRegion: 'us-west-2' },
      ),
      'us-east-1',
    );
    assert.deepEqual(plan?.failover, {
      objectType: 'secretsmanager',
      id: 'db-replica',
      region: 'us-west-2',
      versionStage: 'AWSCURRENT',
    });
  });

  test('no failover request when the object already lives in the failover region', () => {
    const [plan] = planRequests(
      spec([{ objectName: 'db', objectType: 'secretsmanager' }], { failoverRegion: 'us-west-2' }),
      'us-west-2',
    );
    assert.equal(plan?.failover, undefined);
  });
});
