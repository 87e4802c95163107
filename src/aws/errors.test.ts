import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorLabels } from '../core/metrics.ts';
import { mapAwsError, mapAwsErrorCode } from './errors.ts';

/** An error shaped like what SDK v3 throws: name = AWS code, $metadata with the status and a request id. */
function sdkError(name: string, status: number | undefined, message = 'raw server text req-1234'): Error {
  const error = new Error(message);
  error.name = name;
  Object.assign(error, {
    $metadata: { httpStatusCode: status, requestId: 'f0e1d2c3-b4a5-4968-8776-655443322110' },
  });
  return error;
}

function networkError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:443`), { code });
}

const context = { api: 'GetSecretValue', subject: 'prod/db', region: 'eu-west-1' };

const table: { input: unknown; kind: string; message: string }[] = [
  {
    input: sdkError('ResourceNotFoundException', 400),
    kind: 'NotFound',
    message: 'GetSecretValue prod/db in eu-west-1: not found (ResourceNotFoundException, HTTP 400)',
  },
  {
    input: sdkError('AccessDeniedException', 400),
    kind: 'AccessDenied',
    message: 'GetSecretValue prod/db in eu-west-1: access denied (AccessDeniedException, HTTP 400)',
  },
  {
    // moto's 403 XML through a JSON client: a parse error that only has the status (moto.md #6).
    input: sdkError('SyntaxError', 403, 'Unexpected token < in JSON'),
    kind: 'AccessDenied',
    message: 'GetSecretValue prod/db in eu-west-1: access denied (HTTP 403)',
  },
  {
    input: sdkError('ThrottlingException', 400),
    kind: 'Throttled',
    message: 'GetSecretValue prod/db in eu-west-1: throttled by AWS (ThrottlingException, HTTP 400)',
  },
  {
    input: sdkError('Unknown', 429),
    kind: 'Throttled',
    message: 'GetSecretValue prod/db in eu-west-1: throttled by AWS (Unknown, HTTP 429)',
  },
  {
    input: sdkError('InternalServiceError', 500),
    kind: 'Transient',
    message:
      'GetSecretValue prod/db in eu-west-1: AWS unavailable or unreachable (InternalServiceError, HTTP 500)',
  },
  {
    input: sdkError('Error', 502),
    kind: 'Transient',
    message: 'GetSecretValue prod/db in eu-west-1: AWS unavailable or unreachable (HTTP 502)',
  },
  {
    input: sdkError('InvalidParameterException', 400),
    kind: 'InvalidInput',
    message: 'GetSecretValue prod/db in eu-west-1: rejected as invalid (InvalidParameterException, HTTP 400)',
  },
  {
    input: sdkError('DecryptionFailure', 400),
    kind: 'AccessDenied',
    message: 'GetSecretValue prod/db in eu-west-1: access denied (DecryptionFailure, HTTP 400)',
  },
  {
    input: networkError('ECONNREFUSED'),
    kind: 'Transient',
    message: 'GetSecretValue prod/db in eu-west-1: AWS unavailable or unreachable (ECONNREFUSED)',
  },
  {
    input: Object.assign(new Error('aborted'), { name: 'AbortError' }),
    kind: 'Transient',
    message: 'GetSecretValue prod/db in eu-west-1: AWS unavailable or unreachable (AbortError)',
  },
  {
    // A bug of ours (e.g. an SDK class undefined in the bundle) is not blamed on the network.
    input: new TypeError('STSClient is not a constructor'),
    kind: 'Transient',
    message: 'GetSecretValue prod/db in eu-west-1: failed inside smk before reaching AWS (TypeError)',
  },
  {
    input: 'a string',
    kind: 'Transient',
    message: 'GetSecretValue prod/db in eu-west-1: AWS unavailable or unreachable',
  },
  {
    // A code that is not a plain identifier is not echoed.
    input: sdkError('Bad<script>Name with spaces', 400),
    kind: 'Transient',
    message: 'GetSecretValue prod/db in eu-west-1: AWS unavailable or unreachable (HTTP 400)',
  },
];

for (const { input, kind, message } of table) {
  test(`mapAwsError → ${kind}: ${message}`, () => {
    const error = mapAwsError(input, context);
    assert.equal(error.kind, kind);
    assert.equal(error.message, message);
    assert.equal(error.subject, 'prod/db');
    assert.equal(error.cause, undefined, 'the raw SDK error is not kept');
    assert.doesNotMatch(error.message, /raw server text|req-1234|f0e1d2c3/);
  });
}

test('our own sentinel errors pass through unchanged', () => {
  const inner = mapAwsError(sdkError('AccessDeniedException', 400), context);
  assert.equal(mapAwsError(inner, { api: 'Other' }), inner);
});

test('per-item batch codes map like whole-call errors; unknown codes are not retried forever', () => {
  const batch = { api: 'BatchGetSecretValue', subject: 'a', region: 'us-east-1' };
  assert.equal(mapAwsErrorCode('ResourceNotFoundException', batch).kind, 'NotFound');
  assert.equal(mapAwsErrorCode('DecryptionFailure', batch).kind, 'AccessDenied');
  assert.equal(mapAwsErrorCode('InternalServiceError', batch).kind, 'Transient');
  assert.equal(mapAwsErrorCode('SomethingNew', batch).kind, 'InvalidInput');
  assert.equal(mapAwsErrorCode(undefined, batch).kind, 'Transient');
  assert.equal(
    mapAwsErrorCode('ResourceNotFoundException', batch).message,
    'BatchGetSecretValue a in us-east-1: not found (ResourceNotFoundException)',
  );
});

test("metric labels: outcome ok or failed, the failure's kind in reason", () => {
  assert.deepEqual(errorLabels(undefined), { outcome: 'ok' });
  assert.deepEqual(errorLabels(mapAwsError(sdkError('AccessDeniedException', 400), context)), {
    outcome: 'failed',
    reason: 'AccessDenied',
  });
  assert.deepEqual(errorLabels(mapAwsError(sdkError('ResourceNotFoundException', 400), context)), {
    outcome: 'failed',
    reason: 'NotFound',
  });
  assert.deepEqual(errorLabels(mapAwsError(sdkError('ThrottlingException', 400), context)), {
    outcome: 'failed',
    reason: 'Throttled',
  });
});
