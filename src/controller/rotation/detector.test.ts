import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotFoundError, TransientError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import type { SecretVersions } from '../../core/source.ts';
import { createDetector, type SecretChange, type VersionReader, type Watch } from './detector.ts';

const arnOf = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;

function versions(name: string, stages: Record<string, string[]>, deleted = false): SecretVersions {
  return {
    arn: arnOf(name),
    name,
    versionsToStages: new Map(Object.entries(stages)),
    ...(deleted ? { deletedDate: new Date(0) } : {}),
  };
}

/** A scripted AWS: what ListSecrets/DescribeSecret answer now, and the calls made. */
function fakeAws() {
  const secrets = new Map<string, SecretVersions>();
  const calls: { api: string; ids?: readonly string[] }[] = [];
  let failure: Error | undefined;
  const reader: VersionReader = {
    async listSecretVersions(_region, options) {
      calls.push({ api: 'ListSecrets', ...(options?.ids ? { ids: options.ids } : {}) });
      if (failure) throw failure;
      return [...secrets.values()];
    },
    async describe(request) {
      calls.push({ api: 'DescribeSecret', ids: [request.id] });
      if (failure) throw failure;
      const found = [...secrets.values()].find((s) => s.arn === request.id || s.name === request.id);
      if (!found) throw new NotFoundError(`${request.id}: not found`);
      return found;
    },
  };
  return {
    reader,
    calls,
    set: (value: SecretVersions) => secrets.set(value.name, value),
    remove: (name: string) => secrets.delete(name),
    fail: (error: Error | undefined) => {
      failure = error;
    },
  };
}

function setup(watches: Watch[], synced?: Record<string, Record<string, string>>) {
  const aws = fakeAws();
  const changes: SecretChange[] = [];
  let clock = 1_000;
  const detector = createDetector({
    reader: aws.reader,
    watches: () => watches,
    sinks: [{ secretChanged: (change) => void changes.push(change) }],
    logger: silentLogger(),
    now: () => clock,
    ...(synced ? { synced: (observation) => new Map(Object.entries(synced[observation.name] ?? {})) } : {}),
  });
  return { aws, changes, detector, tick: (ms = 1) => (clock += ms) };
}

const watch = (id: string, stage: string | null = 'AWSCURRENT'): Watch => ({
  region: 'us-east-1',
  id,
  stage: stage ?? undefined,
});

test('the first poll is a baseline; a moved AWSCURRENT is a change; AWSPENDING alone is not', async () => {
  const { aws, changes, detector, tick } = setup([watch('db')]);
  aws.set(versions('db', { v1: ['AWSCURRENT'] }));
  await detector.poll();
  assert.equal(changes.length, 1);
  assert.equal(changes[0]?.previous, undefined, 'baseline');
  tick();
  aws.set(versions('db', { v1: ['AWSCURRENT'], v2: ['AWSPENDING'] }));
  await detector.poll();
  assert.equal(changes.length, 1, 'AWSPENDING alone changes nothing');
  tick();
  aws.set(versions('db', { v1: ['AWSPREVIOUS'], v2: ['AWSCURRENT'] }));
  await detector.poll();
  assert.equal(changes.length, 2);
  const change = changes[1];
  assert.equal(change?.previous?.stages.get('AWSCURRENT'), 'v1');
  assert.equal(change?.secret.stages.get('AWSCURRENT'), 'v2');
  assert.equal(change?.source, 'poll');
  assert.equal(change?.changedAfter, 1_001, 'a poll-detected change happened after the previous poll');
  assert.equal(detector.observed(watch('db'))?.stages.get('AWSCURRENT'), 'v2');
  assert.ok(
    aws.calls.every((call) => call.api === 'ListSecrets'),
    'polling never describes or reads',
  );
});

