/**
 * Work a tenant's spec asks for whose cost its text decides, kept off the event loop that serves
 * health checks, mounts and syncs: full JMESPath expressions (only where the administrator enabled
 * them, `--allow-jmespath-expressions`; cost can grow exponentially with length) and, in the shared
 * controller, templates (a Liquid loop can spend its whole render budget). A small pool of worker
 * threads runs one object's work at a time, within a budget of CPU time (measured on the worker's
 * own thread, so a busy node does not fail cheap work), wall time and heap. Over budget, the
 * worker is terminated and a fresh one takes the next object.
 *
 * Fairness between tenants: each request names its tenant (the namespace); waiting requests are
 * queued per tenant and taken round-robin, and one tenant holds at most all workers but one at a
 * time (when the pool has more than one), so a namespace's slow templates delay its own syncs,
 * while another namespace's next request waits at most one budget.
 */
import { Worker } from 'node:worker_threads';
import { counter } from './metrics.ts';
import { renderBudgetMs } from './template.ts';
import type { TemplateJob, TemplateJobResult, TemplateRenderer } from './template-render.ts';

export interface ExpressionBudget {
  /** CPU time of the worker thread for one object's expressions. */
  readonly cpuMs: number;
  /** Wall time for the same: a bound when the thread is starved of CPU. */
  readonly wallMs: number;
  /** Old-generation heap of one worker. */
  readonly heapMb: number;
}

export const defaultExpressionBudget: ExpressionBudget = { cpuMs: 100, wallMs: 2_000, heapMb: 32 };
/** One object's templates: the same CPU time as their in-process render budget (liquidjs's own
 * wall-time renderLimit still applies inside the worker and usually stops a loop first). */
export const defaultTemplateBudget: Omit<ExpressionBudget, 'heapMb'> = {
  cpuMs: renderBudgetMs,
  wallMs: 2_000,
};

/** What the worker is asked (one object's value and expressions). */
export interface EvaluationRequest {
  readonly kind: 'jmespath';
  readonly id: number;
  readonly json: string;
  readonly expressions: readonly string[];
  /** A longer result counts as no string (a selection may not outgrow a secret). */
  readonly maxResultBytes: number;
}

/** What it answers: every expression's string, or undefined when any gave none. */
export interface EvaluationReply {
  readonly kind: 'jmespath';
  readonly id: number;
  readonly results: readonly string[] | undefined;
}

/** One object's templates: each one's text (re-parsed in the worker) and only the values it names. */
export interface RenderRequest extends TemplateJob {
  readonly kind: 'template';
  readonly id: number;
}

/** `rendering` says which template the worker started (so an over-budget stop can name it). */
export type RenderReply =
  | { readonly kind: 'template'; readonly id: number; readonly rendering: number }
  | { readonly kind: 'template'; readonly id: number; readonly result: TemplateJobResult };

export type WorkerRequest = EvaluationRequest | RenderRequest;
export type WorkerReply = EvaluationReply | RenderReply;

export type EvaluationOutcome =
  | { readonly ok: true; readonly results: readonly string[] }
  | { readonly ok: false; readonly outcome: 'no_string' | 'over_budget' | 'worker_failed' };

export interface ExpressionEvaluator {
  readonly budget: ExpressionBudget;
  /** Evaluates every expression on the JSON text, off the event loop and within the budget. */
  evaluate(
    json: string,
    expressions: readonly string[],
    maxResultBytes: number,
    tenant?: string,
  ): Promise<EvaluationOutcome>;
  /** Terminates the workers; later calls fail as worker_failed. */
  close(): Promise<void>;
}

/** The pool: JMESPath expressions and templates, one set of workers, one budget rule. */
export interface WorkerPool extends ExpressionEvaluator, TemplateRenderer {
  readonly templateBudget: Omit<ExpressionBudget, 'heapMb'>;
}

