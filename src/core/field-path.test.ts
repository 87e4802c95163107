import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { notPlainFieldPath, parseFieldPath, selectField } from './field-path.ts';

const accepted: [string, (string | number)[]][] = [
  ['password', ['password']],
  ['_a1', ['_a1']],
  ['db.host', ['db', 'host']],
  ['a.b.c', ['a', 'b', 'c']],
  ['"db-user"', ['db-user']],
  ['"a.b"', ['a.b']],
  ['"with \\"quote\\" and \\\\ and \\u00e9"', ['with "quote" and \\ and é']],
  ['""', ['']],
  ['hosts[0]', ['hosts', 0]],
  ['hosts[-1]', ['hosts', -1]],
  ['[2]', [2]],
  ['a[0][1].b', ['a', 0, 1, 'b']],
  ['creds."api-key"[0]', ['creds', 'api-key', 0]],
  // JMESPath lets whitespace stand between tokens; so do we.
  [' a . b [ 0 ] ', ['a', 'b', 0]],
  ['a\n.b', ['a', 'b']],
];

const refused: [string, number][] = [
  ['', 0],
  ['   ', 3],
  ['1abc', 0],
  ['a.', 2],
  ['.a', 0],
  ['a..b', 2],
  ['a.[0]', 2],
  ['a[]', 2],
  ['a[*]', 2],
  ['a[0:2]', 3],
  ['a[?x]', 2],
  ['a b', 2],
  ['a-b', 1],
  ['"unterminated', 0],
  ['"bad \\q escape"', 0],
  ['@', 0],
  ['$', 0],
  ['*', 0],
  ['a | b', 2],
  ['a || b', 2],
  ['to_string(a)', 9],
  ["starts_with(password,'a') && `1` || 'no'", 11],
  ["'literal'", 0],
  ['`1`', 0],
  ['{a: a}', 0],
  ['[a, b]', 1],
  ['a[0', 3],
  ['a[-]', 3],
];

describe('parseFieldPath', () => {
  for (const [text, path] of accepted) {
    test(`accepts ${JSON.stringify(text)}`, () => {
      assert.deepEqual(parseFieldPath(text), { ok: true, path });
    });
  }
  for (const [text, at] of refused) {
    test(`refuses ${JSON.stringify(text)} at ${at}`, () => {
      assert.deepEqual(parseFieldPath(text), { ok: false, at });
    });
  }

  test('cost is linear in the path: a megabyte of path parses in one pass', () => {
    const long = `${'a.'.repeat(500_000)}b`;
    const parsed = parseFieldPath(long);
    assert.equal(parsed.ok && parsed.path.length, 500_001);
    // The finding's shape (a chain of `| [@,@]`) is refused at the first pipe, not evaluated.
    assert.deepEqual(parseFieldPath(`password${' | [@,@]'.repeat(30)}`), { ok: false, at: 9 });
  });
});

describe('selectField', () => {
  const data = JSON.parse(
    '{"a":{"b":["x","y"]},"n":null,"s":"text","__proto__":"own","arr":[{"k":"v"}],"db-user":"u"}',
  ) as unknown;
  const cases: [(string | number)[], unknown][] = [
    [['a', 'b', 0], 'x'],
    [['a', 'b', -1], 'y'],
    [['a', 'b', -2], 'x'],
    [['a', 'b', -3], undefined],
    [['a', 'b', 2], undefined],
    [['arr', 0, 'k'], 'v'],
    [['db-user'], 'u'],
    [['s'], 'text'],
    [['n'], undefined],
    [['n', 'x'], undefined],
    [['s', 0], undefined],
    [['a', 0], undefined],
    [['arr', 'k'], undefined],
    [['missing', 'deeper'], undefined],
    // Own keys only: nothing of Object.prototype is reachable, a JSON "__proto__" key is.
    [['constructor'], undefined],
    [['toString'], undefined],
    [['a', 'hasOwnProperty'], undefined],
    [['__proto__'], 'own'],
    [['arr', 'length'], undefined],
  ];
  for (const [path, expected] of cases) {
    test(`${JSON.stringify(path)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(selectField(data, path), expected);
    });
  }
});

test('the refusal names the field and where the path stops, and how to opt in', () => {
  assert.equal(
    notPlainFieldPath('jmesPath[2].path', 9),
    'jmesPath[2].path is not a plain field path (at character 10); expected names, dots, "quoted names" and [n] indexes, like db.password, "db-user" or hosts[0]. Full JMESPath expressions run only where the cluster administrator enabled them (--allow-jmespath-expressions)',
  );
});
