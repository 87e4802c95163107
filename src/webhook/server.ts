/**
 * The admission webhook's HTTPS server: `/mutate/pods`, `/mutate/secrets` (write-through, when
 * configured), `/healthz`, `/readyz`, `/metrics`.
 * Certificates are re-read when their files change (a rotated Secret mount), bodies are capped,
 * slow or broken clients time out, and malformed input gets a 400 — the process never crashes or
 * hangs on input. No AWS call happens here: the mutation is pure.
 *
 * Memory: review bodies are held to a budget (see `AdmissionBudget`), so a flood of the largest
 * requests the API server can send cannot push the process past its memory limit. Every smk
 * webhook is failurePolicy Fail, and an OOM-killed webhook would block pod creation for the
 * whole cluster; a request over budget is answered 429 at once instead, without reading its body.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../core/log.ts';
import { counter, histogram, registry } from '../core/metrics.ts';
import { type AdmissionResult, reviewAdmission } from './admission.ts';
import {
  AdmissionBudget,
  defaultInFlightBytes,
  defaultMaxBodyBytes,
  OverBudget,
  RequestTooLarge,
  readBody,
} from './body-budget.ts';
import type { InjectorConfig } from './mutate.ts';
import { needsWriteThroughLookup, withWriteThroughVolumes } from './secrets/pod-review.ts';
import type { WriteThroughLookup } from './secrets/pods.ts';

const requests = counter(
  'smk_webhook_admission_requests_total',
  'Admission requests, by outcome and (for failed) reason.',
  ['outcome', 'reason'],
);

/** Why an admission request failed: the `reason` label of `outcome="failed"`. */
type AdmissionFailure = 'InvalidReview' | 'TooLarge' | 'OverBudget' | 'Unavailable' | 'Internal';
const latency = histogram(
  'smk_webhook_admission_duration_seconds',
  'Time to answer an admission request, by outcome.',
  ['outcome'],
  [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
);

/** Write-through (issue 8): the Secret admission, and which Secrets the pod path swaps. */
export interface WriteThroughRoutes {
  /** POST /mutate/secrets; never throws. */
  readonly reviewSecret: (body: unknown) => Promise<AdmissionResult>;
  /** From the informer cache: no call on the pod admission path. */
  readonly lookup: WriteThroughLookup;
  /**
   * True once the cache has listed every write-through Secret (default: always). Until then
   * /readyz fails and a pod naming a Secret gets a 503, so the failure policy decides, rather than
   * an answer that may miss a swap.
   */
  readonly synced?: () => boolean;
}

export interface WebhookServerOptions {
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  readonly injector: InjectorConfig;
  readonly writeThrough?: WriteThroughRoutes;
  readonly log: Logger;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly host?: string;
  /**
   * Largest /mutate/pods body accepted (default: the largest the API server sends, see
   * `apiServerLimits`); /mutate/secrets takes twice as much (an UPDATE carries object and oldObject).
   */
  readonly maxBodyBytes?: number;
  /** Bytes of review bodies held at once, all requests together (default `defaultInFlightBytes`). */
  readonly maxInFlightBytes?: number;
  /** Reviews in progress at once (default 32). */
  readonly maxInFlightReviews?: number;
  /** How often the certificate files are checked for a change. */
  readonly certCheckIntervalMs?: number;
  /** A request (headers and body) must arrive within this time. */
  readonly requestTimeoutMs?: number;
}

export interface WebhookServer {
  readonly port: number;
  /** True while serving with a loaded certificate and not draining. */
  readonly ready: boolean;
  /** Re-reads the certificate files now; true when a new certificate was taken into use. */
  reloadCertificates(): Promise<boolean>;
  /**
   * Turns /readyz to 503 and keeps serving for `delayMs` (so endpoints drop this pod before it
   * stops answering), then stops accepting, lets in-flight requests finish (up to `graceMs`) and
   * closes every connection.
   */
  close(options?: { readonly delayMs?: number; readonly graceMs?: number }): Promise<void>;
}

interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

/** A review that cannot be answered right now (the write-through cache has not listed yet). */
interface Unavailable {
  readonly status: 503;
  readonly message: string;
}

async function readKeyPair(options: WebhookServerOptions): Promise<KeyPair> {
  const [cert, key] = await Promise.all([
    readFile(options.tlsCertFile, 'utf8'),
    readFile(options.tlsKeyFile, 'utf8'),
  ]);
  // Throws on unreadable PEM or a key that does not match the certificate.
  createSecureContext({ cert, key });
  return { cert, key };
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}

const notListedYet: Unavailable = { status: 503, message: 'write-through Secrets not listed yet' };

/**
 * A queue that runs each piece of work (parsing and reviewing one body: up to a few hundred ms
 * for the largest) after the one before, each in its own turn of the event loop, so health probes
 * and TLS handshakes are served between two reviews instead of waiting behind all of them.
 */
function oneTurnEach(): <T>(work: () => T) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (work) => {
    const run = last.then(() => new Promise((resolve) => setImmediate(resolve))).then(work);
    last = run.catch(() => undefined);
    return run;
  };
}