export interface ExpressionEvaluatorOptions {
  /** Worker threads at most (default 2); each starts on first need. */
  readonly workers?: number;
  /** Expressions' budget; `heapMb` is every worker's. */
  readonly budget?: Partial<ExpressionBudget>;
  readonly templateBudget?: Partial<Omit<ExpressionBudget, 'heapMb'>>;
}

const evaluations = counter(
  'smk_jmespath_expressions_total',
  'Objects whose JMESPath expressions were evaluated (only with --allow-jmespath-expressions), by outcome and (for failed) reason.',
  ['outcome', 'reason'],
);

const renders = counter(
  'smk_template_renders_total',
  'Objects whose templates were rendered in a worker thread (the controller), by outcome and (for failed) reason.',
  ['outcome', 'reason'],
);

/** The metric's `reason` for each failed evaluation (CamelCase, as every metric's reason). */
const failureReason = {
  no_string: 'NoString',
  over_budget: 'OverBudget',
  worker_failed: 'WorkerFailed',
} as const;

const renderFailureReason = {
  failed: 'RenderFailed',
  over_budget: 'OverBudget',
  worker_failed: 'WorkerFailed',
} as const;

/** The pool, as the roles that only evaluate expressions name it. */
export const createExpressionEvaluator: (options?: ExpressionEvaluatorOptions) => ExpressionEvaluator =
  createWorkerPool;

/** Where the worker's code is: beside this file, as .ts from source or .mjs in the bundle. */
function workerUrl(): URL {
  const bundled = !import.meta.url.endsWith('.ts');
  return new URL(bundled ? './expression-worker.mjs' : './expression-worker.ts', import.meta.url);
}

/** How one job ended, whatever its kind. */
type RunOutcome =
  | { readonly ok: true; readonly reply: WorkerReply }
  | { readonly ok: false; readonly outcome: 'over_budget' | 'worker_failed' };

interface Slot {
  readonly worker: Worker;
  readonly ready: Promise<boolean>;
  /** Settles the job this worker is running (at most one). */
  settle?: (outcome: RunOutcome) => void;
  expectedId?: number;
  /** The template the worker said it started, for the job it is running. */
  rendering?: number;
}

type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Job {
  readonly request: Unnumbered<WorkerRequest>;
  readonly tenant: string;
  readonly budget: Omit<ExpressionBudget, 'heapMb'>;
  /** Settles with the outcome and, for templates, the template the worker last started. */
  readonly resolve: (outcome: RunOutcome, rendering: number | undefined) => void;
}

const startupTimeoutMs = 15_000;

