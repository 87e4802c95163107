import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { nodeVersionProblem, requiredNodeMajor } from './node-version.mjs';

test('Node 24 and later pass; older majors get the message naming the version found', () => {
  assert.equal(nodeVersionProblem('24.0.0'), undefined);
  assert.equal(nodeVersionProblem('25.1.3'), undefined);
  assert.equal(nodeVersionProblem('100.0.0'), undefined);
  assert.equal(nodeVersionProblem('20.20.2'), 'smk needs Node 24 or later (found v20.20.2)');
  assert.equal(nodeVersionProblem('23.11.0'), 'smk needs Node 24 or later (found v23.11.0)');
  assert.equal(nodeVersionProblem('8.17.0'), 'smk needs Node 24 or later (found v8.17.0)');
});

test("package.json's engines and the start-up check name the same Node", async () => {
  const manifest = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
    engines: { node: string };
  };
  assert.equal(manifest.engines.node, `>=${requiredNodeMajor}`);
});
