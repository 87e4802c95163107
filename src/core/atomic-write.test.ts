import assert from 'node:assert/strict';
import {
  lchown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { writePayloadsAtomically } from './atomic-write.ts';
import { InvalidInputError } from './errors.ts';
import type { Payload } from './spec-types.ts';

const encoder = new TextEncoder();
const payload = (name: string, content: string, mode = 0o644): Payload => ({
  name,
  bytes: encoder.encode(content),
  mode,
  objectVersion: { id: name, version: 'v1' },
});

let root = '';
let counter = 0;
const freshDir = async (): Promise<string> => join(root, `t${counter++}`);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'smk-atomic-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('writePayloadsAtomically', () => {
  test('layout: a version dir, ..data, and visible links (top-level segment for nested names)', async () => {
    const dir = await freshDir();
    const result = await writePayloadsAtomically(dir, [
      payload('a', 'A'),
      payload('conf/x', 'X'),
      payload('conf/y', 'Y'),
    ]);
    assert.deepEqual(result, { changed: true });
    const entries = (await readdir(dir)).sort();
    assert.equal(entries.length, 4);
    assert.match(entries[0] ?? '', /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d{3}\.[\w-]{8}$/);
    assert.deepEqual(entries.slice(1), ['..data', 'a', 'conf']);
    assert.equal(await readlink(join(dir, '..data')), entries[0]);
    assert.equal(await readlink(join(dir, 'a')), '..data/a');
    assert.equal(await readlink(join(dir, 'conf')), '..data/conf');
    assert.equal(await readFile(join(dir, 'a'), 'utf8'), 'A');
    assert.equal(await readFile(join(dir, 'conf', 'y'), 'utf8'), 'Y');
  });

  test('modes are exact whatever the umask', async () => {
    const dir = await freshDir();
    const previous = process.umask(0o077);
    try {
      await writePayloadsAtomically(dir, [
        payload('open', 'o', 0o644),
        payload('group', 'g', 0o640),
        payload('owner', 'w', 0o400),
        payload('sub/deep', 'd', 0o604),
      ]);
    } finally {
      process.umask(previous);
    }
    const modes: Record<string, string> = {};
    for (const name of ['open', 'group', 'owner', 'sub/deep', 'sub', '..data']) {
      modes[name] = ((await stat(join(dir, name))).mode & 0o7777).toString(8);
    }
    assert.deepEqual(modes, {
      open: '644',
      group: '640',
      owner: '400',
      'sub/deep': '604',
      sub: '755',
      '..data': '755',
    });
  });

  test('the same content and modes again touch nothing', async () => {
    const dir = await freshDir();
    const set = [payload('a', 'A'), payload('n/b', 'B', 0o600)];
    await writePayloadsAtomically(dir, set);
    const version = await readlink(join(dir, '..data'));
    const before = await lstat(join(dir, version, 'a'));
    assert.deepEqual(await writePayloadsAtomically(dir, set), { changed: false });
    assert.equal(await readlink(join(dir, '..data')), version);
    assert.equal((await lstat(join(dir, version, 'a'))).mtimeMs, before.mtimeMs);
    assert.deepEqual((await readdir(dir)).length, 4);
  });

  test('a changed mode alone is a change', async () => {
    const dir = await freshDir();
    await writePayloadsAtomically(dir, [payload('a', 'A', 0o644)]);
    assert.deepEqual(await writePayloadsAtomically(dir, [payload('a', 'A', 0o600)]), { changed: true });
    assert.equal((await stat(join(dir, 'a'))).mode & 0o777, 0o600);
  });

  test('files no longer in the set disappear, with the old version dir', async () => {
    const dir = await freshDir();
    await writePayloadsAtomically(dir, [payload('a', 'A'), payload('b', 'B'), payload('n/c', 'C')]);
    const old = await readlink(join(dir, '..data'));
    await writePayloadsAtomically(dir, [payload('a', 'A2')]);
    const entries = (await readdir(dir)).sort();
    assert.equal(entries.length, 3);
    assert.ok(!entries.includes(old), 'old version dir removed');
    assert.deepEqual(entries.slice(1), ['..data', 'a']);
    assert.equal(await readFile(join(dir, 'a'), 'utf8'), 'A2');
  });

  test('a removed visible link is put back even when the content is unchanged', async () => {
    const dir = await freshDir();
    await writePayloadsAtomically(dir, [payload('a', 'A')]);
    await rm(join(dir, 'a'));
    assert.deepEqual(await writePayloadsAtomically(dir, [payload('a', 'A')]), { changed: true });
    assert.equal(await readFile(join(dir, 'a'), 'utf8'), 'A');
  });

  const traversals = ['../escape', '/etc/passwd', 'a/../../escape', '..data', '', 'a\0b', './a'];
  for (const name of traversals) {
    test(`refuses the name ${JSON.stringify(name)} and writes nothing`, async () => {
      const dir = await freshDir();
      await assert.rejects(
        writePayloadsAtomically(dir, [payload('ok', 'ok'), payload(name, 'x')]),
        InvalidInputError,
      );
      await assert.rejects(readdir(dir), { code: 'ENOENT' });
    });
  }

  test('refuses duplicate names and a file where a directory is needed', async () => {
    const dir = await freshDir();
    await assert.rejects(
      writePayloadsAtomically(dir, [payload('a', '1'), payload('a', '2')]),
      InvalidInputError,
    );
    await assert.rejects(
      writePayloadsAtomically(dir, [payload('a', '1'), payload('a/b', '2')]),
      InvalidInputError,
    );
  });

  test('refuses a mode outside the permission bits', async () => {
    const dir = await freshDir();
    await assert.rejects(writePayloadsAtomically(dir, [payload('a', '1', 0o4755)]), {
      name: 'InvalidInputError',
      message: `writing ${dir}: a has mode ${0o4755}; expected permission bits 0000–0777`,
    });
  });

  test('never replaces a file or link it did not make', async () => {
    const dir = await freshDir();
    await mkdir(dir);
    await writeFile(join(dir, 'a'), 'precious');
    await assert.rejects(writePayloadsAtomically(dir, [payload('a', 'A')]), {
      name: 'InvalidInputError',
      message: `writing ${dir}: a exists and was not written by smk; expected an empty directory or one smk manages`,
    });
    assert.equal(await readFile(join(dir, 'a'), 'utf8'), 'precious');
    await symlink('/etc/hostname', join(dir, 'b'));
    await assert.rejects(writePayloadsAtomically(dir, [payload('b', 'B')]), InvalidInputError);
    assert.equal(await readlink(join(dir, 'b')), '/etc/hostname');
  });

  describe('links planted in the directory by someone else', () => {
    const plantedHome = async (): Promise<{ dir: string; home: string }> => {
      const dir = await freshDir();
      const home = `${dir}-home`;
      await mkdir(join(home, 'docs'), { recursive: true });
      await writeFile(join(home, 'docs', 'thesis'), 'years of work');
      await mkdir(dir);
      return { dir, home };
    };

    test('..data pointing out of the directory: refused by name, nothing followed or deleted', async () => {
      const { dir, home } = await plantedHome();
      await symlink(`../${home.split('/').pop()}`, join(dir, '..data'));
      await assert.rejects(writePayloadsAtomically(dir, [payload('a', 'A')]), {
        name: 'InvalidInputError',
        message: `writing ${dir}: ${dir}/..data points to "../${home.split('/').pop()}", not to a version directory smk makes; refusing to follow or remove it`,
      });
      assert.equal(await readFile(join(home, 'docs', 'thesis'), 'utf8'), 'years of work');
      assert.deepEqual(await readdir(dir), ['..data'], 'nothing written either');
    });

    test('..data pointing at a version-like name that is itself a link: refused', async () => {
      const { dir, home } = await plantedHome();
      const lookalike = '..2025_01_02_03_04_05.123.AbCdEfGh';
      await symlink(home, join(dir, lookalike));
      await symlink(lookalike, join(dir, '..data'));
      await assert.rejects(writePayloadsAtomically(dir, [payload('a', 'A')]), {
        name: 'InvalidInputError',
        message: `writing ${dir}: ${dir}/${lookalike} (where ..data points) is not a directory smk made; refusing to follow or remove it`,
      });
      assert.equal(await readFile(join(home, 'docs', 'thesis'), 'utf8'), 'years of work');
    });

    test('a link inside an old version is removed as a link, its target kept', async () => {
      const { dir, home } = await plantedHome();
      await writePayloadsAtomically(dir, [payload('a', 'A')]);
      const version = await readlink(join(dir, '..data'));
      await symlink(home, join(dir, version, 'escape'));
      await writePayloadsAtomically(dir, [payload('a', 'A2')]);
      assert.equal(await readFile(join(home, 'docs', 'thesis'), 'utf8'), 'years of work');
      await assert.rejects(lstat(join(dir, version)), { code: 'ENOENT' });
    });

    test('a leftover ..data_tmp that is not a link is refused', async () => {
      const { dir } = await plantedHome();
      await mkdir(join(dir, '..data_tmp'));
      await assert.rejects(writePayloadsAtomically(dir, [payload('a', 'A')]), {
        message: `writing ${dir}: ${dir}/..data_tmp exists but is not a symlink smk made`,
      });
    });

    test('the directory itself as a link owned by another user is not followed', {
      skip: process.getuid?.() !== 0 && 'making a link owned by another user needs root',
    }, async () => {
      const { dir, home } = await plantedHome();
      const link = `${dir}-link`;
      await symlink(home, link);
      await lchown(link, 4242, 4242);
      await assert.rejects(writePayloadsAtomically(link, [payload('a', 'A')]), {
        message: `writing ${link}: ${link} is a symlink owned by uid 4242, not by this user; refusing to follow it`,
      });
      assert.deepEqual(await readdir(home), ['docs']);
    });
  });

  test('leaves unrelated files in the directory alone', async () => {
    const dir = await freshDir();
    await mkdir(dir);
    await writeFile(join(dir, 'other'), 'keep');
    await writePayloadsAtomically(dir, [payload('a', 'A')]);
    await writePayloadsAtomically(dir, [payload('b', 'B')]);
    assert.equal(await readFile(join(dir, 'other'), 'utf8'), 'keep');
  });
});

