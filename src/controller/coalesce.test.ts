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
