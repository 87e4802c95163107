/**
 * A node:test reporter that writes one line per failed test (file, test name, first line of the
 * error). scripts/test.ts runs it beside the spec reporter and prints its file again at the very end
 * of the run: CI shows only the tail of a long log, and the world's logs and the node phase come
 * after the plain phase's own summary, which would otherwise be the only place naming the failure.
 */
import type { TestEvent } from 'node:test/reporters';

type FailEvent = Extract<TestEvent, { type: 'test:fail' }>;

function describe(event: FailEvent): string | undefined {
  const { name, file, line, details } = event.data;
  const error = details.error as Error & { failureType?: string; cause?: unknown };
  // A suite fails when one of its tests fails; the test's own line already names it.
  if (error.failureType === 'subtestsFailed') return undefined;
  const cause = error.cause instanceof Error ? error.cause : error;
  const firstLine =
    String(cause.message ?? cause)
      .split('\n')[0]
      ?.slice(0, 300) ?? '';
  const where = file ? `${file.replace(`${process.cwd()}/`, '')}${line ? `:${line}` : ''}` : '(unknown file)';
  return `✖ ${where} › ${name}: ${firstLine}\n`;
}

export default async function* failuresReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const line = describe(event);
    if (line) yield line;
  }
}
