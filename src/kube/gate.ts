/**
 * Per-controller gating, as controller-runtime's WaitForCacheSync per controller: a controller
 * starts once the caches it reads have listed, so a list the API server refuses (RBAC not granted,
 * a CRD not installed) holds only the controllers that read that kind — a kind two controllers
 * share holds both. And readiness per controller, naming what each one waits for.
 *
 * The process is ready when every controller it runs is running and healthy: a pod whose
 * rotation cannot start is not "ready" (a rollout of it stalls, an alert fires), but it stays
 * live and the controllers that can run, run.
 */
import { describeError } from '../core/errors.ts';
import { apiStatus } from './client.ts';
import { refusalMessage } from './informer.ts';

/** preparing: its prepare (CRD probes) runs; waiting: for its caches; running: cachesSynced ran. */
export type ControllerPhase = 'preparing' | 'waiting' | 'running';

export interface CacheState {
  /** What it lists, e.g. `secrets in namespace a (label selector …)`. */
  readonly resource: string;
  /** Listed once. */
  readonly synced: boolean;
  /** Listed, and no restart pending. */
  readonly healthy: boolean;
  /** Its last list or watch failure since its last good list (read only while it is not healthy). */
  readonly problem: string | undefined;
}

/** A CRD probe a controller awaits that has not answered yet. */
export interface ProbeState {
  readonly resource: string;
  readonly problem: string | undefined;
}

export interface ControllerState {
  readonly name: string;
  readonly phase: ControllerPhase;
  /** The caches it asked for (the manager's shared ones). */
  readonly caches: readonly CacheState[];
  readonly probes: readonly ProbeState[];
  /** Its own check (e.g. a key not loaded yet); true when it has none. */
  readonly selfReady: boolean;
}

export interface ReadinessCheck {
  readonly name: string;
  readonly ok: boolean;
  /** `ok`, or what it waits for. */
  readonly detail: string;
}

/** Whether a controller waiting for its caches may start now: every cache it reads has listed. */
export function mayStart(state: Pick<ControllerState, 'phase' | 'caches'>): boolean {
  return state.phase === 'waiting' && state.caches.every((cache) => cache.synced);
}

/** What one controller waits for, or `ok`. */
export function controllerCheck(state: ControllerState): ReadinessCheck {
  const waits: string[] = [];
  if (state.phase === 'preparing') {
    const probes = state.probes.map((probe) =>
      probe.problem ? `${probe.resource} is served: ${probe.problem}` : `${probe.resource} is served`,
    );
    waits.push(probes.length > 0 ? `waiting to learn whether ${probes.join('; ')}` : 'preparing');
  }
  // Before it runs, a cache holds it until the first list; once it runs, while it restarts.
  const pending = state.caches.filter((cache) =>
    state.phase === 'running' ? !cache.healthy : !cache.synced,
  );
  if (pending.length > 0) {
    const what = pending.map((cache) => cache.problem ?? `${cache.resource} (listing)`).join('; ');
    waits.push(`${state.phase === 'running' ? 'a cache is restarting' : 'waiting for its caches'}: ${what}`);
  }
  if (waits.length === 0 && state.phase === 'waiting') waits.push('starting');
  if (waits.length === 0 && !state.selfReady) waits.push('running, not ready by its own check');
  return waits.length === 0
    ? { name: state.name, ok: true, detail: 'ok' }
    : { name: state.name, ok: false, detail: waits.join('; ') };
}

/**
 * The process's readiness, in the API server's /readyz format: one `[+]name ok` or
 * `[-]name detail` line per check, then the verdict.
 */
export function readinessReport(checks: readonly ReadinessCheck[]): { ready: boolean; text: string } {
  const ready = checks.every((check) => check.ok);
  const lines = checks.map((check) =>
    check.ok ? `[+]${check.name} ok` : `[-]${check.name} ${check.detail}`,
  );
  lines.push(ready ? 'ok' : 'not ready');
  return { ready, text: `${lines.join('\n')}\n` };
}

/**
 * A list, watch or probe failure as a person reads it: a refusal names the verb and the resource
 * (what RBAC to grant); anything else its HTTP status. Never the response body.
 */
export function failureText(verb: 'list' | 'watch', resource: string, error: unknown): string {
  const status = apiStatus(error) ?? (error as { statusCode?: number } | null)?.statusCode;
  if (status === 401 || status === 403) return refusalMessage(status, verb, resource);
  if (status === 404) return `${verb} ${resource}: not found (HTTP 404; is its CRD installed?) (retrying)`;
  return `${verb} ${resource} failed (${status ? `HTTP ${status}` : describeError(error)}) (retrying)`;
}
