/**
 * Full JMESPath expressions, for clusters whose administrator enabled them
 * (`--allow-jmespath-expressions`). An expression's cost can grow exponentially with its length,
 * so it never runs on the event loop that serves health checks, mounts and syncs: a small pool
 * of worker threads runs one object's expressions at a time, each within a budget of CPU time
 * (measured on the worker's own thread, so a busy node does not fail a cheap expression), wall
 * time and heap. Over budget, the worker is terminated and a fresh one takes the next object.
 */
import { Worker } from 'node:worker_threads';
import { counter } from './metrics.ts';

export interface ExpressionBudget {
  /** CPU time of the worker thread for one object's expressions. */
  readonly cpuMs: number;
  /** Wall time for the same: a bound when the thread is starved of CPU. */
  readonly wallMs: number;
  /** Old-generation heap of one worker. */
  readonly heapMb: number;
}

export const defaultExpressionBudget: ExpressionBudget = { cpuMs: 100, wallMs: 2_000, heapMb: 32 };

/** What the worker is asked (one object's value and expressions). */
export interface EvaluationRequest {
  readonly id: number;
  readonly json: string;
  readonly expressions: readonly string[];
  /** A longer result counts as no string (a selection may not outgrow a secret). */
  readonly maxResultBytes: number;
}

/** What it answers: every expression's string, or undefined when any gave none. */
export interface EvaluationReply {
  readonly id: number;
  readonly results: readonly string[] | undefined;
}

export type EvaluationOutcome =
  | { readonly ok: true; readonly results: readonly string[] }
  | { readonly ok: false; readonly outcome: 'no_string' | 'over_budget' | 'worker_failed' };

export interface ExpressionEvaluator {
  readonly budget: ExpressionBudget;
  /** Evaluates every expression on the JSON text, off the event loop and within the budget. */
  evaluate(json: string, expressions: readonly string[], maxResultBytes: number): Promise<EvaluationOutcome>;
  /** Terminates the workers; later calls fail as worker_failed. */
  close(): Promise<void>;
}

export interface ExpressionEvaluatorOptions {
  /** Worker threads at most (default 2); each starts on first need. */
  readonly workers?: number;
  readonly budget?: Partial<ExpressionBudget>;
}

const evaluations = counter(
  'smk_jmespath_expressions_total',
  'Objects whose JMESPath expressions were evaluated (only with --allow-jmespath-expressions), by outcome and (for failed) reason.',
  ['outcome', 'reason'],
);

/** The metric's `reason` for each failed evaluation (CamelCase, as every metric's reason). */
const failureReason = {
  no_string: 'NoString',
  over_budget: 'OverBudget',
  worker_failed: 'WorkerFailed',
} as const;

/** Where the worker's code is: beside this file, as .ts from source or .mjs in the bundle. */
function workerUrl(): URL {
  const bundled = !import.meta.url.endsWith('.ts');
  return new URL(bundled ? './expression-worker.mjs' : './expression-worker.ts', import.meta.url);
}

interface Slot {
  readonly worker: Worker;
  readonly ready: Promise<boolean>;
  /** Settles the job this worker is running (at most one). */
  settle?: (outcome: EvaluationOutcome) => void;
  expectedId?: number;
}

interface Job {
  readonly request: Omit<EvaluationRequest, 'id'>;
  readonly resolve: (outcome: EvaluationOutcome) => void;
}

const startupTimeoutMs = 15_000;

