import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiVersionOf, rolloutKindNames, rolloutKinds, valueAt } from './kinds.ts';
import { parseWorkload, planRollout } from './workloads.ts';

const at = new Date(Date.UTC(2026, 0, 1));

/** An object of `kind` whose pod template (wherever the kind keeps it) reads Secret `db-env`. */
function objectOf(kind: (typeof rolloutKindNames)[number]) {
  const template = {
    metadata: { labels: { app: 'web' } },
    spec: {
      serviceAccountName: 'web-sa',
      containers: [{ name: 'a', envFrom: [{ secretRef: { name: 'db-env' } }] }],
    },
  };
  let spec: Record<string, unknown> = {
    metadata: { name: 'web', namespace: 'team-a', resourceVersion: '7' },
  };
  let nested: unknown = template;
  for (const key of [...rolloutKinds[kind].podTemplate].reverse()) nested = { [key]: nested };
  spec = { ...spec, ...(nested as Record<string, unknown>) };
  return spec;
}

for (const kind of rolloutKindNames) {
  test(`${kind}: its pod template is read where the row says, and its restart patch is what the row says`, () => {
    const row = rolloutKinds[kind];
    assert.match(apiVersionOf(kind), /^[a-z.]+\/v\w+$|^v\d$/);
    assert.ok(row.verbs.includes('patch') && row.verbs.includes('watch'));
    const workload = parseWorkload(kind, objectOf(kind));
    assert.deepEqual(workload.consumedSecrets, ['db-env']);
    assert.equal(workload.serviceAccountName, 'web-sa');
    assert.deepEqual(workload.templateLabels, { app: 'web' });

    const plan = planRollout(
      { ...workload, record: new Map([['arn:x', 'v1']]) },
      [{ key: 'arn:x', name: 'x', versionId: 'v2', via: ['t'] }],
      at,
    );
    assert.equal(plan.action, 'roll');
    if (plan.action !== 'roll') return;
    const { metadata, ...restart } = plan.patch;
    assert.deepEqual(restart, row.restart(at));
    assert.deepEqual(metadata, {
      resourceVersion: '7',
      annotations: { 'smk.dev/rolled-versions': JSON.stringify({ 'arn:x': 'v2' }) },
    });
  });
}

test('the apps kinds restart through the pod template annotation smk.dev/restartedAt', () => {
  for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet'] as const) {
    assert.equal(
      valueAt(rolloutKinds[kind].restart(at), [
        ...rolloutKinds[kind].podTemplate,
        'metadata',
        'annotations',
        'smk.dev/restartedAt',
      ]),
      '2026-01-01T00:00:00.000Z',
    );
    assert.equal(apiVersionOf(kind), 'apps/v1');
  }
});

test('valueAt: missing steps are undefined', () => {
  assert.equal(valueAt({ a: { b: 1 } }, ['a', 'b']), 1);
  assert.equal(valueAt({ a: null }, ['a', 'b']), undefined);
  assert.equal(valueAt(undefined, ['a']), undefined);
});

test('a CronJob restarts its Job template: the next Job it starts carries the new value', () => {
  assert.equal(apiVersionOf('CronJob'), 'batch/v1');
  assert.deepEqual(rolloutKinds.CronJob.restart(at), {
    spec: {
      jobTemplate: {
        spec: {
          template: { metadata: { annotations: { 'smk.dev/restartedAt': '2026-01-01T00:00:00.000Z' } } },
        },
      },
    },
  });
});

test('an Argo Rollout restarts through its own API (spec.restartAt), only where its CRD is served', () => {
  assert.equal(apiVersionOf('Rollout'), 'argoproj.io/v1alpha1');
  assert.deepEqual(rolloutKinds.Rollout.restart(at), { spec: { restartAt: '2026-01-01T00:00:00.000Z' } });
  assert.equal(rolloutKinds.Rollout.optional, true);
  assert.equal(rolloutKinds.Deployment.optional, undefined);
  const byRef = parseWorkload('Rollout', {
    metadata: { name: 'web', namespace: 'team-a' },
    spec: { workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' } },
  });
  assert.deepEqual(byRef.consumedSecrets, [], 'a Rollout by workloadRef has no template of its own');
});
