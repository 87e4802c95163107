import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { InvalidInputError, TooLargeError } from './errors.ts';
import { createExpressionEvaluator } from './expressions.ts';
import { extractJmesPaths, maxValueBytes, wholeValue } from './extract.ts';

const W = 'SecretProviderClass default/aws-secrets: objects[0] (db)';
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const entry = (path: string, objectAlias = 'out') => ({ path, objectAlias });

const credentials = utf8(
  JSON.stringify({
    username: 'john.doe',
    password: 's3cr3t-Pa55',
    port: 5432,
    tls: true,
    hosts: ['a', 'b'],
    db: { name: 'app' },
  }),
);

describe('extractJmesPaths (plain field paths, the default)', () => {
  test('selects strings, in entry order, from one parse', async () => {
    const out = await extractJmesPaths(
      credentials,
      [entry('username'), entry('db.name'), entry('hosts[1]'), entry('hosts[-1]'), entry('"password"')],
      W,
    );
    assert.deepEqual(out.map(text), ['john.doe', 'app', 'b', 'b', 's3cr3t-Pa55']);
  });

  test('no entries: nothing is parsed (a non-JSON value is fine)', async () => {
    assert.deepEqual(await extractJmesPaths(utf8('not json'), [], W), []);
  });

  test('a JSON SecretBinary works like a SecretString', async () => {
    const out = await extractJmesPaths(Uint8Array.from(credentials), [entry('username')], W);
    assert.equal(text(out[0] ?? new Uint8Array()), 'john.doe');
  });

  const refused: [string, Uint8Array, string, string][] = [
    [
      'non-JSON text',
      utf8('hunter2 is the password'),
      'username',
      `${W}: jmesPath needs a JSON value, but the value is not valid JSON`,
    ],
    [
      'binary, not UTF-8',
      Uint8Array.from([0xff, 0xfe, 0x00, 0x41]),
      'a',
      `${W}: jmesPath needs a JSON value, but the value is not UTF-8 text`,
    ],
    [
      'missing key',
      credentials,
      'user',
      `${W}: jmesPath[0] (user) selects nothing; expected a path to a string in the JSON value`,
    ],
    [
      'explicit null',
      utf8('{"a":null}'),
      'a',
      `${W}: jmesPath[0] (a) selects nothing; expected a path to a string in the JSON value`,
    ],
    [
      'number (as ASCP: refused)',
      credentials,
      'port',
      `${W}: jmesPath[0] (port) selects a number; expected a string (store it in the secret as a JSON string, or, where expressions are enabled, write to_string(...))`,
    ],
    [
      'boolean',
      credentials,
      'tls',
      `${W}: jmesPath[0] (tls) selects a boolean; expected a string (store it in the secret as a JSON string, or, where expressions are enabled, write to_string(...))`,
    ],
    ['object', credentials, 'db', `${W}: jmesPath[0] (db) selects an object; expected a string`],
    ['list', credentials, 'hosts', `${W}: jmesPath[0] (hosts) selects a list; expected a string`],
    [
      "an expression, without the administrator's opt-in",
      credentials,
      "starts_with(password, 's')",
      `${W}: jmesPath[0].path is not a plain field path (at character 12); expected names, dots, "quoted names" and [n] indexes, like db.password, "db-user" or hosts[0]. Full JMESPath expressions run only where the cluster administrator enabled them (--allow-jmespath-expressions)`,
    ],
  ];
  for (const [name, value, path, expected] of refused) {
    test(`refuses ${name}`, async () => {
      await assert.rejects(
        extractJmesPaths(value, [entry(path)], W),
        (error: unknown) => error instanceof InvalidInputError && error.message === expected,
      );
    });
  }

  test('names the failing entry by position', async () => {
    await assert.rejects(
      extractJmesPaths(credentials, [entry('username'), entry('nope')], W),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'jmesPath[1].path',
    );
  });

  test('no error message or cause carries any part of the value', async () => {
    const paths = ['missing', 'secret', 'secret.inner[0]', 'nested', 'nested[0].x', 'n'];
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 6, maxLength: 40 }).map((s) => `Q9${s}`),
        fc.boolean(),
        async (secret, asJson) => {
          const value = asJson
            ? utf8(JSON.stringify({ secret: { inner: secret }, nested: [secret], n: secret.length }))
            : utf8(`${secret}{`);
          for (const path of paths) {
            try {
              await extractJmesPaths(value, [entry(path)], W);
            } catch (error) {
              assert.ok(error instanceof InvalidInputError);
              assert.equal(error.cause, undefined);
              assert.ok(!error.message.includes(secret), `${path}: message contains the value`);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("extractJmesPaths with expressions (the administrator's opt-in)", () => {
  const evaluator = createExpressionEvaluator({ workers: 1 });
  after(() => evaluator.close());

  test('field paths and expressions together, in entry order', async () => {
    const out = await extractJmesPaths(
      credentials,
      [entry('username'), entry('to_string(port)'), entry("join(',', hosts)"), entry('db.name')],
      W,
      evaluator,
    );
    assert.deepEqual(out.map(text), ['john.doe', '5432', 'a,b', 'app']);
  });

  test('a structural failure of a field path is still named, before any expression runs', async () => {
    await assert.rejects(
      extractJmesPaths(credentials, [entry('abs(port)'), entry('nope')], W, evaluator),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'jmesPath[1].path',
    );
  });

  test('an expression failing says so without naming the entry or the reason: same text for every guess', async () => {
    const messages = new Set<string>();
    for (const guess of ['a', 's', 's3', 'x']) {
      // The finding's probe: entry 1 gives a number (no string) exactly when the guess is right.
      const probe = `starts_with(password, '${guess}') && \`1\` || 'no'`;
      await assert.rejects(
        extractJmesPaths(credentials, [entry("'yes'"), entry(probe), entry('`2`')], W, evaluator),
        (error: unknown) => {
          assert.ok(error instanceof InvalidInputError);
          assert.equal(error.field, 'jmesPath');
          messages.add(error.message);
          return true;
        },
      );
    }
    assert.deepEqual(
      [...messages],
      [
        `${W}: jmesPath: an expression did not give a string within its budget (100 ms of CPU, 32 MiB); with expressions, which entry failed and why is not reported, since that could depend on the value`,
      ],
    );
  });
});

describe('wholeValue', () => {
  test('returns the bytes as stored, up to 64 KiB', () => {
    const bytes = new Uint8Array(maxValueBytes).fill(7);
    assert.equal(wholeValue(bytes, W), bytes);
  });

  test('refuses one byte more', () => {
    assert.throws(
      () => wholeValue(new Uint8Array(maxValueBytes + 1), W),
      (error: unknown) =>
        error instanceof TooLargeError &&
        error.message === `${W}: value is 65537 bytes; expected at most 65536 (the Secrets Manager limit)`,
    );
  });

  test('jmesPath on an oversized value is refused as too large, not parsed', async () => {
    const big = utf8(JSON.stringify({ a: 'x'.repeat(maxValueBytes) }));
    await assert.rejects(extractJmesPaths(big, [entry('a')], W), TooLargeError);
  });
});
