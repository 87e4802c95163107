import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError, TooLargeError } from './errors.ts';
import { parseMountSpec } from './spec.ts';
import type { Payload } from './spec-types.ts';
import {
  checkTemplateNames,
  type FileTemplate,
  parseTemplate,
  parseTemplates,
  renderBudgetMs,
  renderMemoryLimit,
} from './template.ts';
import { renderTemplateJob, renderTemplates, templateJob } from './template-render.ts';

const S = 'SecretSync team-a/db';
const encoder = new TextEncoder();
const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes ?? new Uint8Array());
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
const field = (name: string): string => `spec.target.templates.${name}`;

const invalid = (expected: string | RegExp) => (error: unknown) => {
  assert.ok(error instanceof InvalidInputError, String(error));
  if (typeof expected === 'string') assert.equal(error.message, expected);
  else assert.match(error.message, expected);
  assert.doesNotMatch(error.message, /s3cr3t/);
  return true;
};

describe('parseTemplate', () => {
  test('lists the names a template reads (static analysis), in order of first use, not its locals', () => {
    const parsed = template(
      'dsn',
      'postgres://{{user}}:{{ password | url_encode }}@db/{{ user }}{% assign p = port | default: "5432" %}{% for c in ["db.name"] %}{{ c }}{% endfor %}{{ p }}',
    );
    assert.deepEqual(parsed.names, ['user', 'password', 'port', 'db.name']);
    assert.deepEqual(parsed.references[1], { name: 'password', at: 'line 1, column 24' });
  });

  test('operators, unary not and filters with arguments are one expression each', () => {
    const parsed = template(
      'x',
      '{% if not user and password == "x" or port >= 2 %}{{ user | append: "-" | upcase }}{% endif %}',
    );
    assert.deepEqual(parsed.names, ['user', 'password', 'port']);
  });

  const rejected: [string, string, string][] = [
    [
      'an operator missing a value, in a tag',
      '{% if user == %}x{% endif %}',
      '"{% if user == %}" at line 1, column 1 is not one expression (two values with no operator between them, or an operator missing a value); expected one value and its filters, or values joined by ==, !=, <, >, <=, >=, contains, and, or',
    ],
    ['unclosed output', 'a {{ user', 'output "{{ user" not closed at line 1, column 3'],
    ['unclosed tag', 'x\n{% if password %}', 'tag {% if password %} not closed at line 2, column 1'],
    [
      'values with no operator between them (liquidjs would render the first)',
      'a\n{% if user %}{{ user password }}{% endif %}',
      '"{{ user password }}" at line 2, column 14 is not one expression (two values with no operator between them, or an operator missing a value); expected one value and its filters, or values joined by ==, !=, <, >, <=, >=, contains, and, or',
    ],
    ['unknown filter', '{{ user | upper }}', 'undefined filter: upper at line 1, column 1'],
    [
      'include (reads a file)',
      '{% include "/etc/passwd" %}',
      'the include tag is not available: a template cannot read other templates or files',
    ],
    [
      'render (reads a file)',
      '{% render "secrets" %}',
      'the render tag is not available: a template cannot read other templates or files',
    ],
    [
      'layout (reads a file)',
      '{% layout "base" %}',
      'the layout tag is not available: a template cannot read other templates or files',
    ],
    [
      'a property a text does not have (prototype)',
      '{{ password.constructor }}',
      '{{ password.constructor }} at line 1, column 4: a file\'s value is text, whose only property is .size; a name with dots is written {{ ["password.constructor"] }}',
    ],
  ];
  for (const [name, body, message] of rejected) {
    test(`refuses: ${name}, naming the field and the problem`, () => {
      assert.throws(() => template('dsn', body), invalid(`${S}: ${field('dsn')}: ${message}`));
    });
  }

  test('refuses a template over 16 KiB', () => {
    assert.throws(
      () => template('big', 'x'.repeat(16 * 1024 + 1)),
      invalid(/is 16385 bytes; expected at most 16384$/),
    );
  });
});

