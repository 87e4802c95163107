import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../core/log.ts';
import { KubeHttpError } from './api-errors.ts';
import type { ListResult, ListWatchSource } from './informer.ts';
import type { ResourceKind } from './kinds.ts';
import type { LeaseRecord } from './lease.ts';
import { createManager, type ManagerOptions } from './manager.ts';
import { manualClock, memoryLease } from './test-doubles.ts';

interface Thing {
  metadata: { name: string; namespace: string; resourceVersion: string; managedFields?: unknown[] };
}

const thing = (namespace: string, name: string): Thing => ({
  metadata: { name, namespace, resourceVersion: '1', managedFields: [{ manager: 'kubectl' }] },
});

const trim = (object: Thing): Thing => {
  delete object.metadata.managedFields;
  return object;
};
const things: ResourceKind<Thing> = {
  apiVersion: 'x.dev/v1',
  kind: 'Thing',
  plural: 'things',
  transform: trim,
};
const widgets: ResourceKind<Thing> = { apiVersion: 'x.dev/v1', kind: 'Widget', plural: 'widgets' };

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

/** Sources whose lists the test answers when it wants; watches stay open until aborted. */
function fakeSources(items: (namespace: string | undefined) => Thing[]) {
  const opened: string[] = [];
  const pending: Array<() => void> = [];
  const log: string[] = [];
  let holdLists = false;
  const refused = new Set<string>();
  const sourceFor = <T>(kind: ResourceKind<T>, namespace: string | undefined): ListWatchSource<T> => {
    const name = `${kind.plural}${kind.labelSelector ? `?${kind.labelSelector}` : ''}@${namespace ?? '*'}`;
    opened.push(name);
    return {
      list: () =>
        new Promise<ListResult<T>>((resolve, reject) => {
          if (refused.has(kind.plural)) {
            reject(new KubeHttpError('GET', `/${kind.plural}`, 403, { reason: 'Forbidden' }));
            return;
          }
          const answer = () => resolve({ items: items(namespace) as T[], resourceVersion: '1' });
          if (holdLists) pending.push(answer);
          else answer();
        }),
      watch: async () => ({ abort: () => log.push(`watch ${name} ended`) }),
    };
  };
  return {
    sourceFor,
    opened,
    log,
    hold() {
      holdLists = true;
    },
    /** Lists of `plural` are refused (403) until granted. */
    refuse(plural: string) {
      refused.add(plural);
    },
    grant(plural: string) {
      refused.delete(plural);
    },
    answerLists() {
      for (const answer of pending.splice(0)) answer();
    },
  };
}

function managerWith(extra: Partial<ManagerOptions> & Pick<ManagerOptions, 'sourceFor'>) {
  return createManager({ kubeConfig: new KubeConfig(), logger: silentLogger(), ...extra });
}

