/**
 * `smk doctor`'s output: a readable pass/fail list with a hint under each failure and warning, a
 * count line, and the exit code (1 when anything failed; warnings and skips do not fail).
 */
import type { CheckResult, CheckStatus } from './checks.ts';

const marks: Readonly<Record<CheckStatus, string>> = { pass: '✔', fail: '✘', warn: '!', skip: '-' };

export function formatReport(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((result) => result.name.length));
  const lines: string[] = [];
  for (const result of results) {
    const detail = result.status === 'skip' ? `skipped: ${result.detail}` : result.detail;
    lines.push(`  ${marks[result.status]} ${result.name.padEnd(width)}  ${detail}`);
    if (result.hint && (result.status === 'fail' || result.status === 'warn')) {
      lines.push(`      hint: ${result.hint}`);
    }
  }
  const count = (status: CheckStatus): number => results.filter((result) => result.status === status).length;
  lines.push('');
  lines.push(
    `${count('pass')} passed, ${count('fail')} failed, ${count('warn')} warning(s), ${count('skip')} skipped`,
  );
  return `${lines.join('\n')}\n`;
}

export function exitCode(results: readonly CheckResult[]): number {
  return results.some((result) => result.status === 'fail') ? 1 : 0;
}
