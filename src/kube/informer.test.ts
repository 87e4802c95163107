import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeHttpError } from './api-errors.ts';
import { KubeEndpoint } from './endpoint.ts';
import { createInformer, type ListResult, type ListWatchSource, type WatchEventType } from './informer.ts';
import type { Clock } from './queue.ts';

interface Thing {
  metadata: { name: string; namespace: string; resourceVersion: string };
  value?: string;
}

function thing(name: string, resourceVersion: string, value = ''): Thing {
  return { metadata: { name, namespace: 'ns', resourceVersion }, value };
}

interface OpenWatch {
  readonly from: string;
  send(type: WatchEventType, object: Thing | { code: number }): void;
  end(error?: unknown): void;
  aborted: boolean;
}

/** A source whose list answers and watch streams the test drives by hand. */
function scriptedSource() {
  const lists: Array<ListResult<Thing> | Error> = [];
  const watches: OpenWatch[] = [];
  let listCalls = 0;
  const source: ListWatchSource<Thing> = {
    async list() {
      listCalls += 1;
      const next = lists.shift();
      if (next === undefined) throw new Error('no list scripted');
      if (next instanceof Error) throw next;
      return next;
    },
    async watch(from, onEvent, onDone) {
      const open: OpenWatch = {
        from,
        aborted: false,
        send: (type, object) => onEvent(type, object),
        end: (error) => onDone(error ?? null),
      };
      watches.push(open);
      return {
        abort() {
          open.aborted = true;
        },
      };
    },
  };
  return {
    source,
    lists,
    watches,
    get listCalls() {
      return listCalls;
    },
  };
}

function manualClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  let timers: Array<{ at: number; callback: () => void; live: boolean }> = [];
  return {
    now: () => now,
    schedule(callback, ms) {
      const timer = { at: now + ms, callback, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const next = timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        now = next.at;
        next.live = false;
        next.callback();
      }
      timers = timers.filter((t) => t.live);
      now = until;
    },
  };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function recorder() {
  const events: string[] = [];
  return {
    events,
    handlers: {
      add: (t: Thing) => events.push(`add ${t.metadata.name}@${t.metadata.resourceVersion}`),
      update: (t: Thing, old: Thing) =>
        events.push(
          `update ${t.metadata.name}@${old.metadata.resourceVersion}->${t.metadata.resourceVersion}`,
        ),
      delete: (t: Thing) => events.push(`delete ${t.metadata.name}`),
    },
  };
}

