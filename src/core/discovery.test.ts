import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { discoveryAccepts, expandDiscoveries, globMatches, maxDiscovered } from './discovery.ts';
import { InvalidInputError, TooLargeError, TransientError } from './errors.ts';
import { planRequests, resolvePayloads } from './payloads.ts';
import type {
  DiscoveredObject,
  DiscoveryQuery,
  ReadResult,
  SecretReader,
  SecretRequest,
  SecretVersions,
} from './source.ts';
import { parseMountSpec } from './spec.ts';
import type { MountSpec } from './spec-types.ts';

const S = 'SecretSync team-a/app';
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** Secrets by name (one region) with tags; listing and reading as a SecretReader would. */
class ListingReader implements SecretReader {
  readonly secrets = new Map<string, { value: string; tags: Map<string, string> }>();
  readonly queries: DiscoveryQuery[] = [];
  listFailure: Error | undefined;

  put(name: string, value: string, tags: Record<string, string> = {}): this {
    this.secrets.set(name, { value, tags: new Map(Object.entries(tags)) });
    return this;
  }

  async read(requests: readonly SecretRequest[]): Promise<ReadResult[]> {
    return requests.map((request): ReadResult => {
      const secret = this.secrets.get(request.id);
      if (!secret) return { ok: false, error: new TransientError(`${request.id} missing`) };
      return {
        ok: true,
        value: {
          request,
          arn: `arn:aws:secretsmanager:${request.region}:1:secret:${request.id}`,
          name: request.id,
          versionId: 'v1',
          bytes: new TextEncoder().encode(secret.value),
          binary: false,
        },
      };
    });
  }

  async describe(request: SecretRequest): Promise<SecretVersions> {
    return { arn: request.id, name: request.id, versionsToStages: new Map() };
  }

  async discover(query: DiscoveryQuery): Promise<DiscoveredObject[]> {
    this.queries.push(query);
    if (this.listFailure) throw this.listFailure;
    const found: DiscoveredObject[] = [];
    // AWS's name filter is a case-insensitive prefix match: the query's accept must decide.
    for (const [name, { tags }] of this.secrets) {
      const candidate = { name, arn: `arn:${name}`, tags };
      if (query.namePrefix && !name.toLowerCase().startsWith(query.namePrefix.toLowerCase())) continue;
      if (query.accept(candidate)) found.push(candidate);
      if (found.length > query.limit) break;
    }
    return found;
  }
}

const spec = (objects: unknown[], top: Record<string, string> = {}): MountSpec =>
  parseMountSpec({ objects, region: 'eu-west-1', ...top }, S);

describe('globMatches', () => {
  for (const [glob, name, expected] of [
    ['app/*', 'app/db', true],
    ['app/*', 'app/a/b', true],
    ['app/?b', 'app/db', true],
    ['app/?b', 'app/dbb', false],
    ['*/db', 'x/y/db', true],
    ['*db*', 'nothing', false],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXbY', false],
    ['exact', 'exact', true],
    ['exact', 'Exact', false],
  ] as const) {
    test(`${glob} ~ ${name} → ${expected}`, () => assert.equal(globMatches(glob, name), expected));
  }

  test('a glob that would make a backtracking matcher explode answers (work bounded by length × length)', () => {
    const glob = `${'*a'.repeat(200)}b`;
    const name = 'a'.repeat(512);
    assert.equal(globMatches(glob, name), false);
  });
});

describe('discoveryAccepts', () => {
  const [object] = spec([
    { objectType: 'secretsmanager', discover: { namePrefix: 'app/', tags: { team: 'a' } } },
  ]).objects;
  const discovery = object?.discover;
  assert.ok(discovery);
  test('prefix is case-sensitive here although AWS matches it case-insensitively', () => {
    assert.equal(
      discoveryAccepts(discovery, { name: 'APP/db', arn: 'x', tags: new Map([['team', 'a']]) }),
      false,
    );
    assert.equal(
      discoveryAccepts(discovery, { name: 'app/db', arn: 'x', tags: new Map([['team', 'a']]) }),
      true,
    );
  });
  test('a tag must have exactly the value (AWS matches tag keys and values apart)', () => {
    const tags = new Map([
      ['team', 'b'],
      ['other', 'a'],
    ]);
    assert.equal(discoveryAccepts(discovery, { name: 'app/db', arn: 'x', tags }), false);
  });
});

