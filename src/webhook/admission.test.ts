import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import {
  type AdmissionResult,
  admissionReviewSchema,
  plainReviewRequest,
  reviewAdmission,
} from './admission.ts';
import { sameSpecBesidesTokenVolumes, tokenVolumeNames } from './answer-cache.ts';
import { defaultInjectorConfig, type InjectorConfig, mutatePod } from './mutate.ts';

const config: InjectorConfig = { ...defaultInjectorConfig, agentImage: 'registry.example/smk:test' };
const fixture = (): { request: { uid: string; object: Record<string, unknown>; operation: string } } =>
  JSON.parse(readFileSync(new URL('./fixtures/admission-review-3-containers.json', import.meta.url), 'utf8'));

function patchOf(result: AdmissionResult): Operation[] {
  assert.equal(result.status, 200);
  if (result.status !== 200) return [];
  assert.equal(result.body.response.patchType, 'JSONPatch');
  return JSON.parse(Buffer.from(result.body.response.patch ?? '', 'base64').toString('utf8'));
}

/** The answer's patch applied to the review's pod gives exactly what mutatePod makes of that pod. */
function assertPatchIsMutation(review: ReturnType<typeof fixture>, result: AdmissionResult): void {
  const patched = fastJsonPatch.applyPatch(
    structuredClone(review.request.object),
    patchOf(result),
  ).newDocument;
  const expected = mutatePod(review.request.object, config);
  assert.ok('pod' in expected);
  assert.deepEqual(patched, expected.pod);
}

