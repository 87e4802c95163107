import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { test } from 'node:test';
import { InvalidInputError } from '../core/errors.ts';
import { describeCliError, describeSystemError, systemErrorReason } from './errors.ts';

async function failure(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

test('a file error says which file and why, from the error fields', async () => {
  const missing = await failure(readFile('/nonexistent/smk-test.yaml'));
  assert.equal(
    describeSystemError(missing),
    '/nonexistent/smk-test.yaml: no such file or directory (ENOENT)',
  );
  assert.equal(systemErrorReason(missing), 'no such file or directory (ENOENT)');
  const directory = await failure(readFile('/'));
  assert.equal(describeCliError(directory), 'is a directory (EISDIR)');
});

test('a refused connection names the address and port, also when wrapped as a cause (fetch)', async () => {
  const refused = await failure(
    new Promise((resolve, reject) => {
      // Port 9 (discard) on loopback: nothing listens there on a test machine.
      const socket = connect({ host: '127.0.0.1', port: 9 });
      socket.once('connect', () => resolve(socket.destroy()));
      socket.once('error', reject);
    }),
  );
  assert.equal(describeSystemError(refused), '127.0.0.1:9: connection refused (ECONNREFUSED)');
  const wrapped = new TypeError('fetch failed', { cause: refused });
  assert.equal(describeCliError(wrapped), '127.0.0.1:9: connection refused (ECONNREFUSED)');
  const aggregated = Object.assign(new AggregateError([refused], 'x'), { code: 'ECONNREFUSED' });
  assert.equal(describeCliError(aggregated), '127.0.0.1:9: connection refused (ECONNREFUSED)');
});

test('our errors print as they are; anything else only by its class (its message may quote input)', () => {
  assert.equal(describeCliError(new InvalidInputError('smk x: --y is wrong')), 'smk x: --y is wrong');
  assert.equal(describeCliError(new SyntaxError('Unexpected token s3cr3t')), 'SyntaxError: unexpected error');
  assert.equal(describeSystemError(Object.assign(new Error('x'), { code: 'EWHATEVER' })), undefined);
});
