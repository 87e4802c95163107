import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Payload } from '../core/spec-types.ts';
import { parseTemplate } from '../core/template.ts';
import { renderTemplates } from '../core/template-render.ts';
import { liquidOfGoTemplate } from './convert-eso-template.ts';

const encoder = new TextEncoder();
const payload = (name: string, value: string): Payload => ({
  name,
  bytes: encoder.encode(value),
  mode: 0o644,
  objectVersion: { id: name, version: 'v1' },
});

/** What smk renders for a converted template, from these values. */
function rendered(liquid: string, values: Record<string, string>): string {
  const template = parseTemplate({ name: 'out', text: liquid, field: 'spec.target.templates.out' }, 'test');
  const payloads = Object.entries(values).map(([name, value]) => payload(name, value));
  const out = renderTemplates(payloads, [template], 0o600, 'test').find((item) => item.name === 'out');
  return new TextDecoder().decode(out?.bytes);
}

const converted = (text: string): string => {
  const result = liquidOfGoTemplate(text);
  assert.deepEqual(result.problems, [], text);
  assert.ok(result.template !== undefined, text);
  return result.template;
};

describe('liquidOfGoTemplate: what converts renders what ESO renders', () => {
  it('plain references, with and without spaces; text around them is kept', () => {
    assert.equal(converted('a {{ .b_1 }} c {{.D}}'), 'a {{ b_1 }} c {{ D }}');
    assert.equal(converted('no actions'), 'no actions');
  });

  it('index . "key" → ["key"], for names Go fields cannot hold (a missing key: noted, smk fails)', () => {
    const result = liquidOfGoTemplate('{{ index . "tls.crt" }}');
    assert.equal(result.template, '{{ ["tls.crt"] }}');
    assert.match(result.notes.join(), /renders empty in ESO; smk fails naming it/);
    assert.equal(rendered(result.template ?? '', { 'tls.crt': 'CERT-TEXT' }), 'CERT-TEXT');
  });

  it('b64enc → base64_encode: standard base64 of the UTF-8 bytes, as Go encodes them (noted for non-text)', () => {
    for (const text of ['{{ .password | b64enc }}', '{{ b64enc .password }}']) {
      const result = liquidOfGoTemplate(text);
      assert.equal(result.template, '{{ password | base64_encode }}', text);
      assert.match(result.notes.join(), /not UTF-8 text/);
    }
    // Go: base64.StdEncoding.EncodeToString([]byte("pässword?>")) — with padding, + and /.
    assert.equal(rendered('{{ password | base64_encode }}', { password: 'pässword?>' }), 'cMOkc3N3b3JkPz4=');
  });

  it('default "x" (pipe or call form) → default: "x" — the fallback for an empty text only', () => {
    assert.equal(converted('{{ .port | default "5432" }}'), '{{ port | default: "5432" }}');
    assert.equal(converted('{{ default "5432" .port }}'), '{{ port | default: "5432" }}');
    assert.equal(rendered('{{ port | default: "5432" }}', { port: '' }), '5432');
    assert.equal(rendered('{{ port | default: "5432" }}', { port: '6543' }), '6543');
  });

  it('replace "a" "b" → replace: "a", "b" — every occurrence, as strings.Replace(s, a, b, -1)', () => {
    assert.equal(converted('{{ .host | replace "." "-" }}'), '{{ host | replace: ".", "-" }}');
    assert.equal(converted('{{ replace "." "-" .host }}'), '{{ host | replace: ".", "-" }}');
    assert.equal(rendered('{{ host | replace: ".", "-" }}', { host: 'a.b..c' }), 'a-b--c');
  });

  it('stages chain in order: {{ .a | replace "x" "y" | b64enc }}', () => {
    assert.equal(
      converted('{{ .a | replace "x" "y" | b64enc }}'),
      '{{ a | replace: "x", "y" | base64_encode }}',
    );
    assert.equal(rendered('{{ a | replace: "x", "y" | base64_encode }}', { a: 'xx' }), 'eXk=');
  });
});

describe('liquidOfGoTemplate: what does not convert is named', () => {
  const problems = (text: string): string => {
    const result = liquidOfGoTemplate(text);
    assert.equal(result.template, undefined, text);
    return result.problems.join(' / ');
  };

  it('a near miss names the function and why the look-alike filter differs', () => {
    assert.match(
      problems('{{ .a | upper }}'),
      /^function upper: no identical Liquid filter \(.*ß becomes SS\)\)$/,
    );
    assert.match(problems('{{ .a | lower }}'), /function lower: .*Σ/);
    assert.match(problems('{{ .a | trim }}'), /function trim: .*U\+0085/);
    assert.match(problems('{{ .a | b64dec }}'), /function b64dec: .*error text/);
    assert.match(problems('{{ .a | urlquery }}'), /function urlquery: .*! ' \( \) \*/);
    assert.match(problems('{{ .a | toJson }}'), /function toJson: .*<, > and &/);
    assert.match(problems('{{ printf "%s" .a }}'), /function printf: no formatted printing/);
  });

  it("ESO's own and other Sprig functions are named, each of them", () => {
    assert.equal(
      problems('{{ .p12 | pkcs12key }}{{ .a | sha256sum | upper }}'),
      "function pkcs12key: a Go template (Sprig or ESO) function with no smk equivalent / function sha256sum: a Go template (Sprig or ESO) function with no smk equivalent / function upper: no identical Liquid filter (Liquid's upcase differs from Go's strings.ToUpper on some non-ASCII letters (ß becomes SS))",
    );
  });

  it('arguments a Liquid string cannot hold, or that change the meaning, are named', () => {
    assert.match(problems('{{ .a | default "say \\"hi\\"" }}'), /Go escapes/);
    assert.match(problems('{{ .a | default `{{x}}` }}'), /quotes, backslashes or braces/);
    assert.match(problems('{{ .a | replace "" "-" }}'), /empty search text/);
    assert.match(problems('{{ .a | b64enc "x" }}'), /only b64enc with no argument converts/);
    assert.match(problems('{{ index . .k }}'), /only index \. "key" converts/);
  });

  it('control flow, variables, nested fields, trim markers and Liquid syntax in the text are named', () => {
    assert.match(problems('{{ if .a }}x{{ end }}'), /the \{\{ if \}\} action: control flow/);
    assert.match(problems('{{ range .a }}{{ end }}'), /\{\{ range \}\}/);
    assert.match(problems('{{ $x := .a }}'), /variables, parentheses and numbers/);
    assert.match(problems('{{ .db.password }}'), /nested field \.db\.password/);
    assert.match(problems('{{- .a }}'), /trim marker/);
    assert.match(problems('{% raw %}{{ .a }}'), /\{%, which Liquid reads as a tag/);
    assert.match(problems('}} {{ .a }}'), /a \}\} outside an action/);
    assert.match(problems('{{ .a'), /without its \}\}/);
    assert.match(problems('{{/* note */}}'), /comment/);
    assert.match(problems('{{ . }}'), /\. at the start of an action/);
  });
});
