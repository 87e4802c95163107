/**
 * The docs say what the code does: every metric the code registers is in docs/metrics.md and no
 * other (committed files only); every command of the CLI is in README's table; every relative link of README and docs/
 * points at a file that exists; the pages a user reads carry no project-internal jargon. (Pure file
 * checks; no servers.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { commands } from '../../src/cli/commands.ts';

const root = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

/** The source files of `dir` in git (others' uncommitted work in the same tree does not count), else on disk. */
async function sourceFiles(dir: string): Promise<string[]> {
  const isSource = (name: string): boolean => name.endsWith('.ts') && !name.endsWith('.test.ts');
  try {
    const { stdout } = await run('git', ['ls-files', '-z', dir], { cwd: root });
    const tracked = stdout.split('\0').filter(isSource);
    if (tracked.length > 0) return tracked.map((name) => join(root, name));
  } catch {
    // Not a git checkout (an unpacked tarball): every file on disk.
  }
  const entries = await readdir(join(root, dir), { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && isSource(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

async function docFiles(): Promise<string[]> {
  const docs = (await readdir(join(root, 'docs'))).filter((name) => name.endsWith('.md'));
  return [
    join(root, 'README.md'),
    join(root, 'examples', 'README.md'),
    ...docs.map((name) => join(root, 'docs', name)),
  ].filter((path) => existsSync(path));
}

describe('docs', () => {
  it('docs/metrics.md lists exactly the metrics the code registers', async () => {
    const registered = new Set<string>();
    for (const file of await sourceFiles('src')) {
      const text = await readFile(file, 'utf8');
      for (const match of text.matchAll(/\b(?:counter|gauge|histogram)\(\s*'(smk_[a-z0-9_]+)'/g)) {
        if (match[1]) registered.add(match[1]);
      }
    }
    assert.ok(registered.size > 10, `found only ${registered.size} metrics in src`);
    const page = await readFile(join(root, 'docs', 'metrics.md'), 'utf8');
    const documented = new Set(
      [...page.matchAll(/^\| `(smk_[a-z0-9_]+)`/gm)]
        .map((match) => match[1])
        .filter((name) => name !== undefined),
    );
    assert.deepEqual(
      [...registered].filter((name) => !documented.has(name)).sort(),
      [],
      'registered in src but not in docs/metrics.md: add a table row for each',
    );
    assert.deepEqual(
      [...documented].filter((name) => !registered.has(name)).sort(),
      [],
      'in docs/metrics.md but registered nowhere in src',
    );
  });

  it("README's command table names every smk command", async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    for (const name of Object.keys(commands)) {
      assert.match(readme, new RegExp(`^\\| \`smk ${name}\\b`, 'm'), `smk ${name} missing from README`);
    }
  });

  it('every relative link in README and docs/ points at a file that exists', async () => {
    const broken: string[] = [];
    for (const file of await docFiles()) {
      const text = await readFile(file, 'utf8');
      for (const match of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = match[1] ?? '';
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(dirname(file), target))) broken.push(`${file.slice(root.length)} → ${target}`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it('user-facing docs name upstream projects, not internal labels (seed NNN, the brief, issue N)', async () => {
    const userFiles = [
      ...(await docFiles()),
      join(root, 'deploy', 'helm', 'smk', 'README.md'),
      join(root, 'deploy', 'helm', 'smk', 'templates', 'NOTES.txt'),
      join(root, 'deploy', 'helm', 'smk', 'values.yaml'),
      ...(await readdir(join(root, 'deploy', 'crds'))).map((name) => join(root, 'deploy', 'crds', name)),
      ...(await readdir(join(root, 'examples'), { withFileTypes: true, recursive: true }))
        .filter((entry) => entry.isFile() && /\.(md|ya?ml)$/.test(entry.name))
        .map((entry) => join(entry.parentPath, entry.name)),
    ];
    const jargon = /\bseeds?\b|\bthe brief\b|\bissue \d+|\bissues? #\d+/i;
    const found: string[] = [];
    for (const file of userFiles) {
      const lines = (await readFile(file, 'utf8')).split('\n');
      lines.forEach((line, index) => {
        if (jargon.test(line)) found.push(`${file.slice(root.length)}:${index + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(found, []);
  });
});
