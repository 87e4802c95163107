/**
 * Fuzz: AdmissionReview bodies (random pods and annotations) through the webhook's review
 * function. Never a crash or a hang; a patch always applies cleanly to the input and gives the
 * mutated pod, and applying the review again to that pod changes nothing; a denial always names
 * the annotation or field at fault.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { reviewAdmission } from '../../src/webhook/admission.ts';
import { defaultInjectorConfig, mutatePod } from '../../src/webhook/mutate.ts';
import { objectsTextArb, validObjectArb } from './arbitraries.ts';
import { checkProperty } from './settings.ts';

const { applyPatch } = fastJsonPatch;

const usually = <T, U>(good: fc.Arbitrary<T>, odd: fc.Arbitrary<U>): fc.Arbitrary<T | U> =>
  fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: odd });

const knownAnnotations = [
  'smk.dev/inject',
  'smk.dev/objects',
  'smk.dev/region',
  'smk.dev/mount-path',
  'smk.dev/containers',
  'smk.dev/refresh-interval',
  'smk.dev/resources',
  'smk.dev/status',
  'smk.dev/objectz',
  'secrets.k8s.aws/sidecarInjectorWebhook',
  'secrets.k8s.aws/secret-arn',
  'secrets.k8s.aws/mount-path',
  'secrets.k8s.aws/secret-filename',
] as const;

const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });

/** smk's own dialect, every value plausible. */
const smkAnnotationsArb = fc.record({
  'smk.dev/inject': fc.constant('true'),
  'smk.dev/objects': fc
    .array(validObjectArb, { minLength: 1, maxLength: 3 })
    .map((list) => JSON.stringify(list)),
  'smk.dev/region': optional(fc.constantFrom('us-east-1', 'eu-west-1')),
  'smk.dev/mount-path': optional(fc.constantFrom('/var/run/secrets/smk', '/etc/secrets/')),
  'smk.dev/containers': optional(fc.constant('app')),
  'smk.dev/refresh-interval': optional(fc.constantFrom('5m', '60s', '1h30m')),
  'smk.dev/resources': optional(fc.constantFrom('{"requests":{"cpu":"5m"}}', '{"limits":{"memory":"96Mi"}}')),
});

/** The seed PoC's dialect. */
const seedAnnotationsArb = fc.record({
  'secrets.k8s.aws/sidecarInjectorWebhook': fc.constant('enabled'),
  'secrets.k8s.aws/secret-arn': fc.constant('arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf'),
  'secrets.k8s.aws/mount-path': optional(fc.constantFrom('/tmp', '/secrets')),
  'secrets.k8s.aws/secret-filename': optional(fc.constantFrom('secret', 'db.json')),
});

/** One annotation set to something else: a broken value, an unknown key, the other dialect. */
const corruptionArb = fc.tuple(
  fc.constantFrom(...knownAnnotations),
  fc.oneof(
    fc.string({ maxLength: 20 }),
    objectsTextArb,
    fc.constantFrom(
      'false',
      'disabled',
      '1s',
      '48h',
      '../x',
      'a/b',
      '',
      '{"requests":{"gpu":"1"}}',
      'app,,x',
      'web',
      'relative/path',
    ),
  ),
);

