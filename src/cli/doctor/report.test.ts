import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckResult } from './checks.ts';
import { exitCode, formatReport } from './report.ts';

const results: CheckResult[] = [
  { name: 'cluster reachable', status: 'pass', detail: 'Kubernetes v1.35.4' },
  {
    name: 'CRDs installed',
    status: 'fail',
    detail: 'missing: secretsyncs.smk.dev',
    hint: 'kubectl apply -f deploy/crds/',
  },
  { name: 'SecretProviderClass CRD', status: 'warn', detail: 'not installed', hint: 'install the driver' },
  { name: 'rotation queue reachable', status: 'skip', detail: 'give --queue-url URL', hint: 'never shown' },
];

describe('formatReport', () => {
  it('lists every check with its mark, a hint under failures and warnings, and the counts', () => {
    assert.equal(
      formatReport(results),
      [
        '  ✔ cluster reachable         Kubernetes v1.35.4',
        '  ✘ CRDs installed            missing: secretsyncs.smk.dev',
        '      hint: kubectl apply -f deploy/crds/',
        '  ! SecretProviderClass CRD   not installed',
        '      hint: install the driver',
        '  - rotation queue reachable  skipped: give --queue-url URL',
        '',
        '1 passed, 1 failed, 1 warning(s), 1 skipped',
        '',
      ].join('\n'),
    );
  });

  it('exits 1 only when a check failed', () => {
    assert.equal(exitCode(results), 1);
    assert.equal(exitCode(results.filter((result) => result.status !== 'fail')), 0);
  });
});
