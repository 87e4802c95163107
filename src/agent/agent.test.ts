/**
 * The agent's logic against an in-memory SecretReader (the port the aws layer implements); the
 * same flows against moto and real files are in test/agent.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import {
  AccessDeniedError,
  NotFoundError,
  type SmkError,
  ThrottledError,
  TransientError,
} from '../core/errors.ts';
import { silentLogger } from '../core/log.ts';
import type {
  DiscoveredObject,
  DiscoveryQuery,
  ReadResult,
  SecretReader,
  SecretRequest,
  SecretVersions,
} from '../core/source.ts';
import { parseMountSpec } from '../core/spec.ts';
import { runInit } from './init.ts';
import { type CycleReport, runRefreshLoop } from './refresh.ts';

interface Version {
  stages: string[];
  value: string;
}

/** Secrets Manager in memory: put() makes a new AWSCURRENT and moves the old one to AWSPREVIOUS. */
class MemoryReader implements SecretReader {
  readonly secrets = new Map<string, Map<string, Version>>();
  reads = 0;
  describes = 0;
  /** Every call fails with this while set. */
  failure: SmkError | undefined;
  #next = 0;

  put(id: string, value: string): string {
    const versions = this.secrets.get(id) ?? new Map<string, Version>();
    for (const version of versions.values()) {
      version.stages = version.stages.includes('AWSCURRENT') ? ['AWSPREVIOUS'] : [];
    }
    const versionId = `v${++this.#next}`.padEnd(32, '0');
    versions.set(versionId, { stages: ['AWSCURRENT'], value });
    this.secrets.set(id, versions);
    return versionId;
  }

  async read(requests: readonly SecretRequest[]): Promise<ReadResult[]> {
    this.reads += requests.length;
    return requests.map((request): ReadResult => {
      if (this.failure) return { ok: false, error: this.failure };
      const versions = this.secrets.get(request.id);
      const found = [...(versions ?? [])].find(([id, version]) =>
        request.versionId ? id === request.versionId : version.stages.includes(request.versionStage ?? ''),
      );
      if (!found) return { ok: false, error: new NotFoundError(`${request.id}: not found`) };
      const [versionId, version] = found;
      return {
        ok: true,
        value: {
          request,
          arn: `arn:aws:secretsmanager:${request.region}:123456789012:secret:${request.id}-AbCdEf`,
          name: request.id,
          versionId,
          bytes: new TextEncoder().encode(version.value),
          binary: false,
        },
      };
    });
  }

  /** Names under the query's prefix, as ListSecrets would list them; fails while `failure` is set. */
  async discover(query: DiscoveryQuery): Promise<DiscoveredObject[]> {
    if (this.failure) throw this.failure;
    return [...this.secrets.keys()]
      .map((name) => ({ name, arn: `arn:${name}`, tags: new Map<string, string>() }))
      .filter((found) => query.accept(found));
  }

  async describe(request: SecretRequest): Promise<SecretVersions> {
    this.describes += 1;
    if (this.failure) throw this.failure;
    const versions = this.secrets.get(request.id);
    if (!versions) throw new NotFoundError(`${request.id}: not found`);
    return {
      arn: `arn:aws:secretsmanager:${request.region}:123456789012:secret:${request.id}-AbCdEf`,
      name: request.id,
      versionsToStages: new Map([...versions].map(([id, version]) => [id, version.stages])),
    };
  }
}

const spec = parseMountSpec(
  {
    objects: [
      {
        objectName: 'db',
        objectType: 'secretsmanager',
        jmesPath: [{ path: 'password', objectAlias: 'db-password' }],
      },
      { objectName: 'api-key', objectType: 'secretsmanager', objectVersionLabel: 'AWSPREVIOUS' },
    ],
    region: 'us-east-1',
  },
  'test spec',
);

let dir: string;
let reader: MemoryReader;
const file = (name: string): Promise<string> => readFile(join(dir, name), 'utf8');

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smk-agent-'));
  reader = new MemoryReader();
  reader.put('db', '{"password":"p1"}');
  reader.put('api-key', 'k1');
  reader.put('api-key', 'k2');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runInit', () => {
  test('writes every file of the spec', async () => {
    const result = await runInit({ spec, dir, reader, log: silentLogger() });
    assert.equal(result.changed, true);
    assert.equal(await file('db'), '{"password":"p1"}');
    assert.equal(await file('db-password'), 'p1');
    assert.equal(await file('api-key'), 'k1');
  });

  test('fails closed: a missing secret throws and writes nothing', async () => {
    reader.secrets.delete('api-key');
    await assert.rejects(runInit({ spec, dir, reader, log: silentLogger() }), NotFoundError);
    await assert.rejects(readlink(join(dir, '..data')), { code: 'ENOENT' });
  });

  test('retries transient failures a bounded number of times, others not at all', async () => {
    reader.failure = new ThrottledError('throttled');
    const before = reader.reads;
    await assert.rejects(
      runInit({ spec, dir, reader, log: silentLogger(), attempts: 3, retryDelayMs: 1 }),
      ThrottledError,
    );
    assert.equal(reader.reads - before, 3 * 2);

    reader.failure = new AccessDeniedError('denied');
    const again = reader.reads;
    await assert.rejects(
      runInit({ spec, dir, reader, log: silentLogger(), attempts: 3, retryDelayMs: 1 }),
      AccessDeniedError,
    );
    assert.equal(reader.reads - again, 2);
  });
});

