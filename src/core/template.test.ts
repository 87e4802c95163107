import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError, TooLargeError } from './errors.ts';
import type { Payload } from './spec-types.ts';
import { type FileTemplate, parseTemplate, renderTemplates } from './template.ts';

const S = 'SecretSync team-a/db';
const encoder = new TextEncoder();
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const payload = (name: string, value: string | Uint8Array, version = 'v1'): Payload => ({
  name,
  bytes: typeof value === 'string' ? encoder.encode(value) : value,
  mode: 0o644,
  objectVersion: { id: name, version },
});
const template = (name: string, body: string): FileTemplate =>
  parseTemplate({ name, text: body, field: `spec.target.templates.${name}` }, S);
const render = (payloads: Payload[], ...templates: FileTemplate[]) =>
  renderTemplates(payloads, templates, 0o600, S);

const invalid = (expected: string | RegExp) => (error: unknown) => {
  assert.ok(error instanceof InvalidInputError, String(error));
  if (typeof expected === 'string') assert.equal(error.message, expected);
  else assert.match(error.message, expected);
  assert.doesNotMatch(error.message, /s3cr3t/);
  return true;
};

describe('parseTemplate', () => {
  test('text and references, spaces optional, filters after a pipe; names in order of first use', () => {
    const parsed = template('dsn', 'postgres://{{user}}:{{ password | urlquery }}@db/{{ user }}');
    assert.deepEqual(parsed.names, ['user', 'password']);
    assert.equal(parsed.parts.length, 6);
  });

  const rejected: [string, string, string][] = [
    ['unclosed', 'a {{ user', '"{{" at line 1, column 3 is not closed by "}}"'],
    [
      'not a reference (an expression)',
      'x\n{{ if .password }}',
      '"{{ if .password }}" at line 2, column 1 is not a reference; expected {{ name }} or {{ name | base64|json|urlquery }}, where name is a file the objects produce',
    ],
    [
      'unknown filter',
      '{{ user | upper }}',
      'filter "upper" at line 1, column 1 is not one of base64, json, urlquery',
    ],
    [
      'empty reference',
      '{{}}',
      '"{{}}" at line 1, column 1 is not a reference; expected {{ name }} or {{ name | base64|json|urlquery }}, where name is a file the objects produce',
    ],
  ];
  for (const [name, body, message] of rejected) {
    test(`refuses: ${name}, naming the field and the position`, () => {
      assert.throws(() => template('dsn', body), invalid(`${S}: spec.target.templates.dsn: ${message}`));
    });
  }

  test('refuses a template over 16 KiB', () => {
    assert.throws(
      () => template('big', 'x'.repeat(16 * 1024 + 1)),
      invalid(/is 16385 bytes; expected at most 16384$/),
    );
  });
});

describe('renderTemplates', () => {
  const payloads = [
    payload('user', 'app', 'v1'),
    payload('password', 's3cr3t:/@?&"\\', 'v2'),
    payload('bin', new Uint8Array([0xff, 0x00, 0x41]), 'v1'),
  ];

  test('substitutes raw bytes and filtered text; mode and versions', () => {
    const [dsn, json, b64] = render(
      payloads,
      template('dsn', 'postgres://{{ user }}:{{ password | urlquery }}@db:5432/app'),
      template('config.json', '{"user": {{ user | json }}, "password": {{ password | json }}}'),
      template('b64', '{{ bin | base64 }}|{{ bin }}'),
    );
    assert.equal(
      text(dsn?.bytes ?? new Uint8Array()),
      'postgres://app:s3cr3t%3A%2F%40%3F%26%22%5C@db:5432/app',
    );
    assert.deepEqual(JSON.parse(text(json?.bytes ?? new Uint8Array())), {
      user: 'app',
      password: 's3cr3t:/@?&"\\',
    });
    assert.deepEqual([...(b64?.bytes ?? [])], [...encoder.encode('/wBB|'), 0xff, 0x00, 0x41]);
    assert.equal(dsn?.mode, 0o600);
    assert.deepEqual(dsn?.objectVersion, { id: 'dsn', version: 'v1,v2' });
  });

  test('a filter never fails on a value (invalid UTF-8 becomes U+FFFD)', () => {
    const [out] = render(payloads, template('x', '{{ bin | json }} {{ bin | urlquery }}'));
    assert.equal(text(out?.bytes ?? new Uint8Array()), '"\ufffd\\u0000A" %EF%BF%BD%00A');
  });

  test('a name the objects did not produce fails, naming the template and the name and listing the names only', () => {
    assert.throws(
      () => render(payloads, template('dsn', '{{ user }}:{{ pasword }}')),
      invalid(
        `${S}: spec.target.templates.dsn: {{ pasword }} names no file the objects produce; they produce "user", "password", "bin"`,
      ),
    );
  });

  test('every template is checked before any renders: the outcome never depends on a value', () => {
    // The second template's missing name is reported even though the first could render.
    assert.throws(
      () => render(payloads, template('a', '{{ password }}'), template('b', '{{ nope }}')),
      invalid(/templates\.b: \{\{ nope \}\} names no file/),
    );
  });

  test('an output over 64 KiB is TooLarge', () => {
    const big = [payload('big', 'x'.repeat(40_000))];
    assert.throws(
      () => render(big, template('twice', '{{ big }}{{ big }}')),
      (error: unknown) =>
        error instanceof TooLargeError && /renders 80000 bytes; expected at most 65536/.test(error.message),
    );
  });
});
