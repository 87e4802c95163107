/**
 * The arrows of docs/architecture.md, checked: core imports only core; aws and kube only core and
 * themselves; no role (webhook, agent, csi, controller) imports another role; only cli/ and
 * config.ts sit above them. A relative import that breaks a rule fails here, naming the file.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const srcDir = dirname(new URL(import.meta.url).pathname);

const allowed: Record<string, readonly string[]> = {
  core: ['core'],
  aws: ['core', 'aws'],
  kube: ['core', 'kube'],
  webhook: ['core', 'aws', 'kube', 'webhook'],
  agent: ['core', 'aws', 'agent'],
  csi: ['core', 'aws', 'kube', 'csi'],
  controller: ['core', 'aws', 'kube', 'controller'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** The room of a path under src/: its first segment (or the file name for src/config.ts). */
function roomOf(path: string): string {
  return relative(srcDir, path).split('/')[0] ?? '';
}

test('docs/architecture.md: each room imports only the rooms below it, and no role imports another', () => {
  const broken: string[] = [];
  for (const file of sourceFiles(srcDir)) {
    const room = roomOf(file);
    const rooms = allowed[room];
    if (!rooms) continue;
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = roomOf(resolve(dirname(file), match[1] ?? ''));
      if (!rooms.includes(target)) broken.push(`${relative(srcDir, file)} imports ${match[1]} (${target})`);
    }
  }
  assert.deepEqual(broken, []);
});
