/** The tar writer against GNU tar, an independent reader: names, owners, modes, links, long paths. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type TarEntry, tarChunks } from './tar.ts';

const run = promisify(execFile);
const longDir = `usr/${'d'.repeat(90)}/${'e'.repeat(40)}`;
const entries: TarEntry[] = [
  { type: 'dir', path: 'home/nonroot', mode: 0o700, uid: 65532, gid: 65532 },
  { type: 'dir', path: 'tmp', mode: 0o1777, uid: 0, gid: 0 },
  { type: 'file', path: 'usr/bin/tool', mode: 0o755, uid: 0, gid: 0, data: Buffer.from('#!/bin/true\n') },
  { type: 'file', path: `${longDir}/file.txt`, mode: 0o644, uid: 0, gid: 0, data: Buffer.alloc(1500, 7) },
  { type: 'file', path: 'empty', mode: 0o600, uid: 1, gid: 2, data: Buffer.alloc(0) },
  { type: 'symlink', path: 'usr/local/bin/tool', target: '../../bin/tool' },
];

describe('tarChunks', () => {
  test('GNU tar reads back every entry as written, and the bytes do not depend on the run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smk-tar-'));
    try {
      const archive = Buffer.concat([...tarChunks(entries)]);
      assert.equal(archive.byteLength % 512, 0);
      await writeFile(join(dir, 'a.tar'), archive);
      const { stdout } = await run('tar', ['--numeric-owner', '--full-time', '-tvf', join(dir, 'a.tar')]);
      const listed = stdout.trim().split('\n');
      assert.deepEqual(
        listed.map((line) => line.split(/\s+/).slice(0, 3).join(' ')),
        [
          'drwx------ 65532/65532 0',
          'drwxrwxrwt 0/0 0',
          '-rwxr-xr-x 0/0 12',
          '-rw-r--r-- 0/0 1500',
          '-rw------- 1/2 0',
          'lrwxrwxrwx 0/0 0',
        ],
      );
      assert.ok(listed.every((line) => line.includes('1970-01-01 00:00:00')));
      assert.ok(listed[3]?.endsWith(`${longDir}/file.txt`), listed[3]);
      assert.ok(listed[5]?.endsWith('usr/local/bin/tool -> ../../bin/tool'), listed[5]);
      const again = Buffer.concat([...tarChunks(entries)]);
      const digest = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
      assert.equal(digest(again), digest(archive));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a path that no ustar header can hold is refused, naming it', () => {
    const path = `${'x'.repeat(120)}/${'y'.repeat(120)}`;
    assert.throws(
      () => [...tarChunks([{ type: 'dir', path, mode: 0o755, uid: 0, gid: 0 }])],
      /path too long/,
    );
  });
});
