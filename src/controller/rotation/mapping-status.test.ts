import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { silentLogger } from '../../core/log.ts';
import type { SecretChange, SecretObservation } from './detector.ts';
import type { RolloutKind } from './kinds.ts';
import { parseMapping } from './mapping.ts';
import { createMappingStatuses, type MappingStatus, notPermitted, watchingStatus } from './mapping-status.ts';
import type { PermissionSubject } from './permissions.ts';
import { fakeEvents, fakeInformer, fakeObjects, fakePermissions, workloadObject } from './test-doubles.ts';
import { createUsageIndex } from './usage-index.ts';

const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/db-AbCdEf';
const seen = (version: string, deleted = false): SecretObservation => ({
  region: 'us-east-1',
  arn,
  name: 'team-a/db',
  stages: new Map([['AWSCURRENT', version]]),
  deleted,
});

function mappingObject(spec: Record<string, unknown>, status?: Partial<MappingStatus>): KubernetesObject {
  return {
    apiVersion: 'awssecretsoperator.secretoperator/v1',
    kind: 'SecretsRotationMapping',
    metadata: { name: 'm', namespace: 'team-a', uid: 'uid-m', generation: 3, resourceVersion: '1' },
    spec,
    ...(status ? { status } : {}),
  } as KubernetesObject;
}
const validSpec = { SecretID: 'team-a/db', Labels: { app: 'web' } };

function setup(options: {
  mapping: KubernetesObject;
  allowed?: (subject: PermissionSubject) => boolean;
  leading?: boolean;
}) {
  const objects = fakeObjects();
  const events = fakeEvents();
  const index = createUsageIndex({
    informers: {
      syncs: fakeInformer(),
      managedSecrets: fakeInformer(),
      spcs: undefined,
      clusterSyncs: undefined,
      mappings: fakeInformer([options.mapping]),
      workloads: new Map<RolloutKind, ReturnType<typeof fakeInformer>>([
        ['Deployment', fakeInformer([workloadObject('team-a', 'web', { labels: { app: 'web' } })])],
      ]),
    },
    defaultRegion: 'us-east-1',
    observed: () => seen('v2'),
    permissions: fakePermissions(options.allowed ?? (() => true)),
  });
  const statuses = createMappingStatuses({
    index,
    permissions: fakePermissions(options.allowed ?? (() => true)),
    observed: () => seen('v2'),
    objects,
    events,
    logger: silentLogger(),
    defaultRegion: 'us-east-1',
    leading: () => options.leading ?? true,
    now: () => Date.UTC(2026, 0, 1),
  });
  return { statuses, objects, events };
}

test('watching: ARN, current version, Ready; the transition time kept while Ready does not change', () => {
  const mapping = parseMapping(mappingObject(validSpec));
  const before: Partial<MappingStatus> = {
    conditions: [
      { type: 'Ready', status: 'True', reason: 'Watching', message: '', lastTransitionTime: 'earlier' },
    ],
  };
  const status = watchingStatus(mapping, seen('v2'), before, {}, 'now');
  assert.equal(status.secretArn, arn);
  assert.equal(status.currentVersion, 'v2');
  assert.equal(status.observedGeneration, 3);
  assert.deepEqual(status.conditions[0], {
    type: 'Ready',
    status: 'True',
    reason: 'Watching',
    message: 'following team-a/db at AWSCURRENT',
    lastTransitionTime: 'earlier',
  });
  assert.equal(watchingStatus(mapping, undefined, {}, {}, 'now').conditions[0]?.reason, 'SecretNotSeen');
  assert.equal(
    watchingStatus(mapping, seen('v2', true), {}, {}, 'now').conditions[0]?.reason,
    'SecretDeleted',
  );
});

