import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessDeniedError, NotFoundError, type SmkError, ThrottledError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import type { SecretRequest } from '../../core/source.ts';
import type { IdentityResolver } from '../identity.ts';
import { createPermissions, type PermissionSubject } from './permissions.ts';

/** Identities whose DescribeSecret answers as `answers` says for `namespace/account` (ok, or an error). */
function identities(answers: Record<string, 'ok' | SmkError>) {
  const asked: string[] = [];
  const resolver: IdentityResolver = {
    async resolve(namespace, serviceAccountName) {
      const who = `${namespace}/${serviceAccountName}`;
      if (answers[who] === undefined) throw new NotFoundError(`ServiceAccount ${who} not found`);
      return {
        roleArn: `arn:aws:iam::123456789012:role/${serviceAccountName}`,
        sessionName: who,
        reader: {
          read: async () => [],
          async describe(request: SecretRequest) {
            asked.push(`${who} ${request.region} ${request.id}`);
            const answer = answers[who];
            if (answer !== 'ok') throw answer;
            return { arn: `arn:${request.id}`, name: request.id, versionsToStages: new Map() };
          },
        },
      };
    },
  };
  return { resolver, asked };
}

/** Timers run by hand: `runAll()` runs the pending ones (not those cleared). */
function manualTimers() {
  const pending: Array<{ run: () => void; ms: number; cleared: boolean }> = [];
  const delays: number[] = [];
  return {
    set(run: () => void, ms: number) {
      const timer = { run, ms, cleared: false };
      pending.push(timer);
      delays.push(ms);
      return { clear: () => (timer.cleared = true) };
    },
    /** Every delay asked for, in order. */
    delays: () => [...delays],
    runAll() {
      const due = pending.splice(0).filter((timer) => !timer.cleared);
      for (const timer of due) timer.run();
      return due.length;
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

const subject = (namespace: string, serviceAccountName = 'app'): PermissionSubject => ({
  namespace,
  serviceAccountName,
  region: 'us-east-1',
  id: 'team-a/db',
});

describe('what a namespace may know of a secret', () => {
  it("is its own identity's DescribeSecret: allowed, refused, not found for it, no account", async () => {
    const { resolver, asked } = identities({
      'team-a/app': 'ok',
      'team-b/app': new AccessDeniedError('not authorized to DescribeSecret'),
      'team-c/app': new NotFoundError('secret team-a/db not found'),
    });
    const permissions = createPermissions({ identities: resolver, logger: silentLogger() });
    assert.equal(await permissions.check(subject('team-a')), true);
    assert.equal(await permissions.check(subject('team-b')), false);
    assert.equal(await permissions.check(subject('team-c')), false);
    assert.equal(await permissions.check(subject('team-d')), false, 'no such ServiceAccount');
    assert.deepEqual(asked, [
      'team-a/app us-east-1 team-a/db',
      'team-b/app us-east-1 team-a/db',
      'team-c/app us-east-1 team-a/db',
    ]);
  });

  it('is asked once per TTL; known() starts a check and answers undefined until it is known', async () => {
    let clock = 0;
    const changes: string[] = [];
    const { resolver, asked } = identities({ 'team-a/app': 'ok' });
    const permissions = createPermissions({
      identities: resolver,
      logger: silentLogger(),
      ttlMs: 1000,
      now: () => clock,
      onChange: (changed, allowed) => changes.push(`${changed.namespace} ${allowed}`),
    });
    assert.equal(permissions.known(subject('team-a')), undefined);
    assert.equal(await permissions.check(subject('team-a')), true, 'the same check, not a second');
    assert.equal(permissions.known(subject('team-a')), true);
    assert.equal(asked.length, 1);
    assert.deepEqual(changes, ['team-a true']);
    clock = 1000;
    assert.equal(await permissions.check(subject('team-a')), true);
    assert.equal(asked.length, 2, 'asked again after the TTL');
    assert.deepEqual(changes, ['team-a true'], 'the same answer is no change');
  });

  it('a revoked grant is a change; a passing failure is never remembered as a refusal', async () => {
    let clock = 0;
    const changes: boolean[] = [];
    const answers: Record<string, 'ok' | SmkError> = { 'team-a/app': 'ok' };
    const { resolver, asked } = identities(answers);
    const permissions = createPermissions({
      identities: resolver,
      logger: silentLogger(),
      ttlMs: 1000,
      retryMs: 100,
      now: () => clock,
      setTimer: manualTimers().set,
      onChange: (_, allowed) => changes.push(allowed),
    });
    assert.equal(await permissions.check(subject('team-a')), true);
    answers['team-a/app'] = new ThrottledError('slow down');
    clock = 1000;
    assert.equal(await permissions.check(subject('team-a')), true, 'throttled: the last answer holds');
    assert.equal(await permissions.check(subject('team-a')), true, 'and is not asked again at once');
    assert.equal(asked.length, 2);
    answers['team-a/app'] = new AccessDeniedError('revoked');
    clock = 1100;
    assert.equal(await permissions.check(subject('team-a')), false);
    assert.deepEqual(changes, [true, false]);
  });

  it('with nothing known, a passing failure answers no, and asks again later', async () => {
    let clock = 0;
    const answers: Record<string, 'ok' | SmkError> = { 'team-a/app': new ThrottledError('slow down') };
    const { resolver } = identities(answers);
    const permissions = createPermissions({
      identities: resolver,
      logger: silentLogger(),
      retryMs: 100,
      firstRetryMs: 100,
      now: () => clock,
      setTimer: manualTimers().set,
    });
    assert.equal(await permissions.check(subject('team-a')), false);
    answers['team-a/app'] = 'ok';
    assert.equal(await permissions.check(subject('team-a')), false, 'not before retryMs');
    clock = 100;
    assert.equal(await permissions.check(subject('team-a')), true);
  });

  it('asks again by itself after a passing failure, 1 s then doubling up to retryMs; the answer is a change', async () => {
    let clock = 0;
    const timers = manualTimers();
    const changes: boolean[] = [];
    const answers: Record<string, 'ok' | SmkError> = { 'team-a/app': new ThrottledError('slow down') };
    const { resolver, asked } = identities(answers);
    const permissions = createPermissions({
      identities: resolver,
      logger: silentLogger(),
      retryMs: 5_000,
      now: () => clock,
      setTimer: timers.set,
      onChange: (_, allowed) => changes.push(allowed),
    });
    assert.equal(await permissions.check(subject('team-a')), false);
    for (let round = 0; round < 4; round++) {
      clock += 10_000;
      assert.equal(timers.runAll(), 1, 'one re-ask scheduled');
      await settle();
    }
    assert.deepEqual(timers.delays(), [1_000, 2_000, 4_000, 5_000, 5_000], 'doubling, capped');
    assert.equal(asked.length, 5, 'nobody looked: the re-asks asked by themselves');
    assert.deepEqual(changes, [], 'a passing failure is no answer');
    answers['team-a/app'] = 'ok';
    timers.runAll();
    await settle();
    assert.deepEqual(
      changes,
      [true],
      'the answer, once it comes, is a change: what depends on it is planned again',
    );
    assert.equal(permissions.known(subject('team-a')), true);
    assert.equal(timers.runAll(), 0, 'no re-ask after an answer');
  });

  it('stop() cancels the scheduled re-asks', async () => {
    const timers = manualTimers();
    const { resolver, asked } = identities({ 'team-a/app': new ThrottledError('slow down') });
    const permissions = createPermissions({
      identities: resolver,
      logger: silentLogger(),
      setTimer: timers.set,
    });
    await permissions.check(subject('team-a'));
    permissions.stop();
    assert.equal(timers.runAll(), 0);
    assert.equal(asked.length, 1);
  });

  it('keeps at most maxEntries answers', async () => {
    const { resolver, asked } = identities({ 'a/app': 'ok', 'b/app': 'ok', 'c/app': 'ok' });
    const permissions = createPermissions({ identities: resolver, logger: silentLogger(), maxEntries: 2 });
    for (const namespace of ['a', 'b', 'c']) await permissions.check(subject(namespace));
    await permissions.check(subject('a'));
    assert.equal(asked.length, 4, 'the oldest answer was dropped and asked again');
  });
});
