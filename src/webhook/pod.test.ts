import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isPlainPodMetadata, podMetadataSchema } from './pod.ts';

const oddValue = fc.oneof(fc.constant(null), fc.integer(), fc.boolean(), fc.constant([]), fc.constant({}));
const field = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 8 }), oddValue);
const annotationKey = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'smk.dev/inject', '0'),
);
const annotations = fc.oneof(
  fc.constant(undefined),
  oddValue,
  fc.dictionary(annotationKey, fc.oneof({ weight: 6, arbitrary: fc.string({ maxLength: 8 }) }, oddValue)),
);
/** Metadata as JSON.parse makes it (own `__proto__` keys included), near the valid shape and far from it. */
const metadata = fc.oneof(
  fc
    .record({ name: field, generateName: field, namespace: field, annotations, labels: fc.anything() })
    .map((value) => JSON.parse(JSON.stringify(value)) as unknown),
  fc.jsonValue(),
  fc.anything(),
);

test('isPlainPodMetadata accepts only what podMetadataSchema accepts, and the plain shape it is for', () => {
  let accepted = 0;
  fc.assert(
    fc.property(metadata, (value) => {
      if (!isPlainPodMetadata(value)) return;
      accepted += 1;
      assert.ok(podMetadataSchema.safeParse(value).success, JSON.stringify(value));
    }),
    { numRuns: 3000, seed: 20_261_207 },
  );
  assert.ok(accepted > 300, `only ${accepted} accepted: the generator proves little`);
  assert.ok(
    isPlainPodMetadata(
      JSON.parse(
        '{"generateName":"web-7d9f-","namespace":"team-a","labels":{"app":"web"},"annotations":{"smk.dev/inject":"true","__proto__":"x"}}',
      ),
    ),
  );
});
