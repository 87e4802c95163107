import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commonJsExports } from './clients.ts';

test('commonJsExports: a namespace holding only `default` (the bundle) gives its exports', () => {
  class Client {}
  const bundled = { default: { Client } };
  assert.equal(commonJsExports(bundled as unknown as { Client: typeof Client }).Client, Client);
});

test("commonJsExports: Node's own namespace (named exports found) is used as it is", async () => {
  const sts = await import('@aws-sdk/client-sts');
  assert.equal(commonJsExports(sts), sts);
  assert.equal(typeof commonJsExports(sts).STSClient, 'function');
  const esm = { Client: 1, default: { Client: 2 } };
  assert.equal(commonJsExports(esm), esm);
});
