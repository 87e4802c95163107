import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../core/log.ts';
import { KubeHttpError } from './client.ts';
import type { Clock } from './queue.ts';
import { customResourceServed } from './served.ts';

function capture() {
  let text = '';
  const logger = createLogger({
    destination: new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk);
        done();
      },
    }),
  });
  return {
    logger,
    lines: () =>
      text
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
  };
}

/** Fires scheduled callbacks at once, recording the delays asked for. */
function instantClock(): Clock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    now: () => 0,
    schedule(callback, ms) {
      delays.push(ms);
      queueMicrotask(callback);
      return () => {};
    },
  };
}

const mappings = {
  group: 'awssecretsoperator.secretoperator',
  version: 'v1',
  plural: 'secretsrotationmappings',
};
const backoff = { baseMs: 100, maxMs: 1000, jitter: 0 };

describe('customResourceServed', () => {
  it('retries a refusal and a failure with backoff, naming what is forbidden, until the answer (404: not served)', async () => {
    const answers = [403, 500, 404];
    const { logger, lines } = capture();
    const clock = instantClock();
    const served = await customResourceServed(new KubeConfig(), mappings, {
      logger,
      clock,
      backoff,
      list: async () => {
        throw new KubeHttpError('GET', '/apis/x', answers.shift() ?? 200);
      },
    });
    logger.flush();
    assert.equal(served, false);
    assert.deepEqual(clock.delays, [100, 200]);
    const [refused, failed] = lines() as { level: string; msg: string }[];
    assert.equal(refused?.level, 'error');
    assert.equal(
      refused?.msg,
      'forbidden: this identity may not list secretsrotationmappings.awssecretsoperator.secretoperator in all namespaces; it needs RBAC list and watch there (retrying)',
    );
    assert.equal(failed?.level, 'warn');
  });

  it('waits at least the Retry-After a throttled server asks for, over a shorter backoff', async () => {
    const answers = [429, 503, 404];
    const { logger } = capture();
    const clock = instantClock();
    const served = await customResourceServed(new KubeConfig(), mappings, {
      logger,
      clock,
      backoff,
      list: async () => {
        const status = answers.shift() ?? 200;
        throw new KubeHttpError('GET', '/apis/x', status, status === 429 ? { retryAfterMs: 5000 } : {});
      },
    });
    assert.equal(served, false);
    assert.deepEqual(clock.delays, [5000, 200]);
  });

  it('answers true when the list answers, asking in the namespace given', async () => {
    const { logger } = capture();
    let calls = 0;
    const served = await customResourceServed(
      new KubeConfig(),
      { ...mappings, namespace: 'team-a' },
      {
        logger,
        list: async () => {
          calls += 1;
        },
      },
    );
    assert.equal(served, true);
    assert.equal(calls, 1);
  });

  it('gives up with undefined when the role stops while it waits', async () => {
    const { logger } = capture();
    const stop = new AbortController();
    const pending = customResourceServed(new KubeConfig(), mappings, {
      logger,
      signal: stop.signal,
      backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 },
      list: async () => {
        throw new KubeHttpError('GET', '/apis/x', 403);
      },
    });
    await new Promise((resolve) => setImmediate(resolve));
    stop.abort();
    assert.equal(await pending, undefined);
  });
});