describe('discoveryAccepts: SSM paths', () => {
  const discoveryOf = (recursive: boolean) => {
    const found = spec([{ objectType: 'ssmparameter', discover: { path: '/app/prod', recursive } }])
      .objects[0]?.discover;
    assert.ok(found);
    return found;
  };
  const at = (name: string) => ({ name, arn: name, tags: new Map<string, string>() });
  test('a path is a hierarchy, not a string prefix', () => {
    assert.equal(discoveryAccepts(discoveryOf(true), at('/app/prodx/db')), false);
    assert.equal(discoveryAccepts(discoveryOf(true), at('/app/prod/db')), true);
  });
  test('without recursive, only direct children', () => {
    assert.equal(discoveryAccepts(discoveryOf(false), at('/app/prod/deep/db')), false);
    assert.equal(discoveryAccepts(discoveryOf(true), at('/app/prod/deep/db')), true);
  });
});

describe('parse: discover', () => {
  test('a discover entry needs no objectName and plans no request', () => {
    const parsed = spec([{ objectType: 'secretsmanager', discover: { namePrefix: 'app/' } }]);
    assert.equal(parsed.objects[0]?.discover?.limit, maxDiscovered);
    assert.deepEqual(planRequests(parsed, undefined), []);
  });

  const refused: [string, unknown, RegExp][] = [
    [
      'objectName beside it',
      { objectName: 'x', objectType: 'secretsmanager', discover: { namePrefix: 'a' } },
      /objectName cannot be set beside discover/,
    ],
    [
      'jmesPath beside it',
      {
        objectType: 'secretsmanager',
        jmesPath: [{ path: 'a', objectAlias: 'a' }],
        discover: { namePrefix: 'a' },
      },
      /jmesPath cannot be set beside discover/,
    ],
    ['no narrowing', { objectType: 'secretsmanager', discover: {} }, /needs namePrefix or tags/],
    [
      'limit above the bound',
      { objectType: 'secretsmanager', discover: { namePrefix: 'a', limit: 101 } },
      /discover.limit must be at most 100/,
    ],
    [
      'unknown field',
      { objectType: 'secretsmanager', discover: { namePrefx: 'a' } },
      /unknown field\(s\) namePrefx/,
    ],
    [
      'regular expression characters',
      { objectType: 'secretsmanager', discover: { namePrefix: 'a', nameGlob: '(a+)+$' } },
      /nameGlob must be/,
    ],
    [
      'ssm without a path',
      { objectType: 'ssmparameter', discover: { namePrefix: '/a' } },
      /discover.path is required/,
    ],
    [
      'secretsmanager with recursive',
      { objectType: 'secretsmanager', discover: { namePrefix: 'a', recursive: true } },
      /discover.recursive is for ssmparameter/,
    ],
    ['no objectType', { discover: { namePrefix: 'a' } }, /objectType is required beside discover/],
  ];
  for (const [what, object, message] of refused) {
    test(`refused: ${what}`, () => {
      assert.throws(
        () => spec([object]),
        (error: unknown) => error instanceof InvalidInputError && message.test(error.message),
      );
    });
  }

  test('at most 10 discover entries per spec', () => {
    const entry = (p: number) => ({ objectType: 'secretsmanager', discover: { namePrefix: `p${p}/` } });
    assert.equal(spec(Array.from({ length: 10 }, (_, p) => entry(p))).objects.length, 10);
    assert.throws(
      () => spec(Array.from({ length: 11 }, (_, p) => entry(p))),
      /objects has 11 discover entries; expected at most 10/,
    );
  });

  test('refused with failoverRegion', () => {
    assert.throws(
      () =>
        spec([{ objectType: 'secretsmanager', discover: { namePrefix: 'a' } }], {
          failoverRegion: 'eu-west-2',
        }),
      /discover cannot be used with failoverRegion/,
    );
  });
});

