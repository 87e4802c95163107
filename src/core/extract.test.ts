import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { InvalidInputError, TooLargeError } from './errors.ts';
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

describe('extractJmesPaths', () => {
  test('selects strings, in entry order, from one parse', () => {
    const out = extractJmesPaths(
      credentials,
      [
        entry('username'),
        entry('db.name'),
        entry('hosts[1]'),
        entry('to_string(port)'),
        entry("join(',', hosts)"),
      ],
      W,
    );
    assert.deepEqual(out.map(text), ['john.doe', 'app', 'b', '5432', 'a,b']);
  });

  test('no entries: nothing is parsed (a non-JSON value is fine)', () => {
    assert.deepEqual(extractJmesPaths(utf8('not json'), [], W), []);
  });

  test('a JSON SecretBinary works like a SecretString', () => {
    const out = extractJmesPaths(Uint8Array.from(credentials), [entry('username')], W);
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
      `${W}: jmesPath[0] (port) selects a number; expected a string (write to_string(port) to store it as text)`,
    ],
    [
      'boolean',
      credentials,
      'tls',
      `${W}: jmesPath[0] (tls) selects a boolean; expected a string (write to_string(tls) to store it as text)`,
    ],
    ['object', credentials, 'db', `${W}: jmesPath[0] (db) selects an object; expected a string`],
    ['list', credentials, 'hosts', `${W}: jmesPath[0] (hosts) selects a list; expected a string`],
    [
      'function on the wrong type',
      credentials,
      'abs(password)',
      `${W}: jmesPath[0] (abs(password)) could not be evaluated on this value (a function got an argument of the wrong type)`,
    ],
  ];
  for (const [name, value, path, expected] of refused) {
    test(`refuses ${name}`, () => {
      assert.throws(
        () => extractJmesPaths(value, [entry(path)], W),
        (error: unknown) => error instanceof InvalidInputError && error.message === expected,
      );
    });
  }

  test('names the failing entry by position', () => {
    assert.throws(
      () => extractJmesPaths(credentials, [entry('username'), entry('nope')], W),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'jmesPath[1].path',
    );
  });

  test('no error message or cause carries any part of the value', () => {
    const paths = ['missing', 'secret', 'abs(secret)', 'nested', 'n'];
    fc.assert(
      fc.property(
        fc.string({ minLength: 6, maxLength: 40 }).map((s) => `Q9${s}`),
        fc.boolean(),
        (secret, asJson) => {
          const value = asJson
            ? utf8(JSON.stringify({ secret: { inner: secret }, nested: [secret], n: secret.length }))
            : utf8(`${secret}{`);
          for (const path of paths) {
            try {
              extractJmesPaths(value, [entry(path)], W);
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

  test('jmesPath on an oversized value is refused as too large, not parsed', () => {
    const big = utf8(JSON.stringify({ a: 'x'.repeat(maxValueBytes) }));
    assert.throws(() => extractJmesPaths(big, [entry('a')], W), TooLargeError);
  });
});