describe('reviewAdmission', () => {
  test('the patch turns the stored pod into the mutated pod', () => {
    const review = fixture();
    const result = reviewAdmission(review, config);
    assert.equal(result.outcome, 'mutated');
    assert.ok(result.status === 200 && result.body.response.allowed);
    assert.equal(result.status === 200 && result.body.response.uid, review.request.uid);
    assertPatchIsMutation(review, result);
    // The answer's text, made ahead, is the body's JSON; also for a remembered answer and a uid
    // that needs escaping.
    assert.equal(result.status === 200 && result.text, JSON.stringify(result.status === 200 && result.body));
    review.request.uid = 'quote " and \\ backslash';
    const again = reviewAdmission(review, config);
    assert.ok(again.status === 200 && again.text !== undefined);
    assert.equal(again.text, JSON.stringify(again.body));
  });

  test('each request gets its own patch (no state shared between requests)', () => {
    const first = fixture();
    const second = fixture();
    second.request.uid = 'second';
    // A different refresh interval: a region change would put the fixture's ARN outside `region`.
    (second.request.object.metadata as { annotations: Record<string, string> }).annotations[
      'smk.dev/refresh-interval'
    ] = '10m';
    const a1 = patchOf(reviewAdmission(first, config));
    const b = patchOf(reviewAdmission(second, config));
    const a2 = patchOf(reviewAdmission(first, config));
    assert.deepEqual(a2, a1);
    assert.notDeepEqual(b, a1);
  });

  test('pods of one workload share an answer; a different spec gets its own', () => {
    const first = fixture();
    const sibling = fixture();
    (sibling.request.object.metadata as { generateName: string }).generateName = 'checkout-other-';
    const different = fixture();
    const spec = different.request.object.spec as { containers: Array<{ volumeMounts: unknown[] }> };
    spec.containers[0]?.volumeMounts.push({ name: 'cache', mountPath: '/cache' });
    const a = patchOf(reviewAdmission(first, config));
    assert.deepEqual(patchOf(reviewAdmission(sibling, config)), a);
    const b = reviewAdmission(different, config);
    assert.notDeepEqual(patchOf(b), a);
    assertPatchIsMutation(different, b);
    // Another injector configuration never sees this one's answers.
    const other = patchOf(reviewAdmission(first, { ...config, agentImage: 'registry.example/smk:other' }));
    assert.notDeepEqual(other, a);
  });

  /** The fixture with its token volume (and the mounts of it) renamed, as for another pod of the same ReplicaSet. */
  function withTokenVolume(name: string): ReturnType<typeof fixture> {
    const review = fixture();
    review.request.object = JSON.parse(
      JSON.stringify(review.request.object).replaceAll('kube-api-access-x7k2p', name),
    );
    return review;
  }

  test('pods of one ReplicaSet share an answer although each has its own token volume name', () => {
    const first = withTokenVolume('kube-api-access-b4z9q');
    const second = withTokenVolume('kube-api-access-m7h2w');
    const sameSpec = (a: ReturnType<typeof fixture>, b: ReturnType<typeof fixture>) => {
      const [x, y] = [a.request.object.spec, b.request.object.spec];
      return sameSpecBesidesTokenVolumes(x, tokenVolumeNames(x), y, tokenVolumeNames(y));
    };
    assert.ok(sameSpec(first, second));
    assert.deepEqual([...tokenVolumeNames(second.request.object.spec)], ['kube-api-access-m7h2w']);
    // Any other difference is another spec: a volume of another name, or another suffix length.
    assert.ok(!sameSpec(withTokenVolume('kube-api-access-m7h2wx'), first));
    assert.ok(!sameSpec(withTokenVolume('own-api-access-m7h2w'), first));
    assert.ok(!sameSpec(first, withTokenVolume('own-api-access-m7h2w')));
    // The shared answer is what the second pod's own mutation gives.
    patchOf(reviewAdmission(first, config));
    const shared = reviewAdmission(second, config);
    assertPatchIsMutation(second, shared);
  });

  test('an answer that names the token volume is not shared with a pod whose volume has another name', () => {
    // The app mounts its IRSA token from a volume named like the generated one: the agents copy
    // that mount, so the answer names the pod's own volume.
    const irsa = (name: string): ReturnType<typeof fixture> => {
      const review = withTokenVolume('kube-api-access-x7k2p');
      const spec = review.request.object.spec as {
        containers: Array<{ env?: unknown[]; volumeMounts: unknown[] }>;
        volumes: unknown[];
      };
      spec.volumes.push({
        name,
        projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'sts.amazonaws.com' } }] },
      });
      const app = spec.containers[0];
      assert.ok(app);
      app.env = [
        ...(app.env ?? []),
        { name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::123456789012:role/app' },
        {
          name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
          value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
        },
      ];
      app.volumeMounts.push({
        name,
        mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
        readOnly: true,
      });
      return review;
    };
    const first = patchOf(reviewAdmission(irsa('kube-api-access-aaaaa'), config));
    assert.match(JSON.stringify(first), /kube-api-access-aaaaa/);
    const second = patchOf(reviewAdmission(irsa('kube-api-access-bbbbb'), config));
    assert.match(JSON.stringify(second), /kube-api-access-bbbbb/);
    assert.doesNotMatch(JSON.stringify(second), /kube-api-access-aaaaa/);
  });

  test('only the token volume and its mounts are stood in for: containers and annotations named alike are not', () => {
    // Two containers named like generated volumes; each pod mounts its secrets into another one.
    const targeting = (target: string): ReturnType<typeof fixture> => {
      const review = fixture();
      const object = review.request.object as {
        metadata: { annotations: Record<string, string> };
        spec: { containers: Array<{ name: string }> };
      };
      const [first, second] = object.spec.containers;
      assert.ok(first && second);
      first.name = 'kube-api-access-aaaaa';
      second.name = 'kube-api-access-bbbbb';
      object.metadata.annotations['smk.dev/containers'] = target;
      return review;
    };
    const intoFirst = targeting('kube-api-access-aaaaa');
    const intoSecond = targeting('kube-api-access-bbbbb');
    patchOf(reviewAdmission(intoFirst, config));
    const answer = reviewAdmission(intoSecond, config);
    assertPatchIsMutation(intoSecond, answer);
  });

  test('a denial for a malformed pod is not remembered for a valid pod with the same spec', () => {
    const malformed = fixture();
    (malformed.request.object.metadata as { generateName: unknown }).generateName = 42;
    const denied = reviewAdmission(malformed, config);
    assert.equal(denied.outcome, 'denied');
    assert.match(denied.status === 200 ? (denied.message ?? '') : '', /^pod metadata\.generateName: /);
    assert.equal(reviewAdmission(fixture(), config).outcome, 'mutated');
  });

  test('an injected pod sent again gets no patch', () => {
    const review = fixture();
    const mutated = mutatePod(review.request.object, config);
    assert.ok('pod' in mutated);
    review.request.object = mutated.pod;
    const result = reviewAdmission(review, config);
    assert.equal(result.outcome, 'unchanged');
    assert.ok(result.status === 200 && result.body.response.allowed && !result.body.response.patch);
  });

  test('a bad annotation is a denial naming it', () => {
    const review = fixture();
    (review.request.object.metadata as { annotations: Record<string, string> }).annotations[
      'smk.dev/refresh-interval'
    ] = 'often';
    const result = reviewAdmission(review, config);
    assert.equal(result.outcome, 'denied');
    assert.ok(result.status === 200);
    if (result.status !== 200) return;
    assert.equal(result.body.response.allowed, false);
    assert.equal(result.body.response.patch, undefined);
    assert.deepEqual(result.body.response.status, {
      code: 400,
      reason: 'BadRequest',
      message: 'annotation smk.dev/refresh-interval: expected a duration like 60s, 5m or 1h30m',
    });
  });

  test('other operations and kinds pass untouched', () => {
    const update = fixture();
    update.request.operation = 'UPDATE';
    assert.equal(reviewAdmission(update, config).outcome, 'ignored');
    const deployment = fixture() as { request: Record<string, unknown> };
    deployment.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    assert.equal(reviewAdmission(deployment, config).outcome, 'ignored');
  });

  test('malformed reviews are a 400 naming the field, never an exception', () => {
    const cases: Array<[unknown, RegExp]> = [
      [null, /^AdmissionReview object: /],
      ['text', /^AdmissionReview object: /],
      [
        { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} },
        /^AdmissionReview apiVersion: /,
      ],
      [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /^AdmissionReview request: /],
      [
        { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: '' } },
        /^AdmissionReview request\.uid: /,
      ],
    ];
    for (const [body, message] of cases) {
      const result = reviewAdmission(body, config);
      assert.equal(result.status, 400);
      assert.equal(result.outcome, 'invalid');
      assert.match(result.status === 400 ? result.message : '', message);
    }
  });

  test('an annotated pod with a malformed spec is denied, not crashed on', () => {
    const review = fixture();
    review.request.object.spec = { containers: 'not a list' };
    const result = reviewAdmission(review, config);
    assert.equal(result.outcome, 'denied');
    assert.match(result.status === 200 ? (result.message ?? '') : '', /^pod spec\.containers: /);
  });

  test('a pod with a field nested thousands of levels deep is mutated, not crashed on', () => {
    // Only a forged review can nest like this; the answer cache used to exhaust the stack copying it.
    const deep = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth));
    const plain = patchOf(reviewAdmission(fixture(), config));
    for (const depth of [5_000, 5_001]) {
      const review = fixture();
      (review.request.object.spec as Record<string, unknown>).deep = deep(depth);
      const result = reviewAdmission(review, config);
      assert.equal(result.outcome, 'mutated');
      assert.deepEqual(patchOf(result), plain, 'the same injection as without the deep field');
    }
  });
});

