/**
 * `node --import` this to record every module a process resolves (ESM imports, dynamic imports and
 * require alike), one URL a line, in the file SMK_TEST_MODULE_LOG names: a test reads which
 * packages a command loaded.
 */
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const log = process.env.SMK_TEST_MODULE_LOG;
if (log) {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      appendFileSync(log, `${resolved.url}\n`);
      return resolved;
    },
  });
}