describe('checkTemplateNames: before anything is read', () => {
  const spec = parseMountSpec(
    {
      objects: [
        { objectName: 'prod/db', objectType: 'secretsmanager', objectAlias: 'db.json' },
        {
          objectName: 'prod/app',
          objectType: 'secretsmanager',
          objectAlias: 'app',
          jmesPath: [{ path: 'user', objectAlias: 'user' }],
        },
      ],
    },
    S,
  );
  const check = (body: string, on = spec) => checkTemplateNames([template('dsn', body)], on, S);

  test('names the objects produce pass: aliases, jmesPath aliases, a dotted name in brackets', () => {
    check('{{ user }}:{{ app }}:{{ ["db.json"] }}:{{ user.size }}');
  });

  test('with a discover entry, a name the listing may find is left to the render-time check', () => {
    const discovering = parseMountSpec(
      {
        objects: [
          { objectName: 'prod/app', objectType: 'secretsmanager', objectAlias: 'app' },
          { objectType: 'secretsmanager', discover: { namePrefix: 'prod/payments/' } },
        ],
      },
      S,
    );
    check('{{ app }}:{{ prod_payments_stripe }}', discovering);
    assert.throws(() => check('{{ stripe }}'), invalid(/\{\{ stripe \}\} at line 1, column 4 names no file/));
  });

  test('a name not produced fails, naming the template, the name and where, listing names only', () => {
    assert.throws(
      () => check('{% if user %}{{ pasword }}{% endif %}'),
      invalid(
        `${S}: ${field('dsn')}: {{ pasword }} at line 1, column 17 names no file the objects produce; they produce "db.json", "app", "user"`,
      ),
    );
  });

  test('a dotted name written as a path gets the bracket spelling in the message', () => {
    assert.throws(() => check('{{ db.json }}'), invalid(/written \{\{ \["db\.json"\] \}\}/));
  });

  test('with extractKeys, a name it could make is left to the render check; others fail now', () => {
    const keyed = parseMountSpec(
      {
        objects: [
          { objectName: 'prod/db', objectType: 'secretsmanager', extractKeys: true, keyPrefix: 'db_' },
        ],
      },
      S,
    );
    check('{{ db_user }}', keyed);
    assert.throws(
      () => check('{{ user }}', keyed),
      invalid(
        /\{\{ user \}\} at line 1, column 4 names no file the objects produce; they produce nothing, and extractKeys names starting with "db_"$/,
      ),
    );
  });

  test('parseTemplates checks template names as Secret keys and the names read', () => {
    assert.throws(
      () => parseTemplates({ 'a/b': '{{ user }}' }, field, S, spec),
      invalid(/a\/b" is not a valid name for a template's file or key/),
    );
    assert.throws(() => parseTemplates({ dsn: '{{ nope }}' }, field, S, spec), invalid(/\{\{ nope \}\}/));
    assert.deepEqual(
      parseTemplates({ dsn: '{{ user }}' }, field, S, spec).map((t) => t.names),
      [['user']],
    );
  });
});

describe('renderTemplates', () => {
  const payloads = [
    payload('user', 'app', 'v1'),
    payload('password', 's3cr3t:/@?&"\\ +', 'v2'),
    payload('bin', new Uint8Array([0xff, 0x00, 0x41]), 'v1'),
    payload('db.name', 'orders', 'v3'),
  ];

  test('substitutes text through Liquid filters; mode and versions', () => {
    const [dsn, json, b64, dotted] = render(
      payloads,
      template('dsn', 'postgres://{{ user }}:{{ password | url_encode | replace: "+", "%20" }}@db:5432/app'),
      template('config.json', '{"user": {{ user | json }}, "password": {{ password | json }}}'),
      template('b64', '{{ user | base64_encode }}|{% if user == "app" %}yes{% else %}no{% endif %}'),
      template('dotted', '{{ ["db.name"] | upcase }} {{ user.size }}'),
    );
    assert.equal(text(dsn?.bytes), 'postgres://app:s3cr3t%3A%2F%40%3F%26%22%5C%20%2B@db:5432/app');
    assert.deepEqual(JSON.parse(text(json?.bytes)), { user: 'app', password: 's3cr3t:/@?&"\\ +' });
    assert.equal(text(b64?.bytes), 'YXBw|yes');
    assert.equal(text(dotted?.bytes), 'ORDERS 3');
    assert.equal(dsn?.mode, 0o600);
    assert.deepEqual(dsn?.objectVersion, { id: 'dsn', version: 'v1,v2' });
  });

  test('a value is text: invalid UTF-8 becomes U+FFFD, never a failure', () => {
    const [out] = render(payloads, template('x', '{{ bin | json }}'));
    assert.equal(text(out?.bytes), '"\ufffd\\u0000A"');
  });

  test('a name the objects did not produce fails, naming the template and the name and listing the names only', () => {
    assert.throws(
      () => render(payloads, template('dsn', '{{ user }}:{{ pasword }}')),
      invalid(
        `${S}: ${field('dsn')}: {{ pasword }} at line 1, column 15 names no file the objects produce; they produce "user", "password", "bin", "db.name"`,
      ),
    );
  });

  test('every template is checked before any renders', () => {
    assert.throws(
      () => render(payloads, template('a', '{{ password }}'), template('b', '{{ nope }}')),
      invalid(/templates\.b: \{\{ nope \}\} at line 1, column 4 names no file/),
    );
  });

  const generic = `${S}: ${field('x')}: failed to render: a tag or filter failed on a value, or the templates exceeded their render budget (${renderBudgetMs} ms, ${renderMemoryLimit} allocation units); the values are not shown`;

  test("a render failure gets one generic message, never liquidjs's (which quotes the value)", () => {
    // liquidjs: `undefined variable: s3cr3t…` — the value chose the name it looked up.
    assert.throws(
      () =>
        render(
          payloads,
          template('x', '{% assign names = password | split: "?" %}{{ names.first | base64_decode }}'),
        ),
      invalid(generic),
    );
  });

  test('own properties only: a prototype property of a value is undefined, so the render fails', () => {
    // Through a local, which static analysis does not type: liquidjs's ownPropertyOnly stops it.
    assert.throws(
      () => render(payloads, template('x', '{% assign s = user %}{{ s.constructor }}')),
      invalid(generic),
    );
  });

  test('no globals and no environment: only the names the template reads are in scope', () => {
    for (const body of ['{% assign k = "PATH" %}{{ [k] }}', '{% assign k = "process" %}{{ [k] }}']) {
      assert.throws(() => render(payloads, template('x', body)), invalid(generic));
    }
    // A lookup by a computed name reaches only names the template reads by name.
    assert.throws(
      () => render(payloads, template('x', '{% assign k = "pass" | append: "word" %}{{ [k] }}')),
      invalid(generic),
    );
    const [out] = render(
      payloads,
      template('x', '{{ password.size }}{% assign k = "pass" | append: "word" %}{{ [k] | size }}'),
    );
    assert.equal(text(out?.bytes), '1515');
  });

  test('allocation bound: a huge range fails with the generic message', () => {
    assert.throws(
      () => render(payloads, template('x', '{% for i in (1..100000000) %}{% endfor %}{{ user }}')),
      invalid(generic),
    );
  });

  test('time bound: 10^9 loop steps (within the allocation bound) stop at the render budget', () => {
    const thousand = Array.from({ length: 1000 }, (_, i) => i).join(',');
    const loops = `{% assign xs = "${thousand}" | split: "," %}{% for a in xs %}{% for b in xs %}{% for c in xs %}{% endfor %}{% endfor %}{% endfor %}`;
    assert.throws(() => render(payloads, template('x', loops)), invalid(generic));
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

describe('templateJob: what a worker thread is sent', () => {
  test('each template gets only the values it names, as text; values no template names are not sent', () => {
    const payloads = [payload('user', 'app'), payload('password', 'Zq7-not-sent'), payload('host', 'db')];
    const job = templateJob(
      payloads,
      [template('dsn', '{{ user }}@{{ host }}'), template('who', '{{ user }}')],
      S,
    );
    assert.deepEqual(job, {
      texts: ['{{ user }}@{{ host }}', '{{ user }}'],
      scopes: [{ user: 'app', host: 'db' }, { user: 'app' }],
    });
    assert.doesNotMatch(JSON.stringify(job), /Zq7/);
  });

  test('renderTemplateJob re-parses the text: the same output as the in-process render', () => {
    const payloads = [payload('user', 'app'), payload('password', 'a b')];
    const templates = [template('dsn', '{{ user }}:{{ password | url_encode }}')];
    const inProcess = render(payloads, ...templates);
    const result = renderTemplateJob(templateJob(payloads, templates, S));
    assert.deepEqual(result, { ok: true, rendered: [text(inProcess[0]?.bytes)] });
  });
});
