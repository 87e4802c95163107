/**
 * Fuzz: what the sync controller reads from the API server — SecretSync objects and opted-in
 * SecretProviderClasses — through the job parsers and then the core's spec parser, as a sync
 * does. A job and a spec, or an InvalidInputError naming the object and field; never another
 * exception.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { annotations, type SyncJob, secretSyncJob } from '../../src/controller/jobs.ts';
import { spcJob } from '../../src/controller/spc-job.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import { parseMountSpec } from '../../src/core/spec.ts';
import { objectArb, objectsTextArb, validObjectArb } from './arbitraries.ts';
import { checkProperty } from './settings.ts';

const usually = <T>(good: fc.Arbitrary<T>, odd: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 8, arbitrary: good },
    { weight: 1, arbitrary: odd },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

const dropUndefined = (record: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));

const oddArb = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.constant(null),
  fc.array(fc.nat(), { maxLength: 1 }),
);

/** Metadata comes from the API server, which validates it: only the spec is user input. */
const metadataArb = fc.record({
  name: fc.constantFrom('db', 'api-creds'),
  namespace: fc.constant('team-a'),
  uid: fc.uuid(),
  generation: fc.nat({ max: 9 }),
});

const dataEntryArb = fc.record({
  objectName: usually(fc.constantFrom('db', 'username', 'password'), oddArb),
  key: usually(fc.constantFrom('username', 'password', 'db.json'), fc.constantFrom('a/b', '', 'ü')),
});

const secretSyncArb = fc.record({
  apiVersion: fc.constant('smk.dev/v1alpha1'),
  kind: fc.constant('SecretSync'),
  metadata: metadataArb,
  spec: usually(
    fc
      .record({
        serviceAccountName: usually(fc.constant('api'), fc.constantFrom('API', '', 'a_b')),
        region: usually(fc.constant('us-east-1'), oddArb),
        objects: usually(
          fc.array(fc.oneof(validObjectArb, objectArb), { minLength: 1, maxLength: 3 }),
          oddArb,
        ),
        target: usually(
          fc
            .record({
              name: usually(fc.constant('db-secret'), oddArb),
              type: usually(fc.constantFrom('Opaque', 'kubernetes.io/basic-auth'), oddArb),
              data: usually(fc.array(dataEntryArb, { minLength: 1, maxLength: 2 }), oddArb),
            })
            .map(dropUndefined),
          oddArb,
        ),
        refreshInterval: usually(fc.constantFrom('30s', '1h', '15m'), fc.constantFrom('0s', '500ms', 'soon')),
        creationPolicy: usually(fc.constantFrom('Owner', 'Orphan', 'Merge'), oddArb),
        deletionPolicy: usually(fc.constantFrom('Retain', 'Delete'), oddArb),
      })
      .map(dropUndefined),
    oddArb,
  ),
});

const spcArb = fc.record({
  apiVersion: fc.constant('secrets-store.csi.x-k8s.io/v1'),
  kind: fc.constant('SecretProviderClass'),
  metadata: fc
    .tuple(
      metadataArb,
      fc
        .record({
          [annotations.sync]: usually(fc.constant('true'), fc.constantFrom('yes', 'false')),
          [annotations.serviceAccount]: usually(fc.constant('api'), fc.constantFrom('', 'A B')),
          [annotations.refreshInterval]: usually(fc.constantFrom('1m', '2h'), fc.constantFrom('', 'x')),
          [annotations.creationPolicy]: usually(fc.constant('Owner'), fc.constant('owner')),
          [annotations.deletionPolicy]: usually(fc.constant('Delete'), fc.constant('delete')),
        })
        .map(dropUndefined),
    )
    .map(([metadata, annotationMap]) => ({ ...metadata, annotations: annotationMap })),
  spec: usually(
    fc
      .record({
        provider: usually(fc.constant('aws'), fc.constantFrom('azure', '')),
        parameters: usually(
          fc
            .record({
              objects: usually(
                fc.oneof(
                  fc
                    .array(validObjectArb, { minLength: 1, maxLength: 3 })
                    .map((list) => JSON.stringify(list)),
                  objectsTextArb,
                ),
                oddArb,
              ),
              region: usually(fc.constant('us-east-1'), fc.constantFrom('', 'x')),
              pathTranslation: usually(fc.constantFrom('True', 'False'), fc.constantFrom('//', '')),
            })
            .map(dropUndefined),
          oddArb,
        ),
        secretObjects: usually(
          fc.array(
            fc
              .record({
                secretName: usually(fc.constantFrom('db', 'api'), oddArb),
                data: usually(fc.array(dataEntryArb, { minLength: 1, maxLength: 2 }), oddArb),
              })
              .map(dropUndefined),
            { maxLength: 2 },
          ),
          oddArb,
        ),
      })
      .map(dropUndefined),
    oddArb,
  ),
});

function jobOrRefusal(parse: (object: unknown) => SyncJob, object: unknown): SyncJob | undefined {
  try {
    return parse(object);
  } catch (error) {
    assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
    assert.match(
      error.message,
      /^(SecretSync|SecretProviderClass) team-a\/(db|api-creds): /,
      'message names the object',
    );
    assert.ok(error.field !== undefined, `no field named: ${error.message}`);
    return undefined;
  }
}

for (const [kind, arb, parse] of [
  ['SecretSync', secretSyncArb, secretSyncJob],
  ['SecretProviderClass', spcArb, spcJob],
] as const) {
  test(`fuzz: ${kind} objects give a job and a spec, or an InvalidInputError naming the object and field`, async (t) => {
    const reached = { jobs: 0, specs: 0 };
    await checkProperty(
      t,
      1_500,
      fc.property(arb as fc.Arbitrary<unknown>, (object) => {
        const job = jobOrRefusal(parse, object);
        if (job === undefined) return;
        reached.jobs += 1;
        assert.ok(job.targets.length > 0);
        assert.ok(job.refreshIntervalMs >= 1000);
        try {
          parseMountSpec(job.params, `${kind} team-a/db`);
          reached.specs += 1;
        } catch (error) {
          assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
        }
      }),
    );
    t.diagnostic(`fuzz: ${reached.jobs} jobs, ${reached.specs} specs accepted`);
    assert.ok(reached.specs > 0);
  });
}