test('a first observation is a change when it differs from the synced version (a change while no leader ran)', async () => {
  const { aws, changes, detector, tick } = setup([watch('db'), watch('api'), watch('new')], {
    db: { AWSCURRENT: 'v1' },
    api: { AWSCURRENT: 'a2' },
  });
  aws.set(versions('db', { v1: ['AWSPREVIOUS'], v2: ['AWSCURRENT'] }));
  aws.set(versions('api', { a1: ['AWSPREVIOUS'], a2: ['AWSCURRENT'] }));
  aws.set(versions('new', { n1: ['AWSCURRENT'] }));
  await detector.poll();
  const byName = new Map(changes.map((change) => [change.secret.name, change]));
  assert.equal(
    byName.get('db')?.previous?.stages.get('AWSCURRENT'),
    'v1',
    'synced v1, AWS holds v2: a change',
  );
  assert.equal(byName.get('db')?.secret.stages.get('AWSCURRENT'), 'v2');
  assert.equal(byName.get('api')?.previous, undefined, 'synced what AWS holds: a baseline');
  assert.equal(byName.get('new')?.previous, undefined, 'nothing synced yet: a baseline');
  tick();
  await detector.poll();
  assert.equal(changes.length, 3, 'the next poll compares with the observation, not the record');
});

test('a first hint that differs from the synced version is a change', async () => {
  const { aws, changes, detector } = setup([watch('db')], { db: { AWSCURRENT: 'v1' } });
  aws.set(versions('db', { v1: ['AWSPREVIOUS'], v2: ['AWSCURRENT'] }));
  assert.equal(
    await detector.hint({ region: 'us-east-1', secretId: 'db', reason: 'PutSecretValue' }),
    'changed',
  );
  assert.equal(changes[0]?.previous?.stages.get('AWSCURRENT'), 'v1');
});

test('a pinned label is followed; a fixed version only for deletion', async () => {
  const { aws, changes, detector, tick } = setup([watch('db', 'blue'), watch('api', null)]);
  aws.set(versions('db', { v1: ['AWSCURRENT', 'blue'] }));
  aws.set(versions('api', { a1: ['AWSCURRENT'] }));
  await detector.poll();
  tick();
  aws.set(versions('db', { v1: ['AWSPREVIOUS', 'blue'], v2: ['AWSCURRENT'] }));
  aws.set(versions('api', { a1: ['AWSPREVIOUS'], a2: ['AWSCURRENT'] }));
  await detector.poll();
  assert.equal(changes.length, 2, 'AWSCURRENT moving matters to neither');
  tick();
  aws.set(versions('db', { v1: ['AWSPREVIOUS'], v2: ['AWSCURRENT', 'blue'] }));
  aws.remove('api');
  await detector.poll();
  const moved = changes.filter((change) => change.previous);
  assert.deepEqual(
    moved.map((change) => [
      change.secret.name,
      change.secret.stages.get('blue') ?? null,
      change.secret.deleted,
    ]),
    [
      ['db', 'v2', false],
      ['api', null, true],
    ],
  );
});

test('a secret scheduled for deletion, then restored, is two changes', async () => {
  const { aws, changes, detector, tick } = setup([watch('db')]);
  aws.set(versions('db', { v1: ['AWSCURRENT'] }));
  await detector.poll();
  tick();
  aws.set(versions('db', { v1: ['AWSCURRENT'] }, true));
  await detector.poll();
  tick();
  aws.set(versions('db', { v1: ['AWSCURRENT'] }));
  await detector.poll();
  assert.deepEqual(
    changes.map((change) => change.secret.deleted),
    [false, true, false],
  );
});

test('hints: unwatched secrets cost nothing; a hint is confirmed once, duplicates are no-ops', async () => {
  const { aws, changes, detector, tick } = setup([watch('db')]);
  aws.set(versions('db', { v1: ['AWSCURRENT'] }));
  await detector.poll();
  assert.equal(await detector.hint({ secretId: 'other', reason: 'PutSecretValue' }), 'unwatched');
  assert.equal(aws.calls.filter((call) => call.api === 'DescribeSecret').length, 0);
  tick();
  aws.set(versions('db', { v1: ['AWSPREVIOUS'], v2: ['AWSCURRENT'] }));
  const hint = { secretId: 'db', arn: arnOf('db'), region: 'us-east-1', reason: 'PutSecretValue' };
  assert.equal(await detector.hint({ ...hint, eventTime: new Date(900) }), 'changed');
  tick();
  assert.equal(await detector.hint(hint), 'unchanged');
  assert.equal(await detector.hint({ ...hint, region: 'eu-west-1' }), 'unwatched', 'another region');
  assert.equal(changes.length, 2);
  assert.equal(changes[1]?.source, 'event');
  assert.equal(changes[1]?.changedAfter, 900);
  assert.deepEqual(
    aws.calls.filter((call) => call.api === 'DescribeSecret').map((call) => call.ids),
    [[arnOf('db')], [arnOf('db')]],
  );
});