export function createWorkerPool(options: ExpressionEvaluatorOptions = {}): WorkerPool {
  const budget: ExpressionBudget = { ...defaultExpressionBudget, ...options.budget };
  const templateBudget = { ...defaultTemplateBudget, ...options.templateBudget };
  const size = Math.max(1, options.workers ?? 2);
  // With more than one worker, one is always left for the other tenants.
  const perTenant = Math.max(1, size - 1);
  const idle: Slot[] = [];
  const all = new Set<Slot>();
  /** Waiting jobs by tenant; the Map's order is the round-robin order. */
  const queues = new Map<string, Job[]>();
  const running = new Map<string, number>();
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
    worker.on('message', (message: WorkerReply | 'ready') => {
      if (message === 'ready') {
        clearTimeout(startup);
        markReady(true);
        return;
      }
      if (message.id !== slot.expectedId) return;
      if ('rendering' in message) {
        slot.rendering = message.rendering;
        return;
      }
      slot.settle?.({ ok: true, reply: message });
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
    const budget = job.budget;
    if (!(await slot.ready)) {
      job.resolve({ ok: false, outcome: 'worker_failed' }, undefined);
      all.delete(slot);
      await slot.worker.terminate();
      return false;
    }
    const id = nextId++;
    const started = performance.now();
    const cpuAtStart = await cpuMs(slot.worker);
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const outcome = await new Promise<RunOutcome>((resolve) => {
      slot.expectedId = id;
      slot.rendering = undefined;
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
      slot.worker.postMessage({ id, ...job.request } as WorkerRequest);
    });
    done = true;
    clearTimeout(timer);
    const rendering = slot.rendering;
    slot.settle = undefined;
    slot.expectedId = undefined;
    slot.rendering = undefined;
    job.resolve(outcome, rendering);
    if (outcome.ok) return true;
    // Over budget or broken: this worker may still be computing; it is replaced, not reused.
    all.delete(slot);
    await slot.worker.terminate();
    return false;
  }

  /**
   * The next job in round-robin order whose tenant is under its share of the workers. The unnamed
   * tenant ('') is a process serving one workload (the agent, `smk fetch`): it may use every worker.
   */
  function nextJob(): Job | undefined {
    for (const [tenant, jobs] of queues) {
      if (tenant !== '' && (running.get(tenant) ?? 0) >= perTenant) continue;
      const job = jobs.shift() as Job;
      // To the back of the round: the other tenants go first next time.
      queues.delete(tenant);
      if (jobs.length > 0) queues.set(tenant, jobs);
      return job;
    }
    return undefined;
  }

  function pump(): void {
    while (queues.size > 0 && !closed) {
      if (idle.length === 0 && all.size >= size) return;
      const job = nextJob();
      if (job === undefined) return;
      const slot = idle.pop() ?? spawn();
      running.set(job.tenant, (running.get(job.tenant) ?? 0) + 1);
      void run(slot, job).then((reusable) => {
        const left = (running.get(job.tenant) ?? 1) - 1;
        if (left > 0) running.set(job.tenant, left);
        else running.delete(job.tenant);
        if (reusable && !closed && all.has(slot)) idle.push(slot);
        pump();
      });
    }
  }

  function submit(
    request: Job['request'],
    tenant: string,
    jobBudget: Job['budget'],
  ): Promise<{ outcome: RunOutcome; rendering: number | undefined }> {
    if (closed)
      return Promise.resolve({ outcome: { ok: false, outcome: 'worker_failed' }, rendering: undefined });
    return new Promise((resolve) => {
      const job: Job = {
        request,
        tenant,
        budget: jobBudget,
        resolve: (outcome, rendering) => resolve({ outcome, rendering }),
      };
      const jobs = queues.get(tenant);
      if (jobs) jobs.push(job);
      else queues.set(tenant, [job]);
      pump();
    });
  }

  return {
    budget,
    templateBudget,
    async evaluate(json, expressions, maxResultBytes, tenant = '') {
      const { outcome } = await submit(
        { kind: 'jmespath', json, expressions: [...expressions], maxResultBytes },
        tenant,
        budget,
      );
      const result: EvaluationOutcome = !outcome.ok
        ? outcome
        : outcome.reply.kind === 'jmespath' && outcome.reply.results !== undefined
          ? { ok: true, results: outcome.reply.results }
          : { ok: false, outcome: 'no_string' };
      evaluations.inc(
        result.ok ? { outcome: 'ok' } : { outcome: 'failed', reason: failureReason[result.outcome] },
      );
      return result;
    },
    async render(job, tenant) {
      const { outcome, rendering } = await submit(
        { kind: 'template', texts: [...job.texts], scopes: [...job.scopes] },
        tenant,
        templateBudget,
      );
      const result: TemplateJobResult = !outcome.ok
        ? { ok: false, failedAt: rendering ?? 0, reason: outcome.outcome }
        : outcome.reply.kind === 'template' && 'result' in outcome.reply
          ? outcome.reply.result
          : { ok: false, failedAt: 0, reason: 'worker_failed' };
      renders.inc(
        result.ok ? { outcome: 'ok' } : { outcome: 'failed', reason: renderFailureReason[result.reason] },
      );
      return result;
    },
    async close() {
      closed = true;
      for (const jobs of queues.values()) {
        for (const job of jobs) job.resolve({ ok: false, outcome: 'worker_failed' }, undefined);
      }
      queues.clear();
      idle.length = 0;
      await Promise.all([...all].map((slot) => slot.worker.terminate()));
      all.clear();
    },
  };
}