test('a change and a rollout are recorded; at most 20 rollouts are kept', () => {
  const mapping = parseMapping(mappingObject(validSpec));
  const change: SecretChange = {
    secret: seen('v2'),
    previous: seen('v1'),
    source: 'event',
    reason: 'PutSecretValue',
    detectedAt: Date.UTC(2026, 0, 1),
    changedAfter: undefined,
  };
  const rolled = Array.from({ length: 20 }, (_, i) => ({
    kind: 'Deployment',
    name: `w${i}`,
    versionId: 'v1',
    at: 'x',
  }));
  const status = watchingStatus(
    mapping,
    seen('v2'),
    { workloadsRolled: rolled },
    { change, rolled: { kind: 'Deployment', name: 'web', versionId: 'v2' } },
    'now',
  );
  assert.deepEqual(status.lastChange, {
    versionId: 'v2',
    previousVersionId: 'v1',
    detectedAt: '2026-01-01T00:00:00.000Z',
    source: 'event',
    reason: 'PutSecretValue',
  });
  assert.equal(status.workloadsRolled?.length, 20);
  assert.deepEqual(status.workloadsRolled?.at(-1), {
    kind: 'Deployment',
    name: 'web',
    versionId: 'v2',
    at: 'now',
  });
});

test('no selected workload may describe the secret: NotPermitted, and nothing else (not even the ARN)', async () => {
  const { statuses, objects } = setup({ mapping: mappingObject(validSpec), allowed: () => false });
  await statuses.write(parseMapping(mappingObject(validSpec)), {});
  assert.equal(objects.statuses.length, 1);
  const written = objects.statuses[0]?.status as unknown as MappingStatus;
  assert.equal(written.conditions[0]?.reason, notPermitted);
  assert.deepEqual(Object.keys(written).sort(), ['conditions', 'observedGeneration']);
  assert.ok(!JSON.stringify(written).includes(arn));
});

test('NotPermitted already written for this generation is not written again', async () => {
  const hidden = mappingObject(validSpec, {
    observedGeneration: 3,
    conditions: [
      { type: 'Ready', status: 'False', reason: notPermitted, message: '', lastTransitionTime: 't' },
    ],
  });
  const { statuses, objects } = setup({ mapping: hidden, allowed: () => false });
  await statuses.write(parseMapping(hidden), {});
  assert.equal(objects.statuses.length, 0);
});

test('an invalid mapping: an InvalidSpec event and condition naming the field, from the leader only', async () => {
  const broken = mappingObject({ SecretID: 'team-a/db', Labels: {} });
  const leader = setup({ mapping: broken });
  assert.equal(await leader.statuses.parse(broken), undefined);
  assert.deepEqual(
    leader.events.recorded.map((event) => `${event.type}/${event.reason}`),
    ['Warning/InvalidSpec'],
  );
  const condition = (leader.objects.statuses[0]?.status as unknown as MappingStatus | undefined)
    ?.conditions[0];
  assert.equal(condition?.reason, 'InvalidSpec');
  assert.match(condition?.message ?? '', /spec\.Labels: expected at least one label/);

  const standby = setup({ mapping: broken, leading: false });
  assert.equal(await standby.statuses.parse(broken), undefined);
  assert.equal(standby.events.recorded.length + standby.objects.statuses.length, 0);
});

test('on a change, the mappings following the secret record it; a first observation records no change', async () => {
  const { statuses, objects } = setup({ mapping: mappingObject(validSpec) });
  const change: SecretChange = {
    secret: seen('v2'),
    previous: seen('v1'),
    source: 'poll',
    reason: 'poll',
    detectedAt: 0,
    changedAfter: undefined,
  };
  await statuses.statusSink.secretChanged(change);
  await statuses.statusSink.secretChanged({ ...change, previous: undefined });
  await statuses.statusSink.secretChanged({
    ...change,
    secret: { ...seen('v2'), arn: 'arn:x', name: 'other' },
  });
  assert.equal(objects.statuses.length, 2);
  assert.ok((objects.statuses[0]?.status as unknown as MappingStatus | undefined)?.lastChange);
});