describe('supervised informer', () => {
  it('lists, then watches from the list resourceVersion and keeps the cache', async () => {
    const script = scriptedSource();
    script.lists.push({ items: [thing('a', '1'), thing('b', '2')], resourceVersion: '10' });
    const clock = manualClock();
    const informer = createInformer(script.source, { name: 't', clock });
    const seen = recorder();
    informer.addHandlers(seen.handlers);
    await informer.start();
    await settle();
    assert.equal(informer.synced, true);
    assert.equal(script.watches[0]?.from, '10');
    script.watches[0]?.send('MODIFIED', thing('a', '11', 'x'));
    script.watches[0]?.send('MODIFIED', thing('a', '11', 'x'));
    script.watches[0]?.send('DELETED', thing('b', '12'));
    script.watches[0]?.send('ADDED', thing('c', '13'));
    assert.deepEqual(seen.events, ['add a@1', 'add b@2', 'update a@1->11', 'delete b', 'add c@13']);
    assert.equal(informer.get('ns', 'a')?.value, 'x');
    assert.deepEqual(
      informer.list().map((t) => t.metadata.name),
      ['a', 'c'],
    );
    informer.stop();
  });

  it('resumes the watch from the last resourceVersion after a clean close', async () => {
    const script = scriptedSource();
    script.lists.push({ items: [], resourceVersion: '5' });
    const informer = createInformer(script.source, { name: 't', clock: manualClock() });
    await informer.start();
    await settle();
    script.watches[0]?.send('ADDED', thing('a', '7'));
    script.watches[0]?.send('BOOKMARK', { metadata: { name: '', namespace: '', resourceVersion: '9' } });
    script.watches[0]?.end();
    await settle();
    assert.equal(script.listCalls, 1, 'a clean close must not relist');
    assert.equal(script.watches[1]?.from, '9');
    informer.stop();
  });

  it('relists at once on 410 Gone, diffing the cache (deletes missed while away)', async () => {
    const script = scriptedSource();
    script.lists.push({ items: [thing('a', '1'), thing('b', '2')], resourceVersion: '10' });
    script.lists.push({ items: [thing('a', '20')], resourceVersion: '21' });
    const informer = createInformer(script.source, { name: 't', clock: manualClock() });
    const seen = recorder();
    informer.addHandlers(seen.handlers);
    await informer.start();
    await settle();
    script.watches[0]?.send('ERROR', { code: 410 });
    script.watches[0]?.end();
    await settle();
    assert.equal(script.listCalls, 2);
    assert.deepEqual(seen.events.slice(2), ['update a@1->20', 'delete b']);
    assert.equal(script.watches[1]?.from, '21');
    informer.stop();
  });

  it('restarts with backoff after a watch error and reports unhealthy meanwhile', async () => {
    const script = scriptedSource();
    script.lists.push({ items: [], resourceVersion: '1' });
    script.lists.push(new Error('connection refused'));
    script.lists.push({ items: [thing('a', '3')], resourceVersion: '3' });
    const clock = manualClock();
    const informer = createInformer(script.source, {
      name: 't',
      clock,
      restartBackoff: { baseMs: 100, maxMs: 1000, jitter: 0 },
    });
    await informer.start();
    await settle();
    script.watches[0]?.end(Object.assign(new Error('reset'), { statusCode: 500 }));
    assert.equal(informer.healthy, false);
    clock.advance(100);
    await settle();
    assert.equal(script.listCalls, 2, 'first retry lists and fails');
    assert.equal(informer.healthy, false);
    clock.advance(150);
    await settle();
    assert.equal(script.listCalls, 2, 'second retry waits twice as long');
    clock.advance(50);
    await settle();
    assert.equal(script.listCalls, 3);
    assert.equal(informer.healthy, true);
    assert.ok(informer.get('ns', 'a'));
    informer.stop();
  });

  it('relists periodically even when the watch looks fine', async () => {
    const script = scriptedSource();
    script.lists.push({ items: [thing('a', '1')], resourceVersion: '1' });
    script.lists.push({ items: [thing('a', '1'), thing('z', '4')], resourceVersion: '4' });
    const clock = manualClock();
    const informer = createInformer(script.source, { name: 't', clock, relistIntervalMs: 1000 });
    const seen = recorder();
    informer.addHandlers(seen.handlers);
    await informer.start();
    await settle();
    clock.advance(1000);
    await settle();
    assert.equal(script.watches[0]?.aborted, true, 'the old stream is closed');
    assert.deepEqual(seen.events, ['add a@1', 'add z@4'], 'an unchanged object is not re-announced');
    informer.stop();
  });

  it('the watchdog restarts a stream that went silent', async () => {
    const script = scriptedSource();
    script.lists.push({ items: [], resourceVersion: '1' });
    script.lists.push({ items: [], resourceVersion: '2' });
    const clock = manualClock();
    const informer = createInformer(script.source, { name: 't', clock, silenceMs: 1000 });
    await informer.start();
    await settle();
    clock.advance(500);
    script.watches[0]?.send('BOOKMARK', { metadata: { name: '', namespace: '', resourceVersion: '1' } });
    clock.advance(1000);
    await settle();
    assert.equal(script.listCalls, 1, 'a bookmark is a sign of life');
    clock.advance(1000);
    await settle();
    assert.equal(script.listCalls, 2);
    assert.equal(script.watches[0]?.aborted, true);
    informer.stop();
  });

  it('applies the transform to listed and watched objects before caching them', async () => {
    const script = scriptedSource();
    script.lists.push({ items: [thing('a', '1', 'big')], resourceVersion: '1' });
    const informer = createInformer(script.source, {
      name: 't',
      clock: manualClock(),
      transform: (t: Thing) => ({ ...t, value: t.value?.slice(0, 1) }),
    });
    const seen: string[] = [];
    informer.addHandlers({ add: (t) => seen.push(t.value ?? '') });
    await informer.start();
    await settle();
    script.watches[0]?.send('ADDED', thing('b', '2', 'large'));
    assert.deepEqual(seen, ['b', 'l']);
    assert.equal(informer.get('ns', 'a')?.value, 'b');
    informer.stop();
  });

  it('a failing handler does not stop the others', async () => {
    const script = scriptedSource();
    script.lists.push({ items: [thing('a', '1')], resourceVersion: '1' });
    const informer = createInformer(script.source, { name: 't', clock: manualClock() });
    const seen = recorder();
    informer.addHandlers({
      add() {
        throw new Error('boom');
      },
    });
    informer.addHandlers(seen.handlers);
    await informer.start();
    assert.deepEqual(seen.events, ['add a@1']);
    informer.stop();
  });
});

