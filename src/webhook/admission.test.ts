import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { type AdmissionResult, reviewAdmission } from './admission.ts';
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

describe('reviewAdmission', () => {
  test('the patch turns the stored pod into the mutated pod', () => {
    const review = fixture();
    const result = reviewAdmission(review, config);
    assert.equal(result.outcome, 'mutated');
    assert.ok(result.status === 200 && result.body.response.allowed);
    assert.equal(result.status === 200 && result.body.response.uid, review.request.uid);
    const patched = fastJsonPatch.applyPatch(
      structuredClone(review.request.object),
      patchOf(result),
    ).newDocument;
    const expected = mutatePod(review.request.object, config);
    assert.ok('pod' in expected);
    assert.deepEqual(patched, expected.pod);
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
    const patched = fastJsonPatch.applyPatch(
      structuredClone(different.request.object),
      patchOf(b),
    ).newDocument;
    const expected = mutatePod(different.request.object, config);
    assert.ok('pod' in expected);
    assert.deepEqual(patched, expected.pod);
    // Another injector configuration never sees this one's answers.
    const other = patchOf(reviewAdmission(first, { ...config, agentImage: 'registry.example/smk:other' }));
    assert.notDeepEqual(other, a);
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
});
