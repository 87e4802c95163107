/**
 * What every doctor check shares: the verdict (pass / fail / warn / skip, one line of detail and,
 * for a failure, a hint), the inputs, a deadline per check, and an API failure put in a few words.
 */
import type { AwsClients } from '../../aws/index.ts';
import type { KubeConfig } from '../../kube/client.ts';
import { apiStatus } from '../../kube/client.ts';
import type { KubeHttp } from '../../kube/http.ts';
import type { ServiceAccountRef } from '../../kube/service-accounts.ts';
import { describeCliError, systemErrorReason } from '../errors.ts';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  readonly hint?: string;
}

export interface DoctorOptions {
  /** MutatingWebhookConfiguration name; default: the one whose webhooks are *.smk.dev. */
  readonly webhookConfig?: string;
  /** The Secret holding the serving certificate (service mode); default `<service>-tls`, as the chart names it. */
  readonly webhookTlsSecret?: string;
  readonly serviceAccount?: ServiceAccountRef;
  /** Secret name or ARN the ServiceAccount's role should be able to describe. */
  readonly secret?: string;
  /** Region of `secret` when it is not an ARN. */
  readonly region?: string;
  readonly queueUrl?: string;
  readonly csiSocket?: string;
}

export interface DoctorDeps {
  /** The cluster to check, or why there is none to talk to (the cluster checks then fail and skip). */
  readonly kubeConfig: KubeConfig | { readonly problem: string };
  readonly clients: AwsClients;
  /** Deadline per check (default 10 s). */
  readonly timeoutMs?: number;
}

export const pass = (name: string, detail: string): CheckResult => ({ name, status: 'pass', detail });
export const fail = (name: string, detail: string, hint: string): CheckResult => ({
  name,
  status: 'fail',
  detail,
  hint,
});
export const warn = (name: string, detail: string, hint: string): CheckResult => ({
  name,
  status: 'warn',
  detail,
  hint,
});
export const skip = (name: string, detail: string): CheckResult => ({ name, status: 'skip', detail });

export async function withDeadline<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The checks that talk to the cluster, once there is one: its configuration and the one transport. */
export type ClusterDeps = DoctorDeps & { readonly kubeConfig: KubeConfig; readonly http: KubeHttp };

/** An API failure in a few words, never the server's body (it may echo request content). */
export function apiProblem(error: unknown): string {
  const status = apiStatus(error);
  if (status === 403 || status === 401) return `forbidden (HTTP ${status})`;
  if (status !== undefined) return `HTTP ${status}`;
  if (error instanceof Error && /no answer within/.test(error.message)) return error.message;
  // The server is named beside it; the reason says what happened on the way (refused, unknown host, TLS).
  return systemErrorReason(error) ?? describeCliError(error);
}

export function forbiddenHint(verb: string): string {
  return `your credentials may not ${verb}; run doctor as a cluster admin, or grant that read (docs/troubleshooting.md: the doctor in the cluster)`;
}