describe('manager: shared informers', () => {
  it('returns one informer per kind, one watch per namespace, trimmed once for every reader', async () => {
    const sources = fakeSources((namespace) => [thing(namespace ?? 'a', 'one')]);
    const manager = managerWith({ sourceFor: sources.sourceFor, namespaces: ['a', 'b'] });
    const first = manager.informer(things);
    const second = manager.informer(things);
    assert.equal(first, second, 'the same informer for the same kind');
    manager.informer({ ...things, labelSelector: 'tier=x' });
    assert.deepEqual(sources.opened, ['things@a', 'things@b', 'things?tier=x@a', 'things?tier=x@b']);

    const seen: string[] = [];
    first.addHandlers({ add: (object) => seen.push(`first ${object.metadata.namespace}`) });
    second.addHandlers({ add: (object) => seen.push(`second ${object.metadata.namespace}`) });
    await manager.start();
    assert.deepEqual(seen.sort(), ['first a', 'first b', 'second a', 'second b']);
    assert.equal(first.get('b', 'one')?.metadata.namespace, 'b');
    assert.equal(first.get('c', 'one'), undefined, 'a namespace out of scope is not looked up');
    assert.equal(first.get('a', 'one')?.metadata.managedFields, undefined, 'trimmed');
    assert.equal(first.list().length, 2);
    await manager.stop(100);
  });

  it('watches a cluster-scoped kind once, cluster-wide, even when serving some namespaces', async () => {
    const sources = fakeSources((namespace) =>
      namespace === undefined
        ? [{ metadata: { name: 'cluster-one', resourceVersion: '1' } } as unknown as Thing]
        : [],
    );
    const manager = managerWith({ sourceFor: sources.sourceFor, namespaces: ['a', 'b'] });
    const clusterThings = manager.informer({ ...things, plural: 'clusterthings', clusterScoped: true });
    assert.deepEqual(sources.opened, ['clusterthings@*']);
    await manager.start();
    assert.equal(clusterThings.get('', 'cluster-one')?.metadata.name, 'cluster-one');
    assert.equal(clusterThings.list().length, 1);
    await manager.stop(100);
  });

  it('hands a handler added after the first list what is cached, as adds', async () => {
    const sources = fakeSources((namespace) => [thing(namespace ?? 'a', 'one')]);
    const manager = managerWith({ sourceFor: sources.sourceFor, namespaces: ['a', 'b'] });
    const informer = manager.informer(things);
    await manager.start();
    const seen: string[] = [];
    informer.addHandlers({ add: (object) => seen.push(object.metadata.namespace) });
    assert.deepEqual(seen.sort(), ['a', 'b']);
    await manager.stop(100);
  });

  it('refuses the same kind with another trim (one kind, one trim)', () => {
    const manager = managerWith({ sourceFor: fakeSources(() => []).sourceFor });
    manager.informer(things);
    assert.throws(
      () => manager.informer({ ...things, transform: (object: Thing) => object }),
      /x\.dev\/v1\/things is already watched with another transform/,
    );
  });

  it('asks whether a CRD is served once, and gives up the question on stop', async () => {
    let asked = 0;
    const manager = managerWith({
      sourceFor: fakeSources(() => []).sourceFor,
      served: (_resource, signal) => {
        asked += 1;
        return new Promise((resolve) => signal.addEventListener('abort', () => resolve(undefined)));
      },
    });
    const resource = { group: 'x.dev', version: 'v1', plural: 'things' };
    const first = manager.served(resource);
    assert.equal(manager.served(resource), first);
    assert.equal(asked, 1);
    await manager.stop(100);
    assert.equal(await first, undefined);
  });
});

describe('manager: readiness', () => {
  it('is ready only once every cache listed, and every runnable says so', async () => {
    const sources = fakeSources(() => [thing('a', 'one')]);
    sources.hold();
    const manager = managerWith({ sourceFor: sources.sourceFor });
    let keyLoaded = false;
    const order: string[] = [];
    const controller = manager.controller('test');
    controller.run({
      prepare: async () => {
        controller.informer(things);
        order.push('prepare');
      },
      cachesSynced: () => order.push(`synced with ${manager.informer(things).list().length}`),
      get ready() {
        return keyLoaded;
      },
    });
    const started = manager.start();
    await settle();
    assert.equal(manager.ready, false, 'not ready before the list');
    assert.deepEqual(order, ['prepare']);
    sources.answerLists();
    await started;
    assert.deepEqual(order, ['prepare', 'synced with 1']);
    assert.equal(manager.ready, false, 'a runnable not ready yet');
    keyLoaded = true;
    assert.equal(manager.ready, true);
    await manager.stop(100);
    assert.equal(manager.ready, false, 'not ready once stopping');
  });
});

/** A controller on `manager` reading `kinds`, recording its hooks and the keys its workers ran. */
function recordingController(
  manager: ReturnType<typeof managerWith>,
  name: string,
  kinds: readonly ResourceKind<Thing>[],
  log: string[],
) {
  const controller = manager.controller(name);
  for (const kind of kinds) controller.informer(kind);
  const pool = controller.workers({
    name,
    concurrency: 1,
    reconcile: async (key) => {
      log.push(`${name} reconciled ${key}`);
    },
  });
  controller.run({
    cachesSynced: () => log.push(`${name} synced`),
    startLeading: () => log.push(`${name} leading`),
  });
  return { controller, pool };
}

