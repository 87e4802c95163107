/**
 * Fuzz: file naming. No name the core accepts resolves outside the target directory (checked
 * with path.resolve), for any pathTranslation; and the atomic writer, given accepted names,
 * creates nothing outside the directory it was given.
 */
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { writePayloadsAtomically } from '../../src/core/atomic-write.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import { assertSafeRelativeName, translatePath, unsafeNameReason } from '../../src/core/naming.ts';
import type { Payload } from '../../src/core/spec-types.ts';
import { nameArb } from './arbitraries.ts';
import { checkProperty } from './settings.ts';

const targetDir = resolve('/var/run/secrets/fuzz-target');

function outsideReason(dir: string, name: string): string | undefined {
  const full = resolve(dir, name);
  if (full === dir) return `resolves to the directory itself`;
  if (!full.startsWith(dir + sep)) return `resolves to ${full}`;
  return undefined;
}

const translationArb = fc.oneof(
  fc.constant<string | false>(false),
  fc.constantFrom<string | false>('_', '-', '\\', ' ', '~', '🔑'),
);

test('the containment check itself fails on an escaping name (so the properties below can fail)', () => {
  assert.equal(outsideReason(targetDir, 'a/b'), undefined);
  assert.match(outsideReason(targetDir, '../etc/passwd') ?? '', /resolves to \/var\/run\/secrets\/etc/);
  assert.match(outsideReason(targetDir, 'a/../..') ?? '', /resolves to/);
  assert.equal(outsideReason(targetDir, '.'), 'resolves to the directory itself');
});

test('fuzz: every name the core accepts stays inside the target directory', async (t) => {
  let accepted = 0;
  await checkProperty(
    t,
    20_000,
    fc.property(nameArb, translationArb, (raw, translation) => {
      const name = translatePath(raw, translation);
      const reason = unsafeNameReason(name);
      if (reason !== undefined) {
        assert.throws(
          () => assertSafeRelativeName(name, 'objects[0] (x)', 'objectAlias'),
          (error: unknown) => error instanceof InvalidInputError && error.field === 'objectAlias',
        );
        return;
      }
      accepted += 1;
      assert.equal(outsideReason(targetDir, name), undefined, `accepted ${JSON.stringify(name)} escapes`);
      assert.ok(!name.split('/')[0]?.startsWith('..'), `accepted ${JSON.stringify(name)} shadows ..data`);
    }),
  );
  t.diagnostic(`fuzz: ${accepted} names accepted`);
  assert.ok(accepted > 0);
});

/** Every path under `root`, relative, symlinks not followed; links listed with their targets. */
async function walk(root: string, dir = root): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    found.push(relative(root, full));
    if (entry.isSymbolicLink()) {
      const target = resolve(dir, await readlink(full));
      found.push(`${relative(root, full)} -> ${relative(root, target)}`);
    } else if (entry.isDirectory()) {
      found.push(...(await walk(root, full)));
    }
  }
  return found;
}

test('fuzz: the atomic writer writes accepted names only inside its directory', async (t) => {
  const parent = await mkdtemp(join(tmpdir(), 'smk-fuzz-write-'));
  t.after(() => rm(parent, { recursive: true, force: true }));
  const namesArb = fc.uniqueArray(
    fc.tuple(nameArb, translationArb).map(([raw, translation]) => translatePath(raw, translation)),
    { minLength: 1, maxLength: 5 },
  );
  let round = 0;
  await checkProperty(
    t,
    150,
    fc.asyncProperty(namesArb, async (names) => {
      const safe = names.filter((name) => unsafeNameReason(name) === undefined);
      // A name that is both a file and another's directory is refused by the spec parser earlier.
      const usable = safe.filter(
        (name) => !safe.some((other) => other !== name && other.startsWith(`${name}/`)),
      );
      if (usable.length === 0) return;
      round += 1;
      const dir = join(parent, `target-${round}`);
      const payloads: Payload[] = usable.map((name) => ({
        name,
        bytes: new TextEncoder().encode(`value of ${name}`),
        mode: 0o600,
        objectVersion: { id: name, version: 'v1' },
      }));
      try {
        await writePayloadsAtomically(dir, payloads);
      } catch (error) {
        // Refusing is allowed; writing outside is not (checked below either way).
        assert.ok(error instanceof Error);
      }
      const outside = (await readdir(parent)).filter((entry) => !entry.startsWith('target-'));
      assert.deepEqual(outside, [], `written beside the target: ${outside.join(', ')}`);
      for (const entry of await walk(dir)) {
        const path = entry.includes(' -> ') ? (entry.split(' -> ')[1] ?? '') : entry;
        assert.ok(!path.startsWith(`..${sep}`) && path !== '..', `${entry} leaves the target directory`);
      }
      const stat = await lstat(dir).catch(() => undefined);
      if (stat) assert.ok(stat.isDirectory());
    }),
  );
  t.diagnostic(`fuzz: ${round} sets of names written`);
});
