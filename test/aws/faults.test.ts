import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessDeniedError, ThrottledError, TransientError } from '../../src/core/errors.ts';
import { registry } from '../../src/core/metrics.ts';
import type { SecretRequest } from '../../src/core/source.ts';
import {
  createSecret,
  expectError,
  expectValue,
  region,
  staticIdentity,
  uniquePrefix,
  wire,
} from './support.ts';

const identity = staticIdentity('AKIDFAULTS');
const sm = (id: string): SecretRequest => ({ objectType: 'secretsmanager', id, region });
const value = 'sup3r-s3cret-value';

/** Messages are ours: API, id, region, code — never the value, a request id or a key. */
function assertSanitised(message: string): void {
  assert.doesNotMatch(message, new RegExp(value));
  assert.doesNotMatch(message, /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-/i, 'no request id');
  assert.doesNotMatch(message, /AKID|testing|Credential=/);
  assert.doesNotMatch(message, /not authorized to perform|Rate exceeded|injected/, 'not the server text');
}

/** Failed calls of `api` whose reason (the error's kind) is `reason`. */
async function callCount(api: string, reason: string): Promise<number> {
  const found = (await registry.getMetricsAsJSON()).find((entry) => entry.name === 'smk_aws_calls_total');
  const match = found?.values.find(
    (entry) =>
      entry.labels.api === api && entry.labels.outcome === 'failed' && entry.labels.reason === reason,
  );
  return match?.value ?? 0;
}

test('throttling maps to ThrottledError; with attempts left the SDK retries and succeeds', async (t) => {
  const once = await wire(t);
  const name = uniquePrefix('throttle');
  await createSecret(name, value);
  const before = await callCount('GetSecretValue', 'Throttled');
  once.proxy.addFault({ fault: { kind: 'throttle' } });
  const { error } = expectError((await once.reader(identity).read([sm(name)]))[0]);
  assert.ok(error instanceof ThrottledError, error.name);
  assert.equal(error.transient, true);
  assert.match(
    error.message,
    /^GetSecretValue smk-test-throttle-[0-9a-f]+ in us-east-1: throttled by AWS \(ThrottlingException, HTTP 400\)$/,
  );
  assertSanitised(error.message);
  assert.equal((await callCount('GetSecretValue', 'Throttled')) - before, 1);

  const retrying = await wire(t, { clients: { maxAttempts: 3 } });
  retrying.proxy.addFault({ fault: { kind: 'throttle' }, times: 2 });
  expectValue((await retrying.reader(identity).read([sm(name)]))[0]);
  assert.equal(retrying.proxy.count({ api: 'GetSecretValue' }), 3);
});

test('5xx, connection reset and a full outage map to TransientError', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = uniquePrefix('transient');
  await createSecret(name, value);
  for (const fault of [
    { kind: 'status', status: 500 },
    { kind: 'status', status: 503 },
    { kind: 'reset' },
  ] as const) {
    proxy.clearFaults();
    proxy.addFault({ fault });
    const { error } = expectError((await reader(identity).read([sm(name)]))[0]);
    assert.ok(error instanceof TransientError, `${fault.kind}: ${error.name}`);
    assertSanitised(error.message);
  }
  proxy.clearFaults();
  proxy.addFault({ fault: { kind: 'outage' } });
  const outage = expectError((await reader(identity).read([sm(name)]))[0]).error;
  assert.ok(outage instanceof TransientError, outage.name);
  assert.ok(proxy.refusedConnections() >= 1);
  proxy.clearFaults();
  expectValue((await reader(identity).read([sm(name)]))[0]);
});

test('a slow endpoint hits the socket timeout, or the call deadline: TransientError, bounded wait', async (t) => {
  const name = uniquePrefix('slow');
  await createSecret(name, value);
  for (const clients of [
    { requestTimeoutMs: 300, callTimeoutMs: 10_000 },
    { requestTimeoutMs: 10_000, callTimeoutMs: 300 },
  ]) {
    const { reader, proxy } = await wire(t, { clients });
    proxy.addFault({ fault: { kind: 'latency', ms: 3_000 } });
    const started = performance.now();
    const { error } = expectError((await reader(identity).read([sm(name)]))[0]);
    const waited = performance.now() - started;
    assert.ok(error instanceof TransientError, error.name);
    assertSanitised(error.message);
    assert.ok(waited < 1_500, `${JSON.stringify(clients)}: waited ${Math.round(waited)} ms`);
  }
});

test('denials map to AccessDeniedError, as JSON and as the 403 XML moto sends (moto.md #6)', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = uniquePrefix('denied');
  await createSecret(name, value);
  for (const xml of [false, true]) {
    proxy.clearFaults();
    proxy.addFault({ fault: { kind: 'deny', xml } });
    const { error } = expectError((await reader(identity).read([sm(name)]))[0]);
    assert.ok(error instanceof AccessDeniedError, `xml=${xml}: ${error.name} ${error.message}`);
    assert.equal(error.transient, false);
    assertSanitised(error.message);
  }
});