test('plainReviewRequest accepts only what the schema accepts, and reads the same fields', () => {
  const odd = fc.oneof(fc.constant(null), fc.integer(), fc.constant([]), fc.constant({}));
  /** Mostly the valid value, so the plain path is taken often; sometimes anything else. */
  const text = (valid: string) => fc.oneof({ weight: 8, arbitrary: fc.constant(valid) }, fc.string(), odd);
  const optionalText = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.string({ maxLength: 6 }) },
    { weight: 1, arbitrary: odd },
  );
  const gvk = fc.oneof(
    fc.constant(undefined),
    odd,
    fc.record({ group: optionalText, version: optionalText, kind: optionalText }),
    fc.record({ group: optionalText, version: optionalText, kind: optionalText }, { requiredKeys: [] }),
  );
  const requestFields = {
    uid: fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 3 }) }, fc.constant(''), odd),
    kind: gvk,
    operation: optionalText,
    namespace: optionalText,
    name: optionalText,
    object: fc.jsonValue(),
    dryRun: fc.boolean(),
  };
  const review = fc
    .record(
      {
        apiVersion: text('admission.k8s.io/v1'),
        kind: text('AdmissionReview'),
        request: fc.oneof(
          { weight: 4, arbitrary: fc.record(requestFields) },
          fc.record(requestFields, { requiredKeys: [] }),
          odd,
        ),
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.parse(JSON.stringify(value)) as unknown);
  let accepted = 0;
  fc.assert(
    fc.property(fc.oneof({ weight: 9, arbitrary: review }, fc.anything()), (body) => {
      const plain = plainReviewRequest(body);
      if (plain === undefined) return;
      accepted += 1;
      const parsed = admissionReviewSchema.safeParse(body);
      assert.ok(parsed.success, JSON.stringify(body));
      const { uid, kind, operation, namespace, name, object } = parsed.data.request;
      assert.deepEqual(
        {
          uid: plain.uid,
          kind: plain.kind,
          operation: plain.operation,
          namespace: plain.namespace,
          name: plain.name,
        },
        { uid, kind, operation, namespace, name },
      );
      assert.equal(plain.object, object);
    }),
    { numRuns: 3000, seed: 20_261_207 },
  );
  assert.ok(accepted > 40, `only ${accepted} accepted: the generator proves little`);
  assert.ok(plainReviewRequest(fixture()) !== undefined, "the API server's review takes the plain path");
});
