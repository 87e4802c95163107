/**
 * The informer's source over the undici transport, against a local HTTP server that answers as
 * the API server does: paged lists, watch streams of newline-delimited events cut at any byte,
 * bookmarks, a 410 Gone that makes the informer relist, refusals, and a stream that is not JSON.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KubeHttpError } from './api-errors.ts';
import { apiSource } from './api-source.ts';
import { KubeEndpoint } from './endpoint.ts';
import { createInformer, type WatchEventType } from './informer.ts';

interface Thing {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly resourceVersion: string };
}

const thing = (name: string, resourceVersion: string): Thing => ({
  metadata: { name, namespace: 'a', resourceVersion },
});

type Handler = (request: IncomingMessage, url: URL, response: ServerResponse) => void;

describe('apiSource over the undici transport', () => {
  let server: Server;
  let endpoint: KubeEndpoint;
  let handler: Handler = (_request, _url, response) => response.end();
  const asked: URL[] = [];

  before(async () => {
    server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      asked.push(url);
      handler(request, url, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    endpoint = new KubeEndpoint(`http://127.0.0.1:${port}`, async () => ({
      dispatcher: undefined,
      headers: { authorization: 'Bearer test' },
    }));
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('lists page by page, then watches from the list with bookmarks, events cut at any byte', async () => {
    asked.length = 0;
    const lines = [
      { type: 'ADDED', object: thing('c', '11') },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } },
      { type: 'MODIFIED', object: thing('a', '13') },
      { type: 'DELETED', object: thing('b', '14') },
    ]
      .map((line) => JSON.stringify(line))
      .join('\n');
    handler = (_request, url, response) => {
      if (url.searchParams.get('watch') !== 'true') {
        const first = !url.searchParams.get('continue');
        response.end(
          JSON.stringify({
            items: first ? [thing('a', '1')] : [thing('b', '2')],
            metadata: { resourceVersion: '10', ...(first ? { continue: 'next' } : {}) },
          }),
        );
        return;
      }
      // Three bytes at a time: no event arrives whole in one chunk.
      response.writeHead(200, { 'content-type': 'application/json' });
      let at = 0;
      const timer = setInterval(() => {
        response.write(lines.slice(at, at + 3));
        at += 3;
        if (at >= lines.length) {
          clearInterval(timer);
          response.end('\n');
        }
      }, 0);
    };
    const source = apiSource<Thing>(endpoint, { path: '/api/v1/secrets', labelSelector: 'x=y', pageSize: 1 });
    const listed = await source.list();
    assert.deepEqual(
      listed.items.map((item) => item.metadata.name),
      ['a', 'b'],
    );
    assert.equal(listed.resourceVersion, '10');
    const events: string[] = [];
    const done = new Promise<unknown>((resolve) => {
      void source.watch(
        listed.resourceVersion,
        (type: WatchEventType, object) => {
          events.push(
            `${type} ${(object as Thing).metadata.name ?? ''}@${(object as Thing).metadata.resourceVersion}`,
          );
        },
        resolve,
      );
    });
    assert.equal(await done, undefined, 'a close by the server is no error');
    assert.deepEqual(events, ['ADDED c@11', 'BOOKMARK @12', 'MODIFIED a@13', 'DELETED b@14']);
    const [page1, page2, watch] = asked;
    assert.equal(page1?.searchParams.get('limit'), '1');
    assert.equal(page1?.searchParams.get('labelSelector'), 'x=y');
    assert.equal(page2?.searchParams.get('continue'), 'next');
    assert.equal(watch?.pathname, '/api/v1/secrets');
    assert.equal(watch?.searchParams.get('resourceVersion'), '10');
    assert.equal(watch?.searchParams.get('allowWatchBookmarks'), 'true');
    assert.equal(watch?.searchParams.get('labelSelector'), 'x=y');
    assert.ok(Number(watch?.searchParams.get('timeoutSeconds')) >= 240);
  });

  it('an informer relists after a 410 Gone in the stream, and keeps what the relist holds', async () => {
    let lists = 0;
    let watches = 0;
    handler = (_request, url, response) => {
      if (url.searchParams.get('watch') !== 'true') {
        lists += 1;
        const items = lists === 1 ? [thing('a', '1')] : [thing('b', '5')];
        response.end(JSON.stringify({ items, metadata: { resourceVersion: String(lists * 10) } }));
        return;
      }
      watches += 1;
      response.writeHead(200);
      if (watches === 1) {
        response.end(
          `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } })}\n`,
        );
      }
      // The second watch stays open until the informer stops.
    };
    const informer = createInformer(apiSource<Thing>(endpoint, { path: '/api/v1/things' }), {
      name: 'things',
    });
    await informer.start();
    for (let wait = 0; lists < 2 || watches < 2; wait += 1) {
      assert.ok(wait < 500, 'relisted and watching again');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(
      informer.list().map((item) => item.metadata.name),
      ['b'],
    );
    informer.stop();
  });

  it('a refused watch throws a KubeHttpError with the status and reason, never the body', async () => {
    handler = (_request, _url, response) => {
      response.writeHead(403, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'secret-ish text' }),
      );
    };
    const source = apiSource<Thing>(endpoint, { path: '/api/v1/secrets' });
    await assert.rejects(
      source.watch(
        '1',
        () => {},
        () => {},
      ),
      (error: unknown) => {
        assert.ok(error instanceof KubeHttpError);
        assert.equal(error.status, 403);
        assert.equal(error.reason, 'Forbidden');
        assert.doesNotMatch(error.message, /secret-ish/);
        return true;
      },
    );
  });

  it('a stream that is not JSON ends the watch with an error that does not quote it', async () => {
    handler = (_request, _url, response) => {
      response.writeHead(200);
      response.end('{"type":"ADDED","object":{"data":{"password":"hunter2"}}}\nnot json hunter2\n');
    };
    const source = apiSource<Thing>(endpoint, { path: '/api/v1/secrets' });
    const events: string[] = [];
    const error = await new Promise<unknown>((resolve) => {
      void source.watch('1', (type) => events.push(type), resolve);
    });
    assert.deepEqual(events, ['ADDED']);
    assert.ok(error instanceof KubeHttpError);
    assert.equal(error.reason, 'NotJson');
    assert.doesNotMatch(error.message, /hunter2/);
  });

  it('abort ends the stream and reports done once, without an error', async () => {
    handler = (_request, _url, response) => {
      response.writeHead(200);
      response.write(`${JSON.stringify({ type: 'ADDED', object: thing('a', '1') })}\n`);
    };
    const source = apiSource<Thing>(endpoint, { path: '/api/v1/secrets' });
    const done: unknown[] = [];
    let added = (): void => {};
    const firstEvent = new Promise<void>((resolve) => {
      added = resolve;
    });
    const handle = await source.watch(
      '1',
      () => added(),
      (error) => done.push(error),
    );
    await firstEvent;
    handle.abort();
    handle.abort();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(done, [undefined]);
  });
});