export function createExpressionEvaluator(options: ExpressionEvaluatorOptions = {}): ExpressionEvaluator {
  const budget: ExpressionBudget = { ...defaultExpressionBudget, ...options.budget };
  const size = Math.max(1, options.workers ?? 2);
  const idle: Slot[] = [];
  const all = new Set<Slot>();
  const queue: Job[] = [];
  let nextId = 1;
  let closed = false;

  function spawn(): Slot {
    const worker = new Worker(workerUrl(), {
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: budget.heapMb, maxYoungGenerationSizeMb: 8 },
    });
    // An idle worker must not keep a one-shot command (smk fetch) alive; run() refs it while busy.
    worker.unref();
    let markReady: (ok: boolean) => void = () => {};
    const ready = new Promise<boolean>((resolve) => {
      markReady = resolve;
    });
    const slot: Slot = { worker, ready };
    const startup = setTimeout(() => markReady(false), startupTimeoutMs);
    startup.unref();
    worker.on('message', (message: EvaluationReply | 'ready') => {
      if (message === 'ready') {
        clearTimeout(startup);
        markReady(true);
        return;
      }
      if (message.id !== slot.expectedId) return;
      slot.settle?.(
        message.results === undefined
          ? { ok: false, outcome: 'no_string' }
          : { ok: true, results: message.results },
      );
    });
    worker.on('error', (error: Error & { code?: string }) => {
      markReady(false);
      // Over the heap limit is over budget; anything else is a fault of ours.
      slot.settle?.({
        ok: false,
        outcome: error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'over_budget' : 'worker_failed',
      });
    });
    worker.on('exit', () => {
      markReady(false);
      all.delete(slot);
      const waiting = idle.indexOf(slot);
      if (waiting !== -1) idle.splice(waiting, 1);
      slot.settle?.({ ok: false, outcome: 'worker_failed' });
    });
    all.add(slot);
    return slot;
  }

  async function cpuMs(worker: Worker): Promise<number | undefined> {
    try {
      const usage = await worker.cpuUsage();
      return (usage.user + usage.system) / 1000;
    } catch {
      return undefined;
    }
  }

  /** Runs one job on `slot`; true when the slot may take another. */
  async function run(slot: Slot, job: Job): Promise<boolean> {
    slot.worker.ref();
    try {
      return await runReferenced(slot, job);
    } finally {
      slot.worker.unref();
    }
  }

  async function runReferenced(slot: Slot, job: Job): Promise<boolean> {
    if (!(await slot.ready)) {
      job.resolve({ ok: false, outcome: 'worker_failed' });
      all.delete(slot);
      await slot.worker.terminate();
      return false;
    }
    const id = nextId++;
    const started = performance.now();
    const cpuAtStart = await cpuMs(slot.worker);
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const outcome = await new Promise<EvaluationOutcome>((resolve) => {
      slot.expectedId = id;
      slot.settle = resolve;
      // Checked when the budget could first be spent, then again for whatever was not yet used:
      // a thread starved of CPU gets its full CPU budget, up to the wall-time bound.
      const check = async (): Promise<void> => {
        const now = await cpuMs(slot.worker);
        if (done) return;
        const used = now === undefined || cpuAtStart === undefined ? undefined : now - cpuAtStart;
        const elapsed = performance.now() - started;
        if ((used ?? elapsed) >= budget.cpuMs || elapsed >= budget.wallMs) {
          resolve({ ok: false, outcome: 'over_budget' });
          return;
        }
        const left = Math.min(budget.cpuMs - (used ?? elapsed), budget.wallMs - elapsed);
        timer = setTimeout(() => void check(), Math.max(5, left));
      };
      timer = setTimeout(() => void check(), budget.cpuMs);
      slot.worker.postMessage({ id, ...job.request } satisfies EvaluationRequest);
    });
    done = true;
    clearTimeout(timer);
    slot.settle = undefined;
    slot.expectedId = undefined;
    evaluations.inc(
      outcome.ok ? { outcome: 'ok' } : { outcome: 'failed', reason: failureReason[outcome.outcome] },
    );
    job.resolve(outcome);
    if (outcome.ok || outcome.outcome === 'no_string') return true;
    // Over budget or broken: this worker may still be computing; it is replaced, not reused.
    all.delete(slot);
    await slot.worker.terminate();
    return false;
  }

  function pump(): void {
    while (queue.length > 0 && !closed) {
      let slot = idle.pop();
      if (slot === undefined) {
        if (all.size >= size) return;
        slot = spawn();
      }
      const job = queue.shift() as Job;
      const taken = slot;
      void run(taken, job).then((reusable) => {
        if (reusable && !closed && all.has(taken)) idle.push(taken);
        pump();
      });
    }
  }

  return {
    budget,
    evaluate(json, expressions, maxResultBytes) {
      if (closed) return Promise.resolve({ ok: false, outcome: 'worker_failed' });
      return new Promise((resolve) => {
        queue.push({ request: { json, expressions: [...expressions], maxResultBytes }, resolve });
        pump();
      });
    },
    async close() {
      closed = true;
      for (const job of queue.splice(0)) job.resolve({ ok: false, outcome: 'worker_failed' });
      idle.length = 0;
      await Promise.all([...all].map((slot) => slot.worker.terminate()));
      all.clear();
    },
  };
}
