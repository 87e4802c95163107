/**
 * Where a supervised informer (./informer.ts) gets its objects from the API server: a paged LIST
 * and a WATCH with bookmarks, both through the project's undici transport (./http.ts). Given an
 * in-cluster KubeEndpoint this never loads client-node, so the webhook's write-through Secret
 * cache costs the webhook no client-node modules; given a KubeConfig it uses that config's pooled
 * connection and credentials. Objects stay plain JSON, in the list as in watch events.
 */
import { KubeHttpError } from './api-errors.ts';
import type { KubeAccess } from './endpoint.ts';
import { createKubeHttp, type KubeHttp, listPage } from './http.ts';
import { describeResource, type ListWatchSource, type WatchEventType } from './informer.ts';

/** One page of a LIST, as the API server sends it. */
export interface ListPage<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

export interface PageRequest {
  readonly limit: number;
  readonly continueToken: string | undefined;
  readonly labelSelector: string | undefined;
}

export type Lister<T> = (request: PageRequest) => Promise<ListPage<T>>;

export interface ApiSourceOptions<T> {
  /**
   * The collection (from resourcePath), listed and watched: `/apis/smk.dev/v1alpha1/secretsyncs`,
   * `/api/v1/namespaces/a/secrets`. A LIST and a WATCH of one collection have the same path.
   */
  readonly path: string;
  readonly labelSelector?: string;
  /** Objects per list page. */
  readonly pageSize?: number;
  /** Lists instead of a GET of `path` (unit tests script pages with it). */
  readonly list?: Lister<T>;
}

const watchEventTypes: ReadonlySet<string> = new Set<WatchEventType>([
  'ADDED',
  'MODIFIED',
  'DELETED',
  'BOOKMARK',
  'ERROR',
]);

/**
 * A ListWatchSource over the API server: paged LIST, WATCH with bookmarks and a server-side
 * timeout, so a stream is renewed every few minutes even when all is quiet.
 */
export function apiSource<T>(access: KubeAccess, options: ApiSourceOptions<T>): ListWatchSource<T> {
  const http = createKubeHttp(access);
  const pageSize = options.pageSize ?? 500;
  const lister: Lister<T> = options.list ?? ((page) => listPage<T>(http, options.path, page));
  return {
    resource: describeResource(options.path, options.labelSelector),
    async list() {
      const items: T[] = [];
      let continueToken: string | undefined;
      let resourceVersion = '';
      do {
        const page = await lister({
          limit: pageSize,
          continueToken,
          labelSelector: options.labelSelector,
        });
        items.push(...page.items);
        resourceVersion = page.resourceVersion || resourceVersion;
        continueToken = page.continueToken;
      } while (continueToken);
      return { items, resourceVersion };
    },
    watch(resourceVersion, onEvent, onDone) {
      return watchStream(
        http,
        options.path,
        {
          watch: 'true',
          resourceVersion,
          allowWatchBookmarks: 'true',
          timeoutSeconds: String(240 + Math.floor(Math.random() * 120)),
          labelSelector: options.labelSelector,
        },
        (type, object) => onEvent(type, object as T),
        onDone,
      );
    },
  };
}

/**
 * One WATCH: newline-delimited JSON events ({type, object}) handed to `onEvent` as they arrive.
 * An error status is thrown (a KubeHttpError with the server's reason, never its text); once the
 * stream runs, its end is reported once to `onDone`: no error for a close by the server, by
 * `abort`, or after the stream stayed silent past the server's own timeout; else the error.
 */
export async function watchStream(
  http: Pick<KubeHttp, 'stream'>,
  path: string,
  query: Readonly<Record<string, string | undefined>> & { readonly timeoutSeconds: string },
  onEvent: (type: WatchEventType, object: unknown) => void,
  onDone: (error: unknown) => void,
): Promise<{ abort(): void }> {
  const aborter = new AbortController();
  // Bookmarks and events keep a stream busy; silence well past the server's own timeout is a dead peer.
  const body = await http.stream({
    path,
    query,
    signal: aborter.signal,
    bodyTimeoutMs: (Number(query.timeoutSeconds) + 30) * 1000,
  });
  let ended = false;
  const end = (error: unknown): void => {
    if (ended) return;
    ended = true;
    onDone(error);
  };
  const event = (line: string): void => {
    if (line.trim() === '') return;
    let parsed: { type?: unknown; object?: unknown };
    try {
      parsed = JSON.parse(line) as { type?: unknown; object?: unknown };
    } catch {
      // Never JSON.parse's message: it quotes the text, which may be a Secret's data.
      throw new KubeHttpError('GET', path, 200, { reason: 'NotJson' });
    }
    if (typeof parsed.type !== 'string' || !watchEventTypes.has(parsed.type)) {
      throw new KubeHttpError('GET', path, 200, { reason: 'UnknownWatchEvent' });
    }
    onEvent(parsed.type as WatchEventType, parsed.object);
  };
  void (async () => {
    let pending = '';
    try {
      body.setEncoding('utf8');
      for await (const chunk of body as AsyncIterable<string>) {
        if (ended) break;
        pending += chunk;
        let newline = pending.indexOf('\n');
        while (newline >= 0 && !ended) {
          event(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
        }
      }
      if (!ended) event(pending);
      end(undefined);
    } catch (error) {
      const timedOut = (error as { name?: string } | null)?.name === 'BodyTimeoutError';
      end(aborter.signal.aborted || timedOut ? undefined : error);
    } finally {
      body.destroy();
    }
  })();
  return {
    abort() {
      end(undefined);
      aborter.abort();
    },
  };
}
