import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from '../../core/errors.ts';
import { mappingMatches, parseMapping } from './mapping.ts';
import { sourceUsage } from './usage.ts';
import { type Dependency, parseWorkload, planRollout, recordKey } from './workloads.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf';

function deployment(
  annotations: Record<string, string> = {},
  labels: Record<string, string> = { app: 'web' },
) {
  return {
    metadata: { name: 'web', namespace: 'team-a', uid: 'u1', resourceVersion: '42', labels, annotations },
    spec: {
      template: {
        metadata: { labels: { app: 'web', tier: 'front' } },
        spec: {
          initContainers: [{ name: 'init', envFrom: [{ secretRef: { name: 'init-env' } }] }],
          containers: [
            {
              name: 'app',
              env: [
                { name: 'A', value: 'plain' },
                { name: 'B', valueFrom: { secretKeyRef: { name: 'db-env', key: 'B' } } },
              ],
            },
          ],
          volumes: [
            { name: 'v', secret: { secretName: 'tls' } },
            {
              name: 'p',
              projected: { sources: [{ secret: { name: 'proj' } }, { configMap: { name: 'c' } }] },
            },
          ],
        },
      },
    },
  };
}

const dependency = (versionId: string | undefined, key = arn): Dependency => ({
  key,
  name: 'db',
  versionId,
  via: ['annotation smk.dev/rollout-on'],
});

test('a workload: opt-in annotations, consumed Secrets (env, envFrom, volumes, projected), record', () => {
  const workload = parseWorkload(
    'Deployment',
    deployment({
      'smk.dev/rollout-on': 'db, arn:aws:secretsmanager:us-east-1:123456789012:secret:api\n other',
      'smk.dev/rollout-on-sync': 'True',
      'smk.dev/rolled-versions': JSON.stringify({ [arn]: 'v1' }),
    }),
  );
  assert.deepEqual(workload.rolloutOn, [
    'db',
    'arn:aws:secretsmanager:us-east-1:123456789012:secret:api',
    'other',
  ]);
  assert.equal(workload.rolloutOnSync, true);
  assert.deepEqual(workload.consumedSecrets, ['db-env', 'init-env', 'proj', 'tls']);
  assert.equal(workload.record.get(arn), 'v1');
  assert.equal(workload.resourceVersion, '42');
  assert.deepEqual(workload.templateLabels, { app: 'web', tier: 'front' });
  assert.equal(workload.serviceAccountName, 'default', 'no account named: the API server gives default');
});

test("a workload's ServiceAccount: serviceAccountName, else the deprecated serviceAccount", () => {
  const runningAs = (podSpec: Record<string, string>) => {
    const object = deployment();
    Object.assign(object.spec.template.spec, podSpec);
    return parseWorkload('Deployment', object).serviceAccountName;
  };
  assert.equal(runningAs({ serviceAccountName: 'app' }), 'app');
  assert.equal(runningAs({ serviceAccount: 'legacy' }), 'legacy');
  assert.equal(runningAs({ serviceAccountName: 'app', serviceAccount: 'legacy' }), 'app');
});

test('a bad opt-in flag names the workload and the annotation; a broken record is treated as none', () => {
  assert.throws(
    () => parseWorkload('StatefulSet', deployment({ 'smk.dev/rollout-on-sync': 'yes please' })),
    (error: unknown) =>
      error instanceof InvalidInputError &&
      error.message.includes('StatefulSet team-a/web') &&
      error.field === 'metadata.annotations.smk.dev/rollout-on-sync',
  );
  assert.equal(
    parseWorkload('DaemonSet', deployment({ 'smk.dev/rolled-versions': '{not json' })).record.size,
    0,
  );
});

