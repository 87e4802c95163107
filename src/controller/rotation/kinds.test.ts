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
