import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReadResult, SecretReader, SecretRequest } from '../core/source.ts';
import { coalescingReader } from './coalesce.ts';

function countingReader() {
  const calls: SecretRequest[][] = [];
  const reader: SecretReader = {
    async read(requests) {
      calls.push([...requests]);
      return requests.map(
        (request): ReadResult => ({
          ok: true,
          value: {
            request,
            arn: `arn:${request.id}`,
            name: request.id,
            versionId: 'v',
            bytes: new Uint8Array(),
            binary: false,
          },
        }),
      );
    },
    describe: async () => {
      throw new Error('unused');
    },
  };
  return { reader, calls };
}

const request = (id: string): SecretRequest => ({ objectType: 'secretsmanager', id, region: 'us-east-1' });

describe('coalescing reader', () => {
  it('joins reads that arrive together into one call and hands each caller its own results', async () => {
    const { reader, calls } = countingReader();
    const coalesced = coalescingReader(reader, { windowMs: 5 });
    const [first, second] = await Promise.all([
      coalesced.read([request('a'), request('b')]),
      coalesced.read([request('c')]),
    ]);
    assert.equal(calls.length, 1);
    assert.deepEqual(
      calls[0]?.map((r) => r.id),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      first.map((r) => r.ok && r.value.name),
      ['a', 'b'],
    );
    assert.deepEqual(
      second.map((r) => r.ok && r.value.name),
      ['c'],
    );
  });

  it('waits while reads keep coming, each less than the window after the last, up to the longest wait', async () => {
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const { reader, calls } = countingReader();
    const coalesced = coalescingReader(reader, { windowMs: 100, maxWaitMs: 5_000 });
    // Eight reads 25 ms apart: 175 ms from the first to the last, more than the window.
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const reads: Promise<ReadResult[]>[] = [];
    for (const id of ids) {
      reads.push(coalesced.read([request(id)]));
      await pause(25);
    }
    await Promise.all(reads);
    assert.deepEqual(
      calls.map((call) => call.map((r) => r.id)),
      [ids],
    );

    // A steady trickle is still cut into rounds: the longest wait ends a round.
    const { reader: trickled, calls: trickleCalls } = countingReader();
    const capped = coalescingReader(trickled, { windowMs: 100, maxWaitMs: 100 });
    const trickle: Promise<ReadResult[]>[] = [];
    for (let i = 0; i < 12; i += 1) {
      trickle.push(capped.read([request(`r${i}`)]));
      await pause(25);
    }
    await Promise.all(trickle);
    assert.ok(trickleCalls.length >= 2, 'the trickle went out in more than one round');
    assert.deepEqual(
      trickleCalls.flat().map((r) => r.id),
      trickle.map((_, i) => `r${i}`),
    );
  });

  it('sends a full round at once', async () => {
    const { reader, calls } = countingReader();
    const coalesced = coalescingReader(reader, { windowMs: 10_000, maxRequests: 2 });
    const results = await coalesced.read([request('a'), request('b')]);
    assert.equal(results.length, 2);
    assert.equal(calls.length, 1);
  });

  it('fails every caller of a failed round', async () => {
    const failing: SecretReader = {
      read: async () => {
        throw new Error('boom');
      },
      describe: async () => {
        throw new Error('unused');
      },
    };
    const coalesced = coalescingReader(failing);
    const reads = [coalesced.read([request('a')]), coalesced.read([request('b')])];
    for (const read of reads) await assert.rejects(read, /boom/);
  });
});