describe('manager: each controller waits for its own caches', () => {
  it('a list refused to one controller holds only it; the others run; it starts once granted', async () => {
    const clock = manualClock();
    const sources = fakeSources(() => [thing('a', 'one')]);
    sources.refuse('widgets');
    const manager = managerWith({ sourceFor: sources.sourceFor, clock });
    const log: string[] = [];
    const sync = recordingController(manager, 'sync', [things], log);
    const rotation = recordingController(manager, 'rotation', [things, widgets], log);
    let started = false;
    const starting = manager.start().then(() => {
      started = true;
    });
    await settle();
    sync.pool.queue.add('a/one');
    rotation.pool.queue.add('a/one');
    await settle();
    assert.deepEqual(log, ['sync synced', 'sync leading', 'sync reconciled a/one'], 'rotation is held');
    assert.equal(sync.controller.leading, true);
    assert.equal(rotation.controller.leading, false, 'rotation may not act before its caches listed');
    assert.equal(manager.ready, false);
    assert.equal(started, false, 'start resolves once every controller runs');
    assert.deepEqual(manager.readiness(), [
      { name: 'sync', ok: true, detail: 'ok' },
      {
        name: 'rotation',
        ok: false,
        detail:
          'waiting for its caches: forbidden: this identity may not list widgets; it needs RBAC list and watch there (retrying)',
      },
    ]);

    sources.grant('widgets');
    await clock.advance(60_000);
    await starting;
    assert.deepEqual(log.slice(3), ['rotation synced', 'rotation leading', 'rotation reconciled a/one']);
    assert.equal(manager.ready, true);
    await manager.stop(100);
  });

  it('a kind two controllers read holds both while it is refused', async () => {
    const clock = manualClock();
    const sources = fakeSources(() => []);
    sources.refuse('things');
    const manager = managerWith({ sourceFor: sources.sourceFor, clock });
    const log: string[] = [];
    recordingController(manager, 'sync', [things], log);
    recordingController(manager, 'rotation', [things, widgets], log);
    recordingController(manager, 'write-through', [widgets], log);
    void manager.start();
    await settle();
    assert.deepEqual(log, ['write-through synced', 'write-through leading']);
    assert.deepEqual(
      manager.readiness().map((check) => `${check.name} ${check.ok}`),
      ['sync false', 'rotation false', 'write-through true'],
    );
    sources.grant('things');
    await clock.advance(60_000);
    assert.deepEqual(log.slice(2).sort(), [
      'rotation leading',
      'rotation synced',
      'sync leading',
      'sync synced',
    ]);
    await manager.stop(100);
  });

  it('names a CRD probe a controller waits for; a controller added once the CRD is served is gated on its own caches', async () => {
    const sources = fakeSources(() => [thing('a', 'one')]);
    sources.hold();
    let answer: (served: boolean) => void = () => {};
    const manager = managerWith({
      sourceFor: sources.sourceFor,
      served: (_resource, _signal, onProblem) => {
        onProblem(
          'forbidden: this identity may not list widgets.x.dev in namespace a; it needs RBAC list and watch there (retrying)',
        );
        return new Promise((resolve) => {
          answer = resolve;
        });
      },
    });
    const log: string[] = [];
    const probe = manager.controller('widgets-probe');
    probe.run({
      async prepare() {
        if (!(await probe.served({ group: 'x.dev', version: 'v1', plural: 'widgets' }))) return;
        // As the ClusterSecretSync controller does: its own controller, added while the manager starts.
        recordingController(manager, 'widgets', [widgets], log);
      },
    });
    void manager.start();
    await settle();
    assert.deepEqual(manager.readiness(), [
      {
        name: 'widgets-probe',
        ok: false,
        detail:
          'waiting to learn whether widgets.x.dev is served: forbidden: this identity may not list widgets.x.dev in namespace a; it needs RBAC list and watch there (retrying)',
      },
    ]);
    answer(true);
    await settle();
    assert.deepEqual(log, [], 'not before its list');
    assert.equal(manager.readiness()[1]?.detail, 'waiting for its caches: widgets (listing)');
    sources.answerLists();
    await settle();
    assert.deepEqual(log, ['widgets synced', 'widgets leading']);
    assert.equal(manager.ready, true);
    await manager.stop(100);
  });

  it('with a Lease: a controller leads only once it runs, after its cachesSynced', async () => {
    const clock = manualClock();
    const sources = fakeSources(() => []);
    sources.refuse('widgets');
    const manager = managerWith({
      sourceFor: sources.sourceFor,
      leaderElection: { namespace: 'smk', name: 'smk-controller', identity: 'me' },
      leaseStore: memoryLease().store,
      clock,
    });
    const log: string[] = [];
    recordingController(manager, 'sync', [things], log);
    recordingController(manager, 'rotation', [widgets], log);
    void manager.start();
    await settle();
    assert.equal(manager.leading, true, 'campaigning does not wait for every cache');
    assert.deepEqual(log, ['sync synced', 'sync leading']);
    sources.grant('widgets');
    await clock.advance(60_000);
    assert.deepEqual(log, ['sync synced', 'sync leading', 'rotation synced', 'rotation leading']);
    await manager.stop(100);
  });
});