/**
 * A body this small is parsed and reviewed as soon as it is read: well under a millisecond, so it
 * holds nothing up, and a turn of its own would cost more than the review (an extra event loop
 * iteration per request: about a tenth of a cached answer's CPU). Larger ones take turns.
 */
const maxBodyInOneGo = 64 * 1024;

/** The review of a body's JSON; undefined when it is not JSON. */
function parseAndReview<R>(text: string, review: (body: unknown) => R): { readonly result: R } | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  return { result: review(body) };
}

/** An answer that stops the connection: the rest of the body is never read. */
function refuse(response: ServerResponse, status: 413 | 429, text: string): void {
  response.setHeader('connection', 'close');
  if (status === 429) response.setHeader('retry-after', '1');
  send(response, status, 'text/plain', text);
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const log = options.log;
  const maxBodyBytes = options.maxBodyBytes ?? defaultMaxBodyBytes;
  const budget = new AdmissionBudget(
    Math.max(options.maxInFlightBytes ?? defaultInFlightBytes, 2 * maxBodyBytes),
    options.maxInFlightReviews ?? 32,
  );
  const inTurn = oneTurnEach();
  let keyPair = await readKeyPair(options);
  let draining = false;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  async function admit(
    request: IncomingMessage,
    response: ServerResponse,
    limit: number,
    review: (body: unknown) => AdmissionResult | Unavailable | Promise<AdmissionResult>,
  ): Promise<void> {
    const started = process.hrtime.bigint();
    let outcome = 'failed';
    let reason: AdmissionFailure | undefined = 'InvalidReview';
    if (!budget.enter()) {
      refuse(response, 429, 'too many admission reviews in progress; retry\n');
      requests.inc({ outcome, reason: 'OverBudget' });
      return;
    }
    const reading = readBody(request, limit, budget);
    try {
      let text: string;
      try {
        text = (await reading.body).toString('utf8');
      } catch (error) {
        if (error instanceof RequestTooLarge) {
          reason = 'TooLarge';
          refuse(response, 413, `request body larger than ${limit} bytes\n`);
          return;
        }
        if (error instanceof OverBudget) {
          reason = 'OverBudget';
          refuse(response, 429, 'admission review bodies over the memory budget; retry\n');
          return;
        }
        send(response, 400, 'text/plain', 'request body could not be read\n');
        return;
      }
      const reviewed =
        text.length <= maxBodyInOneGo
          ? parseAndReview(text, review)
          : await inTurn(() => parseAndReview(text, review));
      if (reviewed === undefined) {
        send(response, 400, 'text/plain', 'request body is not JSON\n');
        return;
      }
      const result = await reviewed.result;
      if (result.status === 503) {
        reason = 'Unavailable';
        send(response, 503, 'text/plain', `${result.message}\n`);
        return;
      }
      if (result.status === 400) {
        log.warn({ outcome, reason }, result.message);
        send(response, 400, 'text/plain', `${result.message}\n`);
        return;
      }
      outcome = result.outcome;
      reason = undefined;
      if (result.outcome === 'denied') {
        log.info({ outcome, uid: result.body.response.uid }, result.message ?? 'denied');
      } else if (log.isLevelEnabled('debug')) {
        log.debug({ outcome, uid: result.body.response.uid }, 'admission reviewed');
      }
      send(response, 200, 'application/json', result.text ?? JSON.stringify(result.body));
    } catch (error) {
      outcome = 'failed';
      reason = 'Internal';
      log.error({ err: error instanceof Error ? error.name : 'unknown' }, 'admission review failed');
      if (!response.headersSent) send(response, 500, 'text/plain', 'internal error\n');
    } finally {
      // The body and all made from it are garbage once the answer is out: its bytes go back then.
      const reserved = reading.reserved();
      budget.leave();
      if (response.writableFinished) budget.release(reserved);
      else response.once('close', () => budget.release(reserved));
      requests.inc(reason === undefined ? { outcome } : { outcome, reason });
      latency.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?', 1)[0];
    const writeThrough = options.writeThrough;
    if (path === '/mutate/pods' || (path === '/mutate/secrets' && writeThrough)) {
      if (request.method !== 'POST') {
        send(response, 405, 'text/plain', 'POST an AdmissionReview\n');
        return;
      }
      if (path === '/mutate/secrets' && writeThrough)
        await admit(request, response, 2 * maxBodyBytes, writeThrough.reviewSecret);
      else if (writeThrough) {
        await admit(request, response, maxBodyBytes, (body) =>
          writeThrough.synced?.() === false && needsWriteThroughLookup(body)
            ? notListedYet
            : withWriteThroughVolumes(
                body,
                reviewAdmission(body, options.injector),
                writeThrough.lookup,
                options.injector,
              ),
        );
      } else await admit(request, response, maxBodyBytes, (body) => reviewAdmission(body, options.injector));
      return;
    }
    if (request.method !== 'GET') {
      send(response, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    if (path === '/healthz') send(response, 200, 'text/plain', 'ok\n');
    else if (path === '/readyz') {
      if (draining) send(response, 503, 'text/plain', 'draining\n');
      else if (writeThrough?.synced?.() === false)
        send(response, 503, 'text/plain', `${notListedYet.message}\n`);
      else send(response, 200, 'text/plain', 'ok\n');
    } else if (path === '/metrics') send(response, 200, registry.contentType, await registry.metrics());
    else send(response, 404, 'text/plain', 'not found\n');
  }

  const requestTimeout = options.requestTimeoutMs ?? 10_000;
  const server: Server = createServer(
    {
      cert: keyPair.cert,
      key: keyPair.key,
      minVersion: 'TLSv1.2',
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 10_000),
      // How often request deadlines are checked (Node's default is 30 s).
      connectionsCheckingInterval: Math.min(1_000, requestTimeout / 2),
    },
    (request, response) => {
      inFlight += 1;
      response.on('close', () => {
        inFlight -= 1;
        if (inFlight === 0) drained?.();
      });
      route(request, response).catch(() => {
        if (!response.headersSent) send(response, 500, 'text/plain', 'internal error\n');
      });
    },
  );
  server.keepAliveTimeout = 30_000;
  server.on('tlsClientError', (error) => log.debug({ err: error.message }, 'TLS handshake failed'));
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8443, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'webhook listening');

  async function reloadCertificates(): Promise<boolean> {
    let next: KeyPair;
    try {
      next = await readKeyPair(options);
    } catch (error) {
      log.warn(
        { err: error instanceof Error ? error.name : 'unknown' },
        'certificate files unreadable or mismatched; keeping the current certificate',
      );
      return false;
    }
    if (next.cert === keyPair.cert && next.key === keyPair.key) return false;
    server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
    keyPair = next;
    log.info('serving certificate reloaded');
    return true;
  }

  const certTimer = setInterval(() => {
    reloadCertificates().catch(() => undefined);
  }, options.certCheckIntervalMs ?? 10_000);
  certTimer.unref();

  return {
    port,
    get ready() {
      return !draining && server.listening && options.writeThrough?.synced?.() !== false;
    },
    reloadCertificates,
    async close({ delayMs = 0, graceMs = 10_000 } = {}) {
      if (draining) return;
      draining = true;
      clearInterval(certTimer);
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => {
            drained = resolve;
          }),
          new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
        ]);
      }
      server.closeAllConnections();
      await closed;
      log.info('webhook stopped');
    },
  };
}