test('a hint naming the secret by its ARN matches a watch by name once the secret was seen', async () => {
  const { aws, changes, detector, tick } = setup([watch('db')]);
  aws.set(versions('db', { v1: ['AWSCURRENT'] }));
  await detector.poll();
  tick();
  aws.set(versions('db', { v2: ['AWSCURRENT'] }));
  assert.equal(await detector.hint({ secretId: arnOf('db'), reason: 'UpdateSecretVersionStage' }), 'changed');
  assert.equal(changes.length, 2);
});

test('a hint for a deleted secret is a deletion; a transient failure is thrown for the queue to retry', async () => {
  const { aws, changes, detector, tick } = setup([watch('db')]);
  aws.set(versions('db', { v1: ['AWSCURRENT'] }));
  await detector.poll();
  tick();
  aws.fail(new TransientError('DescribeSecret db: HTTP 503'));
  await assert.rejects(detector.hint({ secretId: 'db', reason: 'DeleteSecret' }), TransientError);
  aws.fail(undefined);
  aws.remove('db');
  assert.equal(await detector.hint({ secretId: 'db', reason: 'DeleteSecret' }), 'changed');
  assert.equal(changes.at(-1)?.secret.deleted, true);
});

test('an older read never overwrites a newer one (a slow poll cannot undo an event)', async () => {
  const { aws, changes, detector, tick } = setup([watch('db')]);
  aws.set(versions('db', { v1: ['AWSCURRENT'] }));
  await detector.poll();
  // A poll starts and reads v1, but its answer arrives only after an event's describe saw v2.
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const list = aws.reader.listSecretVersions.bind(aws.reader);
  aws.reader.listSecretVersions = async (region, options) => {
    const answer = await list(region, options);
    await gate;
    return answer;
  };
  tick();
  const slowPoll = detector.poll();
  await new Promise((resolve) => setImmediate(resolve));
  tick();
  aws.set(versions('db', { v1: ['AWSPREVIOUS'], v2: ['AWSCURRENT'] }));
  assert.equal(await detector.hint({ secretId: 'db', reason: 'PutSecretValue' }), 'changed');
  release();
  await slowPoll;
  assert.deepEqual(
    changes.map((change) => change.secret.stages.get('AWSCURRENT')),
    ['v1', 'v2'],
    'no flap back to v1',
  );
});

test('few secrets: a name-filtered listing; many: one full listing (fewer calls)', async () => {
  const few = setup([watch('a'), watch(arnOf('b'))]);
  await few.detector.poll();
  assert.deepEqual(few.aws.calls, [{ api: 'ListSecrets', ids: ['a', arnOf('b')] }]);
  const many = setup(Array.from({ length: 120 }, (_, index) => watch(`s${index}`)));
  await many.detector.poll();
  await many.detector.poll();
  assert.deepEqual(many.aws.calls, [{ api: 'ListSecrets' }, { api: 'ListSecrets' }]);
});

test('a failed poll is retried next round; sinks that throw do not stop the others', async () => {
  const aws = fakeAws();
  const seen: string[] = [];
  const detector = createDetector({
    reader: aws.reader,
    watches: () => [watch('db')],
    sinks: [
      {
        secretChanged: () => {
          throw new Error('boom');
        },
      },
      { secretChanged: (change) => void seen.push(change.secret.name) },
    ],
    logger: silentLogger(),
  });
  aws.set(versions('db', { v1: ['AWSCURRENT'] }));
  aws.fail(new TransientError('ListSecrets: HTTP 500'));
  await detector.poll();
  assert.equal(detector.observed(watch('db')), undefined);
  aws.fail(undefined);
  await detector.poll();
  assert.deepEqual(seen, ['db']);
});