/** Annotations a user could write: one dialect (or none), sometimes with one thing wrong. */
const annotationsArb: fc.Arbitrary<Record<string, string>> = fc
  .tuple(
    fc.oneof(
      { weight: 4, arbitrary: smkAnnotationsArb },
      { weight: 2, arbitrary: seedAnnotationsArb },
      { weight: 1, arbitrary: fc.constant({}) },
    ),
    fc.option(corruptionArb, { nil: undefined, freq: 2 }),
    fc.option(fc.constant({ 'example.com/other': 'x' }), { nil: undefined }),
  )
  .map(([base, corruption, other]) => {
    const record: Record<string, string | undefined> = { ...base, ...other };
    if (corruption) record[corruption[0]] = corruption[1];
    return Object.fromEntries(
      Object.entries(record).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
  });

const envArb = fc.array(
  fc.oneof(
    fc.record({
      name: fc.constantFrom('AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_REGION', 'LOG_LEVEL'),
      value: fc.string({ maxLength: 10 }),
    }),
    fc.record({
      name: fc.constantFrom('AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'),
      value: fc.string({ maxLength: 10 }),
    }),
  ),
  { maxLength: 3 },
);

const mountArb = fc.record({
  name: fc.constantFrom('cache', 'aws-iam-token', 'data'),
  mountPath: fc.constantFrom('/cache', '/data', '/var/run/secrets/eks.amazonaws.com/serviceaccount', '/tmp'),
});

const containerArb = fc.record(
  {
    name: fc.oneof(
      { weight: 9, arbitrary: fc.constantFrom('app', 'sidecar', 'migrate') },
      { weight: 1, arbitrary: fc.constantFrom('smk-agent-init', 'web') },
    ),
    image: fc.constant('example/app:1'),
    env: envArb,
    volumeMounts: fc.array(mountArb, { maxLength: 2 }),
    securityContext: fc.record({ runAsUser: fc.constantFrom(0, 1000, 65532) }, { requiredKeys: [] }),
  },
  { requiredKeys: ['name', 'image'] },
);

const podArb: fc.Arbitrary<unknown> = usually(
  fc.record(
    {
      apiVersion: fc.constant('v1'),
      kind: fc.constant('Pod'),
      metadata: fc.record(
        {
          name: fc.constantFrom('api', 'api-7d9f'),
          namespace: fc.constant('shop'),
          annotations: annotationsArb,
        },
        { requiredKeys: ['annotations'] },
      ),
      spec: fc.record(
        {
          serviceAccountName: fc.constant('api'),
          containers: usually(
            fc
              .uniqueArray(containerArb, {
                minLength: 1,
                maxLength: 3,
                selector: (container) => container.name,
              })
              .map((containers) => [
                { ...containers[0], name: 'app' },
                ...containers.slice(1).filter((c) => c.name !== 'app'),
              ]),
            fc.array(containerArb, { maxLength: 2 }),
          ),
          initContainers: fc.uniqueArray(containerArb, {
            maxLength: 2,
            selector: (container) => container.name,
          }),
          volumes: fc.uniqueArray(
            fc.record({
              name: fc.constantFrom('cache', 'aws-iam-token', 'data', 'data', 'smk-secrets'),
              emptyDir: fc.constant({}),
            }),
            { maxLength: 2, selector: (volume) => volume.name },
          ),
        },
        { requiredKeys: ['containers'] },
      ),
    },
    { requiredKeys: ['metadata', 'spec'] },
  ),
  fc.anything({ maxDepth: 3 }),
);

const reviewArb: fc.Arbitrary<unknown> = usually(
  fc.record({
    apiVersion: fc.constant('admission.k8s.io/v1'),
    kind: fc.constant('AdmissionReview'),
    request: fc.record(
      {
        uid: fc.uuid(),
        kind: usually(
          fc.constant({ group: '', version: 'v1', kind: 'Pod' }),
          fc.constant({ group: 'apps', version: 'v1', kind: 'Deployment' }),
        ),
        operation: usually(fc.constant('CREATE'), fc.constantFrom('UPDATE', 'DELETE')),
        namespace: fc.constant('shop'),
        object: podArb,
      },
      { requiredKeys: ['uid', 'object'] },
    ),
  }),
  fc.anything({ maxDepth: 3 }),
);

/** Where a denial must point: an annotation by name, or a field path of the pod, or a named container/volume. */
const namesTheField =
  /annotation (smk\.dev|secrets\.k8s\.aws)\/[A-Za-z-]+|^pod (spec|metadata|kind|apiVersion|object)[.:[ ]|^pod: |(container|volume) (named )?"[^"]+"/;

test('a denial that names nothing would fail the check below', () => {
  assert.doesNotMatch('objects spec is invalid', namesTheField);
  assert.match('annotation smk.dev/region: expected an AWS region like us-east-1', namesTheField);
});

test('fuzz: AdmissionReview bodies never crash; patches apply and are final; denials name the field', async (t) => {
  const outcomes: Record<string, number> = {};
  await checkProperty(
    t,
    2_500,
    fc.property(reviewArb, (body) => {
      const before = JSON.stringify(body);
      const result = reviewAdmission(body, defaultInjectorConfig);
      assert.equal(JSON.stringify(body), before, 'the review changed its input');
      outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1;
      if (result.status === 400) {
        assert.match(result.message, /^AdmissionReview /);
        return;
      }
      const request = (body as { request: { uid: string; object: unknown } }).request;
      assert.equal(result.body.response.uid, request.uid);
      if (result.outcome === 'denied') {
        assert.equal(result.body.response.allowed, false);
        const message = result.body.response.status?.message ?? '';
        assert.match(message, namesTheField, `denial names no field: ${message}`);
        return;
      }
      assert.equal(result.body.response.allowed, true);
      if (result.outcome !== 'mutated') return;
      const patch = JSON.parse(
        Buffer.from(result.body.response.patch ?? '', 'base64').toString('utf8'),
      ) as Operation[];
      const patched = applyPatch(structuredClone(request.object), patch, true, false).newDocument;
      const expected = mutatePod(request.object, defaultInjectorConfig);
      assert.ok('pod' in expected);
      assert.deepEqual(patched, JSON.parse(JSON.stringify(expected.pod)));
      // Reinvocation (the API server may call again after another webhook): nothing more to do.
      const again = reviewAdmission(
        { ...(body as object), request: { ...request, object: patched } },
        defaultInjectorConfig,
      );
      assert.equal(again.outcome, 'unchanged', `second review was ${again.outcome}`);
    }),
  );
  t.diagnostic(`fuzz: outcomes ${JSON.stringify(outcomes)}`);
  assert.ok(
    (outcomes.mutated ?? 0) > 0 && (outcomes.denied ?? 0) > 0,
    'both mutations and denials must be reached',
  );
});