describe('resolvePayloads with discover', () => {
  test('each match is an object named by its name (pathTranslation), in name order; others ignored', async () => {
    const reader = new ListingReader()
      .put('app/zeta', 'z')
      .put('app/alpha', 'a')
      .put('APP/upper', 'u')
      .put('other/x', 'x');
    const payloads = await resolvePayloads(
      spec([{ objectType: 'secretsmanager', discover: { namePrefix: 'app/' } }]),
      reader,
      { subject: S },
    );
    assert.deepEqual(
      payloads.map((payload) => [payload.name, text(payload.bytes)]),
      [
        ['app_alpha', 'a'],
        ['app_zeta', 'z'],
      ],
    );
    assert.equal(reader.queries[0]?.region, 'eu-west-1');
    assert.equal(reader.queries[0]?.namePrefix, 'app/');
  });

  test('stripPrefix, nameGlob and tags; extractKeys per match', async () => {
    const reader = new ListingReader()
      .put('app/db', JSON.stringify({ user: 'u1' }), { team: 'a' })
      .put('app/cache', JSON.stringify({ host: 'h1' }), { team: 'a' })
      .put('app/db-old', JSON.stringify({ user: 'old' }), { team: 'b' });
    const stripped = await resolvePayloads(
      spec([
        {
          objectType: 'secretsmanager',
          discover: { namePrefix: 'app/', nameGlob: 'app/d*', stripPrefix: true, tags: { team: 'a' } },
        },
      ]),
      reader,
    );
    assert.deepEqual(
      stripped.map((payload) => payload.name),
      ['db'],
    );
    const keys = await resolvePayloads(
      spec([
        {
          objectType: 'secretsmanager',
          extractKeys: true,
          discover: { namePrefix: 'app/', tags: { team: 'a' } },
        },
      ]),
      reader,
    );
    assert.deepEqual(
      keys.map((payload) => [payload.name, text(payload.bytes)]),
      [
        ['host', 'h1'],
        ['user', 'u1'],
      ],
    );
  });

  test('a found name meeting a listed object fails naming both sources', async () => {
    const reader = new ListingReader().put('app/db', 'a').put('db', 'b');
    await assert.rejects(
      resolvePayloads(
        spec([
          { objectName: 'db', objectType: 'secretsmanager' },
          { objectType: 'secretsmanager', discover: { namePrefix: 'app/', stripPrefix: true } },
        ]),
        reader,
        { subject: S },
      ),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        /objects\[0\] \(db\)/.test(error.message) &&
        /objects\[1\] \(discover namePrefix "app\/"\): found app\/db/.test(error.message),
    );
  });

  test('more matches than the limit is refused, naming the bound; nothing is returned', async () => {
    const reader = new ListingReader();
    for (let i = 0; i < 4; i += 1) reader.put(`app/s${i}`, 'v');
    await assert.rejects(
      resolvePayloads(
        spec([{ objectType: 'secretsmanager', discover: { namePrefix: 'app/', limit: 3 } }]),
        reader,
        { subject: S },
      ),
      (error: unknown) =>
        error instanceof TooLargeError &&
        error.message.includes('matched more than 3 objects') &&
        error.message.includes('at most 100'),
    );
  });

  test('a failed listing throws (the caller keeps what it had) naming the entry, never an empty set', async () => {
    const reader = new ListingReader().put('app/db', 'v');
    reader.listFailure = new TransientError('ListSecrets in eu-west-1: service unavailable');
    await assert.rejects(
      resolvePayloads(spec([{ objectType: 'secretsmanager', discover: { namePrefix: 'app/' } }]), reader, {
        subject: S,
      }),
      (error: unknown) =>
        error instanceof TransientError &&
        error.message ===
          `${S}: objects[0] (discover namePrefix "app/"): ListSecrets in eu-west-1: service unavailable`,
    );
  });

  test('a reader that cannot list refuses by field', async () => {
    const reader: SecretReader = {
      read: async () => [],
      describe: async () => Promise.reject(new Error('unused')),
    };
    await assert.rejects(
      expandDiscoveries(
        spec([{ objectType: 'secretsmanager', discover: { namePrefix: 'a' } }]),
        reader,
        () => 'eu-west-1',
        S,
      ),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'discover',
    );
  });
});