describe('manager: leader election', () => {
  it('runs workers only while this replica holds the Lease; caches are warm meanwhile', async () => {
    const clock = manualClock();
    const lease = memoryLease({
      holderIdentity: 'other',
      leaseDurationSeconds: 12,
      leaseTransitions: 0,
      renewTime: new Date(clock.now()),
    });
    const manager = managerWith({
      sourceFor: fakeSources(() => [thing('a', 'one')]).sourceFor,
      leaderElection: { namespace: 'smk', name: 'smk-controller', identity: 'me' },
      leaseStore: lease.store,
      clock,
    });
    const reconciled: string[] = [];
    const controller = manager.controller('test');
    const pool = controller.workers({
      name: 'test',
      concurrency: 2,
      reconcile: async (key) => {
        reconciled.push(key);
      },
    });
    const started: string[] = [];
    controller.run({ startLeading: () => started.push('leading') });
    await manager.start();
    pool.queue.add('a/one');
    await settle();
    assert.equal(manager.ready, true, 'a standby is ready: its caches are synced');
    assert.equal(manager.leading, false);
    assert.deepEqual(reconciled, [], 'a standby does not work');

    await clock.advance(15_000);
    assert.equal(lease.holder, 'me', 'took the Lease once the holder stopped renewing');
    assert.equal(manager.leading, true);
    assert.deepEqual(started, ['leading']);
    assert.deepEqual(reconciled, ['a/one'], 'the queued key ran once leading');
    await manager.stop(100);
  });

  it('on losing the Lease stops taking work and says so', async () => {
    const clock = manualClock();
    const lease = memoryLease();
    let lost = 0;
    const manager = managerWith({
      sourceFor: fakeSources(() => []).sourceFor,
      leaderElection: { namespace: 'smk', name: 'smk-controller', identity: 'me' },
      leaseStore: lease.store,
      clock,
      onLostLeadership: () => {
        lost += 1;
      },
    });
    const reconciled: string[] = [];
    const controller = manager.controller('test');
    const pool = controller.workers({
      name: 'test',
      concurrency: 1,
      reconcile: async (key) => {
        reconciled.push(key);
      },
    });
    await manager.start();
    await settle();
    assert.equal(manager.leading, true);
    // Another replica takes the Lease over (e.g. this one was partitioned away).
    const current = await lease.store.get();
    await lease.store.update({ ...(current as LeaseRecord), holderIdentity: 'other' });
    await clock.advance(2_000);
    assert.equal(manager.leading, false);
    assert.equal(lost, 1);
    pool.queue.add('a/late');
    await settle();
    assert.deepEqual(reconciled, [], 'no work after the Lease is gone');
    await manager.stop(100);
  });
});

describe('manager: stop', () => {
  it('stops taking work, lets the key in flight finish, then releases the Lease, then ends the watches', async () => {
    const clock = manualClock();
    const lease = memoryLease();
    const sources = fakeSources(() => []);
    const log = sources.log;
    const manager = managerWith({
      sourceFor: sources.sourceFor,
      leaderElection: { namespace: 'smk', name: 'smk-controller', identity: 'me' },
      leaseStore: lease.store,
      clock,
    });
    manager.informer(things);
    let finish: () => void = () => {};
    const controller = manager.controller('test');
    const pool = controller.workers({
      name: 'test',
      concurrency: 1,
      reconcile: async (key) => {
        log.push(`${key} started`);
        await new Promise<void>((resolve) => {
          finish = resolve;
        });
        log.push(`${key} finished`);
      },
    });
    controller.run({ stopLeading: () => void log.push('timers stopped') });
    await manager.start();
    await settle();
    pool.queue.add('a/one');
    await settle();
    const stopped = manager.stop(10_000);
    pool.queue.add('a/two');
    await settle();
    finish();
    await stopped;
    const released = lease.log.length === 1 ? 'lease released' : 'lease kept';
    assert.deepEqual(
      [...log.slice(0, 3), released, ...log.slice(3)],
      ['a/one started', 'timers stopped', 'a/one finished', 'lease released', 'watch things@* ended'],
    );
    assert.equal(lease.holder, '', 'a standby need not wait for the Lease to expire');
  });
});
