/**
 * The end-of-run leak scan (scripts/test.ts calls it before stopping the world): registers every
 * secret value in the run's moto, then scans the captured output of every test process, the
 * bodies of smk's endpoints they fetched, and the API server's audit log. Any hit fails the run.
 */
import { type CollectOptions, collectMotoValues } from './moto-values.ts';
import { NeedleMatcher, needlesFor, type SecretRecord } from './needles.ts';
import { formatHits, type LeakHit, scanAuditLog, scanCaptureDir } from './scan.ts';

export interface LeakScanInput {
  /** moto's endpoint: where the values are read from. */
  readonly awsEndpoint: string;
  /** Directory of per-process capture files (capture.ts). */
  readonly captureDir: string;
  /** The test bed's audit log, if there was a bed. */
  readonly auditLogPath?: string;
  /** Values registered on top of moto's. */
  readonly extraRecords?: readonly SecretRecord[];
  /** Which of moto's values to register (default all, deleted ones restored). */
  readonly moto?: CollectOptions;
}

export interface LeakScanResult {
  readonly hits: LeakHit[];
  /** One paragraph for the run's output: what was registered and scanned, and every hit. */
  readonly report: string;
}

export async function runLeakScan(input: LeakScanInput): Promise<LeakScanResult> {
  const started = performance.now();
  const moto = await collectMotoValues(input.awsEndpoint, input.moto);
  const records = [...moto.records, ...(input.extraRecords ?? [])];
  const matcher = new NeedleMatcher(needlesFor(records));
  const hits: LeakHit[] = [
    ...(await scanCaptureDir(input.captureDir, matcher)),
    ...(input.auditLogPath ? await scanAuditLog(input.auditLogPath, matcher) : []),
  ];
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const lines = [
    `leak scan: ${records.length} values registered (${moto.secrets} secrets, ${moto.parameters} parameters in moto) → ${matcher.size} needles;`,
    `  scanned the output of every test process${input.auditLogPath ? ' and the API server audit log' : ''} in ${seconds} s: ${hits.length === 0 ? 'no secret value found' : `${hits.length} HITS`}`,
  ];
  if (moto.problems.length > 0) {
    lines.push(`  could not read ${moto.problems.length}: ${moto.problems.slice(0, 5).join('; ')}`);
  }
  if (hits.length > 0) lines.push(formatHits(hits));
  return { hits, report: lines.join('\n') };
}
