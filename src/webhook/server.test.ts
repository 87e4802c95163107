import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { silentLogger } from '../core/log.ts';
import { defaultInjectorConfig } from './mutate.ts';
import { startWebhookServer, type WebhookServer } from './server.ts';
import { type CertificateAuthority, createCertificateAuthority, issueServingCertificate } from './tls/pki.ts';

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly certificate: PeerCertificate;
}

let dir: string;
let ca: CertificateAuthority;
let certFile: string;
let keyFile: string;
let server: WebhookServer;
const review = (): Promise<string> =>
  readFile(new URL('./fixtures/admission-review-3-containers.json', import.meta.url), 'utf8');

function call(path: string, options: { method?: string; body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: options.method ?? 'GET',
        ca: ca.certPem,
        servername: 'localhost',
        agent: false,
        headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (response) => {
        const certificate = (response.socket as TLSSocket).getPeerCertificate();
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            certificate,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function writeServingCertificate(): Promise<void> {
  const serving = await issueServingCertificate(ca, {
    commonName: 'smk-webhook',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  await writeFile(certFile, serving.certPem);
  await writeFile(keyFile, serving.keyPem);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smk-webhook-'));
  ca = await createCertificateAuthority({ commonName: 'smk test CA' });
  certFile = join(dir, 'tls.crt');
  keyFile = join(dir, 'tls.key');
  await writeServingCertificate();
  server = await startWebhookServer({
    tlsCertFile: certFile,
    tlsKeyFile: keyFile,
    injector: { ...defaultInjectorConfig, agentImage: 'registry.example/smk:test' },
    log: silentLogger(),
    port: 0,
    host: '127.0.0.1',
    maxBodyBytes: 64 * 1024,
    requestTimeoutMs: 500,
  });
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('webhook server', () => {
  test('health, readiness, metrics and unknown paths', async () => {
    assert.equal((await call('/healthz')).status, 200);
    assert.equal((await call('/readyz')).status, 200);
    assert.equal(server.ready, true);
    assert.equal((await call('/nope')).status, 404);
    assert.equal((await call('/mutate/pods')).status, 405);
    assert.equal((await call('/healthz', { method: 'POST', body: '{}' })).status, 405);
  });

  test('a pod review is answered with a patch and counted', async () => {
    const reply = await call('/mutate/pods', { method: 'POST', body: await review() });
    assert.equal(reply.status, 200);
    const body = JSON.parse(reply.body);
    assert.equal(body.kind, 'AdmissionReview');
    assert.equal(body.response.allowed, true);
    assert.equal(body.response.patchType, 'JSONPatch');
    const metrics = await call('/metrics');
    assert.match(metrics.body, /smk_webhook_admission_requests_total\{outcome="mutated"\} [1-9]/);
    assert.match(
      metrics.body,
      /smk_webhook_admission_duration_seconds_bucket\{le="0.002",outcome="mutated"\}/,
    );
  });

  test('malformed input gets a clean 400 or 413 and the server keeps serving', async () => {
    const notJson = await call('/mutate/pods', { method: 'POST', body: '{"apiVersion": ' });
    assert.deepEqual([notJson.status, notJson.body], [400, 'request body is not JSON\n']);
    const wrongShape = await call('/mutate/pods', { method: 'POST', body: '{"kind": "AdmissionReview"}' });
    assert.equal(wrongShape.status, 400);
    assert.match(wrongShape.body, /^AdmissionReview apiVersion: /);
    const tooLarge = await call('/mutate/pods', { method: 'POST', body: Buffer.alloc(200 * 1024, 0x20) });
    assert.equal(tooLarge.status, 413);
    assert.equal((await call('/healthz')).status, 200);
  });

  test('a client that stops sending mid-request is cut off, not waited for', async () => {
    const started = Date.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect({
        host: '127.0.0.1',
        port: server.port,
        ca: ca.certPem,
        servername: 'localhost',
      });
      let text = '';
      socket.on('secureConnect', () => {
        socket.write('POST /mutate/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"apiVersion"');
      });
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.ok(Date.now() - started < 5_000);
  });

  test('a rotated certificate is served to new connections; a broken pair is refused', async () => {
    const before = (await call('/healthz')).certificate.fingerprint256;
    assert.equal(await server.reloadCertificates(), false);
    await writeServingCertificate();
    assert.equal(await server.reloadCertificates(), true);
    const rotated = (await call('/healthz')).certificate.fingerprint256;
    assert.notEqual(rotated, before);

    const other = await issueServingCertificate(ca, { commonName: 'other', dnsNames: ['localhost'] });
    await writeFile(keyFile, other.keyPem);
    assert.equal(await server.reloadCertificates(), false);
    assert.equal((await call('/healthz')).certificate.fingerprint256, rotated);
    await writeServingCertificate();
  });
});

describe('webhook server memory budget', () => {
  /** A TLS connection that sends a POST's headers and part of its body, then waits. */
  async function stalledPost(port: number, declared: number, sent: number): Promise<TLSSocket> {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    socket.write(`POST /mutate/pods HTTP/1.1\r\nHost: x\r\nContent-Length: ${declared}\r\n\r\n`);
    socket.write(Buffer.alloc(sent, 0x20));
    return socket;
  }

  async function withServer(
    limits: { maxInFlightBytes?: number; maxInFlightReviews?: number },
    run: () => Promise<void>,
  ): Promise<void> {
    const budgeted = await startWebhookServer({
      tlsCertFile: certFile,
      tlsKeyFile: keyFile,
      injector: defaultInjectorConfig,
      log: silentLogger(),
      port: 0,
      host: '127.0.0.1',
      maxBodyBytes: 64 * 1024,
      ...limits,
    });
    const previous = server;
    server = budgeted;
    try {
      await run();
    } finally {
      server = previous;
      await budgeted.close({ graceMs: 100 });
    }
  }

  test('a body that does not fit what other requests hold is refused 429 at once; room comes back', async () => {
    // The budget is never below two of the largest bodies (64 KiB here): two stalled ones hold most of it.
    await withServer({ maxInFlightBytes: 128 * 1024 }, async () => {
      const holding = [
        await stalledPost(server.port, 60_000, 10),
        await stalledPost(server.port, 60_000, 10),
      ];
      try {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const body = await review();
        assert.equal((await call('/mutate/pods', { method: 'POST', body })).status, 200, 'a small one fits');
        const refused = await call('/mutate/pods', { method: 'POST', body: Buffer.alloc(20_000, 0x20) });
        assert.deepEqual(
          [refused.status, refused.body],
          [429, 'admission review bodies over the memory budget; retry\n'],
        );
        assert.equal((await call('/healthz')).status, 200, 'health is outside the budget');
        const [first] = holding;
        const closed = new Promise((resolve) => first?.once('close', resolve));
        // Read the answer: a socket nobody reads never sees the server close it.
        first?.resume();
        first?.end(Buffer.alloc(60_000 - 10, 0x20));
        await closed;
        const later = await call('/mutate/pods', { method: 'POST', body: Buffer.alloc(20_000, 0x20) });
        assert.equal(later.status, 400, 'once the first is answered its bytes are free again');
        const metrics = await call('/metrics');
        assert.match(
          metrics.body,
          /smk_webhook_admission_requests_total\{outcome="failed",reason="OverBudget"\} [1-9]/,
        );
      } finally {
        for (const socket of holding) socket.destroy();
      }
    });
  });

  test('an oversize body is refused 413 before it is read whole: declared at once, chunked at the first byte too many', async () => {
    /** Sends `head` (and `chunk`, if any) and never the rest; resolves with the first answer line. */
    const firstLine = async (head: string, chunk?: string): Promise<string> => {
      const socket = connect({
        host: '127.0.0.1',
        port: server.port,
        ca: ca.certPem,
        servername: 'localhost',
      });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('secureConnect', resolve);
          socket.once('error', reject);
        });
        socket.write(head);
        if (chunk !== undefined) socket.write(chunk);
        let text = '';
        return await new Promise<string>((resolve) => {
          socket.on('data', (data: Buffer) => {
            text += data.toString('utf8');
            if (text.includes('\r\n')) resolve(text.slice(0, text.indexOf('\r\n')));
          });
          socket.on('close', () => resolve(text));
        });
      } finally {
        socket.destroy();
      }
    };
    // 64 KiB is this server's limit; neither client ever sends its body's end, so a server that
    // read bodies whole would answer nothing here but the 408 of its request timeout.
    const declared = await firstLine(
      'POST /mutate/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n',
    );
    assert.equal(declared, 'HTTP/1.1 413 Payload Too Large');
    const over = 64 * 1024 + 1;
    const chunked = await firstLine(
      'POST /mutate/pods HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      `${over.toString(16)}\r\n${' '.repeat(over)}\r\n`,
    );
    assert.equal(chunked, 'HTTP/1.1 413 Payload Too Large');
    assert.equal((await call('/healthz')).status, 200);
  });

  test('reviews in progress are capped too', async () => {
    await withServer({ maxInFlightReviews: 1 }, async () => {
      const holding = await stalledPost(server.port, 1_000, 10);
      try {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const refused = await call('/mutate/pods', { method: 'POST', body: await review() });
        assert.deepEqual(
          [refused.status, refused.body],
          [429, 'too many admission reviews in progress; retry\n'],
        );
      } finally {
        holding.destroy();
      }
    });
  });
});

describe('webhook server shutdown', () => {
  test('readiness turns 503 while draining, then the port closes', async () => {
    const draining = await startWebhookServer({
      tlsCertFile: certFile,
      tlsKeyFile: keyFile,
      injector: defaultInjectorConfig,
      log: silentLogger(),
      port: 0,
      host: '127.0.0.1',
    });
    const previous = server;
    server = draining;
    try {
      const closing = draining.close({ delayMs: 300, graceMs: 1_000 });
      assert.equal(draining.ready, false);
      assert.equal((await call('/readyz')).status, 503);
      assert.equal((await call('/mutate/pods', { method: 'POST', body: await review() })).status, 200);
      await closing;
      await assert.rejects(call('/healthz'), { code: 'ECONNREFUSED' });
    } finally {
      server = previous;
    }
  });
});
