/**
 * What resource-limit tests share: the chart's own limits (values.yaml, so a test follows the
 * chart when it changes) and a process's resident memory sampled while an attack runs.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

const valuesPath = new URL('../../deploy/helm/smk/values.yaml', import.meta.url);

export interface RoleLimits {
  /** resources.limits.memory in bytes. */
  readonly memoryLimitBytes: number;
  /** nodeOptions (V8 heap caps), or '' when the role sets none. */
  readonly nodeOptions: string;
}

/** Bytes of a Kubernetes memory quantity (`256Mi`, `1Gi`, `500M`). */
export function quantityBytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity);
  if (!match) throw new Error(`not a memory quantity: ${quantity}`);
  const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 };
  return Number(match[1]) * (match[2] ? (units[match[2]] ?? 1) : 1);
}

/** The chart's memory limit and heap caps for one role (`webhook`, `controller`, `csiProvider`). */
export async function chartLimits(role: 'webhook' | 'controller' | 'csiProvider'): Promise<RoleLimits> {
  const values = parse(await readFile(valuesPath, 'utf8')) as Record<
    string,
    { resources?: { limits?: { memory?: string } }; nodeOptions?: string } | undefined
  >;
  const memory = values[role]?.resources?.limits?.memory;
  if (memory === undefined) throw new Error(`values.yaml: ${role}.resources.limits.memory is not set`);
  return { memoryLimitBytes: quantityBytes(memory), nodeOptions: values[role]?.nodeOptions ?? '' };
}

/** Resident set size of a process from /proc (Linux), or undefined once it is gone. */
export function residentBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface RssWatch {
  /** The highest RSS seen so far. */
  readonly peakBytes: number;
  stop(): number;
}

/** Samples a process's RSS every `intervalMs` until stopped; `stop()` returns the peak. */
export function watchRss(pid: number, intervalMs = 100): RssWatch {
  let peak = residentBytes(pid) ?? 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, residentBytes(pid) ?? 0);
  }, intervalMs);
  return {
    get peakBytes() {
      return peak;
    },
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, residentBytes(pid) ?? 0);
      return peak;
    },
  };
}

export const mebibytes = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