test('planRollout: adopt on first sight, nothing when recorded, one patch with the record when moved', () => {
  const at = new Date('2024-03-08T20:43:25Z');
  const fresh = parseWorkload('Deployment', deployment());
  const adopt = planRollout(fresh, [dependency('v1')], at);
  assert.equal(adopt.action, 'adopt');
  assert.deepEqual(adopt.action === 'adopt' && adopt.patch, {
    metadata: {
      resourceVersion: '42',
      annotations: { 'smk.dev/rolled-versions': JSON.stringify({ [arn]: 'v1' }) },
    },
  });

  const recorded = parseWorkload(
    'Deployment',
    deployment({ 'smk.dev/rolled-versions': JSON.stringify({ [arn]: 'v1' }) }),
  );
  assert.deepEqual(planRollout(recorded, [dependency('v1')], at), { action: 'none' });
  assert.deepEqual(
    planRollout(recorded, [dependency(undefined)], at),
    { action: 'none' },
    'deleted/unknown never rolls',
  );

  const roll = planRollout(recorded, [dependency('v2'), dependency('x1', recordKey(arn, 'blue'))], at);
  assert.equal(roll.action, 'roll');
  if (roll.action !== 'roll') return;
  assert.deepEqual(
    roll.changed.map((d) => d.versionId),
    ['v2'],
  );
  assert.deepEqual(roll.patch, {
    metadata: {
      resourceVersion: '42',
      annotations: { 'smk.dev/rolled-versions': JSON.stringify({ [arn]: 'v2', [`${arn}@blue`]: 'x1' }) },
    },
    spec: { template: { metadata: { annotations: { 'smk.dev/restartedAt': '2024-03-08T20:43:25.000Z' } } } },
  });
});

test("seed 003's mapping parses unchanged; matching stays in the mapping's namespace", () => {
  const mapping = parseMapping({
    apiVersion: 'awssecretsoperator.secretoperator/v1',
    kind: 'SecretsRotationMapping',
    metadata: { name: 'secretsrotationmapping-sample', namespace: 'default', uid: 'm1', generation: 1 },
    spec: { SecretID: 'eks-controller-test-secret', Labels: { environment: 'operatortest' } },
  });
  assert.equal(mapping.secretId, 'eks-controller-test-secret');
  const workload = { namespace: 'default', labels: { environment: 'operatortest' }, templateLabels: {} };
  assert.ok(mappingMatches(mapping, workload));
  assert.ok(
    mappingMatches(mapping, { ...workload, labels: {}, templateLabels: { environment: 'operatortest' } }),
  );
  assert.ok(!mappingMatches(mapping, { ...workload, namespace: 'other' }));
  assert.ok(!mappingMatches(mapping, { ...workload, labels: { environment: 'prod' } }));
  assert.throws(
    () =>
      parseMapping({ metadata: { name: 'm', namespace: 'default' }, spec: { SecretID: 'x', Labels: {} } }),
    (error: unknown) =>
      error instanceof InvalidInputError &&
      /SecretsRotationMapping default\/m: spec.Labels: expected at least one label/.test(error.message),
  );
  assert.throws(
    () => parseMapping({ metadata: { name: 'm', namespace: 'default' }, spec: { Labels: { a: 'b' } } }),
    /spec.SecretID/,
  );
});

test('a SecretSync uses its Secrets Manager objects at AWSCURRENT, a pinned label, or a fixed version', () => {
  const usage = sourceUsage(
    'SecretSync',
    {
      apiVersion: 'smk.dev/v1alpha1',
      kind: 'SecretSync',
      metadata: { name: 'db', namespace: 'team-a' },
      spec: {
        serviceAccountName: 'app',
        objects: [
          {
            objectName: 'db',
            objectType: 'secretsmanager',
            jmesPath: [{ path: 'user', objectAlias: 'USER' }],
          },
          { objectName: arn, objectVersionLabel: 'blue' },
          {
            objectName: 'fixed',
            objectType: 'secretsmanager',
            objectVersion: 'EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE',
          },
          { objectName: '/app/param', objectType: 'ssmparameter' },
        ],
        target: { name: 'db-env' },
      },
    },
    'eu-west-1',
  );
  assert.deepEqual(usage?.targets, ['db-env']);
  assert.deepEqual(
    usage?.uses.map((use) => [use.watch.region, use.watch.id, use.watch.stage ?? null, use.files]),
    [
      ['eu-west-1', 'db', 'AWSCURRENT', ['db', 'USER']],
      ['us-east-1', arn, 'blue', [arn]],
      ['eu-west-1', 'fixed', null, ['fixed']],
    ],
  );
  assert.equal(
    sourceUsage('SecretSync', { metadata: { name: 'x', namespace: 'y' }, spec: {} }, 'eu-west-1'),
    undefined,
  );
});
