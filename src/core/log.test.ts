import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from './log.ts';

test('log lines are JSON with the level as a word and secret-bearing fields redacted', () => {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination, name: 'smk-test' });
  logger.debug('d');
  logger.info('i');
  logger.warn({ password: 'hunter2-redact-me' }, 'w');
  logger.error('e');
  logger.flush();
  const lines = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { level: unknown; msg: string; name: string; password?: string });
  assert.deepEqual(
    lines.map((line) => [line.level, line.msg]),
    [
      ['debug', 'd'],
      ['info', 'i'],
      ['warn', 'w'],
      ['error', 'e'],
    ],
  );
  assert.equal(lines[0]?.name, 'smk-test');
  assert.equal(lines[2]?.password, '[redacted]');
  assert.doesNotMatch(text, /hunter2-redact-me/);
});

test('the level threshold still filters by rank (words are only how it is printed)', () => {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  const logger = createLogger({ level: 'warn', destination });
  logger.info('hidden');
  logger.warn('shown');
  logger.flush();
  assert.doesNotMatch(text, /hidden/);
  assert.match(text, /"level":"warn"/);
});