/** An API server never called: the lister is scripted. */
const unreachable = new KubeEndpoint('https://127.0.0.1:1', () => Promise.reject(new Error('not called')));

describe('apiSource', () => {
  it('follows continue tokens until the last page', async () => {
    const { apiSource } = await import('./api-source.ts');
    const pages = new Map<string | undefined, { items: Thing[]; next?: string }>([
      [undefined, { items: [thing('a', '1'), thing('b', '1')], next: 't1' }],
      ['t1', { items: [thing('c', '1')], next: 't2' }],
      ['t2', { items: [thing('d', '1')] }],
    ]);
    const asked: Array<string | undefined> = [];
    const source = apiSource<Thing>(unreachable, {
      path: '/apis/x/v1/things',
      labelSelector: 'app=x',
      list: async (request) => {
        asked.push(request.continueToken);
        assert.equal(request.labelSelector, 'app=x');
        const page = pages.get(request.continueToken);
        return { items: page?.items ?? [], resourceVersion: '42', continueToken: page?.next };
      },
    });
    const listed = await source.list();
    assert.deepEqual(
      listed.items.map((t) => t.metadata.name),
      ['a', 'b', 'c', 'd'],
    );
    assert.equal(listed.resourceVersion, '42');
    assert.deepEqual(asked, [undefined, 't1', 't2']);
  });
});

describe('a refused list', () => {
  it('names the verb and the resource (with scope and selector), and keeps retrying', async () => {
    const { Writable } = await import('node:stream');
    const { createLogger } = await import('../core/log.ts');
    const { apiSource } = await import('./api-source.ts');
    let text = '';
    const logger = createLogger({
      destination: new Writable({
        write(chunk, _encoding, done) {
          text += String(chunk);
          done();
        },
      }),
    });
    let calls = 0;
    const source = apiSource<Thing>(unreachable, {
      path: '/api/v1/secrets',
      labelSelector: 'smk.dev/write-through=true',
      list: async () => {
        calls += 1;
        throw new KubeHttpError('GET', '/api/v1/secrets', 403, { reason: 'Forbidden' });
      },
    });
    const clock = manualClock();
    const informer = createInformer(source, {
      name: 'write-through-secrets',
      logger,
      clock,
      restartBackoff: { baseMs: 100, maxMs: 1000, jitter: 0 },
    });
    void informer.start();
    await settle();
    clock.advance(100);
    await settle();
    informer.stop();
    logger.flush();
    assert.equal(calls, 2, 'retried after the backoff');
    assert.equal(informer.healthy, false);
    const line = JSON.parse(text.split('\n')[0] ?? '{}') as { level: string; msg: string };
    assert.equal(line.level, 'error');
    assert.equal(
      line.msg,
      'forbidden: this identity may not list secrets in all namespaces (label selector smk.dev/write-through=true); it needs RBAC list and watch there (retrying)',
    );
    assert.doesNotMatch(text, /Forbidden"}/, 'the server body is not copied');
  });

  it('describes namespaced and grouped resources', async () => {
    const { describeResource } = await import('./informer.ts');
    assert.equal(
      describeResource('/apis/smk.dev/v1alpha1/namespaces/team-a/secretsyncs'),
      'secretsyncs.smk.dev in namespace team-a',
    );
    assert.equal(describeResource('/apis/apps/v1/deployments'), 'deployments.apps in all namespaces');
    assert.equal(describeResource('/somewhere/else'), '/somewhere/else');
  });
});