/**
 * A reader in another thread, reading as fast as it can while the main thread swaps versions.
 * Snapshot reads resolve ..data once and read every file of that version; visible reads open
 * each user-visible name on its own. Every file carries its generation and an end marker.
 */
const readerSource = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { dir, names, flag } = workerData;
const stop = new Int32Array(flag);
const shape = /^gen-(\\d+)\\|x{4000}\\|end$/;
const counts = { snapshots: 0, mixed: 0, vanished: 0, visibleReads: 0, malformed: 0, visibleMissing: 0, generations: new Set() };
while (Atomics.load(stop, 0) === 0) {
  try {
    const version = fs.readlinkSync(path.join(dir, '..data'));
    const seen = new Set();
    for (const name of names) {
      const match = shape.exec(fs.readFileSync(path.join(dir, version, name), 'utf8'));
      if (!match) { counts.malformed++; continue; }
      seen.add(match[1]);
    }
    counts.snapshots++;
    if (seen.size > 1) counts.mixed++;
    for (const g of seen) counts.generations.add(g);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
    counts.vanished++;
  }
  for (const name of names) {
    try {
      const content = fs.readFileSync(path.join(dir, name), 'utf8');
      counts.visibleReads++;
      if (!shape.test(content)) counts.malformed++;
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
      counts.visibleMissing++;
    }
  }
}
parentPort.postMessage({ ...counts, generations: counts.generations.size });
`;

test('a concurrent reader never sees a mix of versions or a partial file across many swaps', async (t) => {
  const dir = await freshDir();
  const names = ['a', 'b', 'conf/c', 'conf/d'];
  const generation = (n: number): Payload[] =>
    names.map((name) => payload(name, `gen-${n}|${'x'.repeat(4000)}|end`, n % 2 === 0 ? 0o644 : 0o640));
  await writePayloadsAtomically(dir, generation(0));

  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(readerSource, { eval: true, workerData: { dir, names, flag } });
  const report = new Promise<Record<string, number>>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const swaps = 300;
  for (let n = 1; n <= swaps; n++) {
    const result = await writePayloadsAtomically(dir, generation(n));
    assert.equal(result.changed, true);
  }
  Atomics.store(new Int32Array(flag), 0, 1);
  const counts = await report;
  await worker.terminate();
  t.diagnostic(`${swaps} swaps; reader: ${JSON.stringify(counts)}`);

  assert.equal(counts.mixed, 0, 'a snapshot mixed two versions');
  assert.equal(counts.malformed, 0, 'a file was read half-written');
  assert.ok((counts.snapshots ?? 0) > 50, `reader overlapped the writer (${JSON.stringify(counts)})`);
  assert.ok((counts.generations ?? 0) > 10, `reader saw many versions (${JSON.stringify(counts)})`);
  const entries = await readdir(dir);
  assert.equal(
    entries.filter((entry) => entry.startsWith('..') && entry !== '..data').length,
    1,
    'old versions removed',
  );
  assert.equal(await readFile(join(dir, 'conf', 'd'), 'utf8'), `gen-${swaps}|${'x'.repeat(4000)}|end`);
});
