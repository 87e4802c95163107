/**
 * Fuzz: rotation queue messages. Real event shapes (the fixtures of src/controller/rotation)
 * with fields dropped, replaced, retyped, wrapped in SNS and cut short, plus any JSON and any
 * text: parseQueueMessage never throws, says hint / ignored / malformed, and its reason never
 * echoes the body (a queue can carry anything, values included).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseQueueMessage } from '../../src/controller/rotation/messages.ts';
import { secretLeafArb } from './arbitraries.ts';
import { checkProperty } from './settings.ts';

const fixtureDir = new URL('../../src/controller/rotation/fixtures/', import.meta.url);
const fixtures: unknown[] = readdirSync(fixtureDir)
  .filter((name) => name.endsWith('.json'))
  .map((name) => JSON.parse(readFileSync(new URL(name, fixtureDir), 'utf8')) as unknown);

/** Every path to a value inside a JSON document. */
function paths(value: unknown, prefix: readonly (string | number)[] = []): (string | number)[][] {
  const here = [[...prefix]];
  if (Array.isArray(value))
    return [...here, ...value.flatMap((item, index) => paths(item, [...prefix, index]))];
  if (typeof value === 'object' && value !== null) {
    return [...here, ...Object.entries(value).flatMap(([key, item]) => paths(item, [...prefix, key]))];
  }
  return here;
}

function edit(
  document: unknown,
  path: readonly (string | number)[],
  replacement: unknown,
  remove: boolean,
): unknown {
  if (path.length === 0) return remove ? undefined : replacement;
  const copy = structuredClone(document) as Record<string | number, unknown>;
  let node: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) return document;
    node = next as Record<string | number, unknown>;
  }
  const last = path[path.length - 1] as string | number;
  if (remove && !Array.isArray(node)) delete node[last];
  else node[last] = replacement;
  return copy;
}

const oddJsonArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.boolean(),
  fc.constantFrom(
    '',
    'PutSecretValue',
    'aws.secretsmanager',
    'secretsmanager.amazonaws.com',
    'x'.repeat(3000),
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

/** A fixture with a value planted where the real event says HIDDEN, then 0–3 random edits. */
const eventArb = fc
  .tuple(
    fc.constantFrom(...fixtures),
    secretLeafArb,
    fc.array(fc.tuple(fc.nat(), oddJsonArb, fc.boolean()), { maxLength: 3 }),
  )
  .map(([fixture, planted, edits]) => {
    let document: unknown = edit(fixture, ['detail', 'requestParameters', 'secretString'], planted, false);
    for (const [at, replacement, remove] of edits) {
      const all = paths(document);
      const path = all[at % all.length] ?? [];
      document = edit(document, path, replacement, remove) ?? null;
    }
    return { document, planted };
  });

const bodyArb = fc.oneof(
  {
    weight: 5,
    arbitrary: eventArb.map(({ document, planted }) => ({ body: JSON.stringify(document), planted })),
  },
  {
    weight: 2,
    arbitrary: eventArb.map(({ document, planted }) => ({
      body: JSON.stringify({ Type: 'Notification', MessageId: 'm', Message: JSON.stringify(document) }),
      planted,
    })),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(eventArb, fc.nat()).map(([{ document, planted }, cut]) => {
      const text = JSON.stringify(document);
      return { body: text.slice(0, cut % (text.length + 1)), planted };
    }),
  },
  { weight: 1, arbitrary: fc.tuple(fc.json(), secretLeafArb).map(([body, planted]) => ({ body, planted })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.string({ unit: 'binary' }), secretLeafArb)
      .map(([body, planted]) => ({ body: body + planted, planted })),
  },
);

test('fuzz: queue messages parse to hint / ignored / malformed, never throw, never echo the body', async (t) => {
  assert.ok(fixtures.length >= 5, 'the rotation fixtures are where the event shapes come from');
  const kinds: Record<string, number> = {};
  await checkProperty(
    t,
    3_000,
    fc.property(bodyArb, ({ body, planted }) => {
      const parsed = parseQueueMessage(body);
      kinds[parsed.kind] = (kinds[parsed.kind] ?? 0) + 1;
      assert.ok(['hint', 'ignored', 'malformed'].includes(parsed.kind));
      const said = JSON.stringify(parsed);
      assert.ok(!said.includes(planted.slice(0, 15)), `the parse result echoes the body: ${said}`);
      if (parsed.kind === 'hint') {
        assert.ok(parsed.hint.secretId.length > 0 && parsed.hint.secretId.length <= 2048);
        assert.ok(parsed.hint.reason.length > 0);
        if (parsed.hint.eventTime) assert.ok(!Number.isNaN(parsed.hint.eventTime.getTime()));
      } else {
        assert.ok(parsed.reason.length > 0 && parsed.reason.length < 200);
      }
    }),
  );
  t.diagnostic(`fuzz: outcomes ${JSON.stringify(kinds)}`);
  assert.ok((kinds.hint ?? 0) > 0 && (kinds.malformed ?? 0) > 0 && (kinds.ignored ?? 0) > 0);
});

test('fuzz: duplicate and reordered deliveries of one batch parse alike', async (t) => {
  const batchArb = fc.array(
    eventArb.map(({ document }) => JSON.stringify(document)),
    { minLength: 1, maxLength: 6 },
  );
  await checkProperty(
    t,
    300,
    fc.property(batchArb, fc.nat(), (batch, seed) => {
      const once = batch.map((body) => JSON.stringify(parseQueueMessage(body)));
      // SQS delivers at least once and in any order: the same body must always mean the same thing.
      const shuffled = [...batch, ...batch].map((body, index) => ({
        body,
        key: (index * 7919 + seed) % 101,
      }));
      shuffled.sort((a, b) => a.key - b.key);
      for (const { body } of shuffled) {
        assert.equal(JSON.stringify(parseQueueMessage(body)), once[batch.indexOf(body)]);
      }
    }),
  );
});