describe('runRefreshLoop', () => {
  /** Runs the loop cycle by cycle: `step` is called after each cycle and may change the world. */
  async function drive(
    cycles: number,
    step: (index: number, report: CycleReport) => void | Promise<void>,
  ): Promise<{ reports: CycleReport[]; waits: number[] }> {
    const controller = new AbortController();
    const reports: CycleReport[] = [];
    const waits: number[] = [];
    await runRefreshLoop({
      spec,
      dir,
      reader,
      log: silentLogger(),
      intervalMs: 60_000,
      minBackoffMs: 1_000,
      signal: controller.signal,
      random: () => 0.5,
      onCycle: (report) => reports.push(report),
      wait: async (ms) => {
        waits.push(ms);
        const index = reports.length - 1;
        await step(index, reports[index] as CycleReport);
        if (reports.length >= cycles) controller.abort();
      },
    });
    return { reports, waits };
  }

  test('discover: lists every cycle, so a new secret appears and a deleted one goes; a failed listing keeps the files', async () => {
    const discovering = parseMountSpec(
      {
        objects: [{ objectType: 'secretsmanager', discover: { namePrefix: 'app/', stripPrefix: true } }],
        region: 'us-east-1',
      },
      'test spec',
    );
    reader.put('app/a', 'A');
    const controller = new AbortController();
    const reports: CycleReport[] = [];
    const files: string[][] = [];
    await runRefreshLoop({
      spec: discovering,
      dir,
      reader,
      log: silentLogger(),
      intervalMs: 60_000,
      signal: controller.signal,
      random: () => 0.5,
      onCycle: (report) => reports.push(report),
      wait: async () => {
        files.push((await readdir(dir)).filter((name) => !name.startsWith('..')).sort());
        const index = reports.length - 1;
        if (index === 0) reader.put('app/b', 'B');
        if (index === 1) reader.failure = new TransientError('ListSecrets in us-east-1: unavailable');
        if (index === 2) {
          reader.failure = undefined;
          reader.secrets.delete('app/a');
        }
        if (reports.length >= 4) controller.abort();
      },
    });
    assert.deepEqual(
      reports.map((report) => report.outcome),
      ['updated', 'updated', 'failed', 'updated'],
    );
    assert.deepEqual(files, [['a'], ['a', 'b'], ['a', 'b'], ['b']]);
    assert.equal(await file('b'), 'B');
  });

  test('checks versions cheaply and reads values only when a version moved', async () => {
    await runInit({ spec, dir, reader, log: silentLogger() });
    const readsAfterInit = reader.reads;
    const { reports } = await drive(6, (index) => {
      if (index === 2) reader.put('db', '{"password":"p2"}');
    });
    assert.deepEqual(
      reports.map((report) => report.outcome),
      ['updated', 'unchanged', 'unchanged', 'updated', 'unchanged', 'unchanged'],
    );
    // The baseline read rewrites nothing; the rotation swaps the files.
    assert.deepEqual(reports[0], { outcome: 'updated', changed: false, files: 3 });
    assert.deepEqual(reports[3], { outcome: 'updated', changed: true, files: 3 });
    assert.equal(await file('db-password'), 'p2');
    // Two reads of the two objects (baseline + rotation); every cycle described both.
    assert.equal(reader.reads - readsAfterInit, 4);
    assert.equal(reader.describes, 12);
  });

  test('a label that moves (AWSPREVIOUS after a rotation) is followed too', async () => {
    const { reports } = await drive(3, (index) => {
      if (index === 0) reader.put('api-key', 'k3');
    });
    assert.equal(reports[1]?.outcome, 'updated');
    assert.equal(await file('api-key'), 'k2');
  });

  test('transient failures keep the last good files and back off up to the interval', async () => {
    await runInit({ spec, dir, reader, log: silentLogger() });
    const { reports, waits } = await drive(10, (index) => {
      if (index === 0) reader.failure = new TransientError('connection reset');
      if (index === 7) reader.failure = undefined;
    });
    assert.deepEqual(
      reports.map((report) => report.outcome),
      [
        'updated',
        'failed',
        'failed',
        'failed',
        'failed',
        'failed',
        'failed',
        'failed',
        'unchanged',
        'unchanged',
      ],
    );
    assert.deepEqual(reports[1], { outcome: 'failed', transient: true, message: 'connection reset' });
    assert.deepEqual(waits, [60_000, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    assert.equal(await file('db-password'), 'p1');
  });

  test('a permanent failure keeps the files and retries at the normal interval', async () => {
    await runInit({ spec, dir, reader, log: silentLogger() });
    const { reports, waits } = await drive(3, (index) => {
      if (index === 0) reader.failure = new AccessDeniedError('db: access denied');
    });
    assert.deepEqual(reports[1], { outcome: 'failed', transient: false, message: 'db: access denied' });
    assert.deepEqual(waits, [60_000, 60_000, 60_000]);
    assert.equal(await file('api-key'), 'k1');
  });

  test('jitter spreads the waits between 90% and 110% of the interval', async () => {
    for (const [random, expected] of [
      [0, 54_000],
      [0.999, 65_988],
    ] as const) {
      const controller = new AbortController();
      const waits: number[] = [];
      await runRefreshLoop({
        spec,
        dir,
        reader,
        log: silentLogger(),
        intervalMs: 60_000,
        signal: controller.signal,
        random: () => random,
        wait: async (ms) => {
          waits.push(ms);
          controller.abort();
        },
      });
      assert.equal(Math.round(waits[0] ?? 0), expected);
    }
  });
});
