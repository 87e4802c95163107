#!/usr/bin/env node
// The program's entry (npm run smk, and dist/smk.mjs once bundled). Plain JavaScript that any Node
// still in use parses, so an older Node is told what smk needs instead of failing with a stack
// trace on syntax or an API of the code it would load: the version is checked first, then the
// program is loaded (main.ts; in the bundle, its own chunk).
import nodeModule from 'node:module';
import process from 'node:process';
import { nodeVersionProblem } from './node-version.mjs';

const problem = nodeVersionProblem(process.versions.node);
if (problem === undefined) {
  // V8's code cache on disk makes every later start skip compiling the bundle (a no-op where the
  // cache directory is not writable, e.g. a read-only root file system without a writable tmp).
  nodeModule.enableCompileCache?.();
  await import('./main.ts');
} else {
  process.stderr.write(`${problem}\n`);
  process.exitCode = 1;
}
