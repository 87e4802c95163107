/**
 * Fuzz: plain field paths mean what JMESPath means. For random paths of the plain grammar over
 * random JSON, smk's own evaluator selects exactly what the JMESPath library selects (so a spec
 * moved between ASCP and smk gives the same files); and for any text at all, parseFieldPath
 * either refuses it or gives a path the library also reads as that same selection.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compile, type JSONValue, search } from '@jmespath-community/jmespath';
import fc from 'fast-check';
import { parseFieldPath, selectField } from '../../src/core/field-path.ts';
import { checkProperty } from './settings.ts';

// A few names, so that generated paths often hit keys of the generated values. Prototype names
// (constructor, toString) are left out: the library returns Object.prototype's functions for
// them, smk selects nothing (field-path.test.ts covers that difference).
const keys = ['a', 'b', '_c', 'db-user', 'x y', 'é', '"q"', ''];
const jsonArb: fc.Arbitrary<JSONValue> = fc.letrec<{ value: JSONValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<JSONValue>(null, true, 1, 'leaf', ''),
    fc.string({ maxLength: 6 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...keys), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const nameTextArb = fc
  .constantFrom(...keys)
  .map((key) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key)));
const indexTextArb = fc.integer({ min: -5, max: 5 }).map((n) => `[${n}]`);
const spaceArb = fc.constantFrom('', '', '', ' ', '\n');
const plainPathArb = fc
  .tuple(
    fc.oneof(nameTextArb, indexTextArb),
    fc.array(
      fc.tuple(
        spaceArb,
        fc.oneof(
          nameTextArb.map((name) => `.${name}`),
          indexTextArb,
        ),
      ),
      { maxLength: 5 },
    ),
  )
  .map(([first, rest]) => first + rest.map(([space, step]) => space + step).join(''));

/** Equal as JSON: structuredClone makes prototype-less objects (fast-check's and ownKeysOnly's) plain ones. */
const same = (ours: unknown, theirs: unknown): void =>
  assert.deepEqual(structuredClone(ours ?? null), structuredClone(theirs ?? null));

/**
 * The value the library is given: objects without a prototype, so a text naming an inherited
 * member (`toString`, `constructor.name`) selects nothing there too, as in JSON (the library would
 * otherwise return Object.prototype's functions; field-path.test.ts covers smk's side of that).
 */
function ownKeysOnly(value: JSONValue): JSONValue {
  if (Array.isArray(value)) return value.map(ownKeysOnly);
  if (value === null || typeof value !== 'object') return value;
  const copy = Object.create(null) as Record<string, JSONValue>;
  for (const [key, item] of Object.entries(value)) copy[key] = ownKeysOnly(item);
  return copy;
}

test('fuzz: a plain field path selects what JMESPath selects', async (t) => {
  await checkProperty(
    t,
    3_000,
    fc.property(plainPathArb, jsonArb, (text, data) => {
      const parsed = parseFieldPath(text);
      assert.ok(parsed.ok, `${JSON.stringify(text)} should be a plain field path`);
      same(selectField(data, parsed.path), search(data, text));
    }),
  );
});

test('fuzz: any text is refused or read as the library reads it', async (t) => {
  const textArb = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc
      .array(fc.constantFrom('a', '.', '[', ']', '0', '-', '"', '\\', ' ', '|', '@', '(', ')', '*'), {
        maxLength: 12,
      })
      .map((parts) => parts.join('')),
  );
  let plain = 0;
  await checkProperty(
    t,
    3_000,
    fc.property(textArb, jsonArb, (text, data) => {
      const parsed = parseFieldPath(text);
      if (!parsed.ok) {
        assert.ok(parsed.at >= 0 && parsed.at <= text.length);
        return;
      }
      plain += 1;
      assert.doesNotThrow(() => compile(text), `${JSON.stringify(text)} is plain here but not JMESPath`);
      same(selectField(data, parsed.path), search(ownKeysOnly(data), text));
    }),
  );
  t.diagnostic(`fuzz: ${plain} texts were plain field paths`);
  assert.ok(plain > 0, 'no generated text was a plain field path; the generator proves nothing');
});
