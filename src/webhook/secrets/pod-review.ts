/**
 * Pod admission, second step: after the injector's answer, the pod (with that answer's patch
 * applied) goes through ./pods.ts, and the answer carries one patch for both. Pods that name
 * no write-through Secret leave after a scan and a few cache lookups, without being parsed.
 */
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import type { AdmissionResult, AdmissionReviewResponse } from '../admission.ts';
import type { InjectorConfig } from '../mutate.ts';
import { podSchema } from '../pod.ts';
import { swapWriteThroughVolumes, type WriteThroughLookup, writeThroughContainerPrefix } from './pods.ts';

const { applyPatch, compare, deepClone } = fastJsonPatch;

interface PodRequest {
  readonly uid: string;
  readonly kind?: { readonly group?: string; readonly kind?: string };
  readonly operation?: string;
  readonly namespace?: string;
  readonly object?: unknown;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/**
 * Cheap scan without parsing: the Secrets the pod names (secret volumes, projected secret sources,
 * env, envFrom), and whether it carries write-through agents already (a reinvocation).
 */
export function secretsNamed(object: unknown): { readonly names: Set<string>; readonly agents: boolean } {
  const names = new Set<string>();
  let agents = false;
  const spec = record(record(object)?.spec);
  if (spec === undefined) return { names, agents };
  const add = (name: unknown): void => {
    if (typeof name === 'string') names.add(name);
  };
  for (const volume of list(spec.volumes)) {
    const source = record(volume);
    add(record(source?.secret)?.secretName);
    // Every pod has a projected token volume: only a projected Secret source counts.
    for (const entry of list(record(source?.projected)?.sources)) add(record(record(entry)?.secret)?.name);
  }
  for (const container of [...list(spec.containers), ...list(spec.initContainers)]) {
    const fields = record(container);
    if (String(fields?.name ?? '').startsWith(writeThroughContainerPrefix)) agents = true;
    for (const source of list(fields?.envFrom)) add(record(record(source)?.secretRef)?.name);
    for (const variable of list(fields?.env))
      add(record(record(record(variable)?.valueFrom)?.secretKeyRef)?.name);
  }
  return { names, agents };
}

function respond(
  uid: string,
  allowed: boolean,
  extra: Partial<AdmissionReviewResponse['response']>,
): AdmissionReviewResponse {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed, ...extra } };
}

/** True when answering `body` needs the write-through cache: a Pod CREATE naming a Secret or carrying agents. */
export function needsWriteThroughLookup(body: unknown): boolean {
  const request = record(body)?.request as PodRequest | undefined;
  if (request === undefined) return false;
  const isPod = request.kind === undefined || (request.kind.group === '' && request.kind.kind === 'Pod');
  if (!isPod || (request.operation !== undefined && request.operation !== 'CREATE')) return false;
  const named = secretsNamed(request.object);
  return named.agents || named.names.size > 0;
}

/**
 * The injector's `result` for `body`, extended with the write-through volume swap (or turned
 * into a denial when the pod uses a write-through Secret through env).
 */
export function withWriteThroughVolumes(
  body: unknown,
  result: AdmissionResult,
  lookup: WriteThroughLookup,
  config: InjectorConfig,
): AdmissionResult {
  if (result.status !== 200 || result.outcome === 'denied') return result;
  const request = record(body)?.request as PodRequest | undefined;
  if (request === undefined) return result;
  const isPod = request.kind === undefined || (request.kind.group === '' && request.kind.kind === 'Pod');
  if (!isPod || (request.operation !== undefined && request.operation !== 'CREATE')) return result;
  const original = request.object;
  const named = secretsNamed(original);
  const metadata = record(record(original)?.metadata);
  const namespace = request.namespace ?? (typeof metadata?.namespace === 'string' ? metadata.namespace : '');
  // Most pods name no write-through Secret: answered from the cache lookups alone, nothing parsed.
  if (!named.agents && ![...named.names].some((name) => lookup(namespace, name) !== undefined)) return result;

  let pod: unknown = original;
  const earlier = result.body.response.patch;
  if (earlier !== undefined) {
    const operations = JSON.parse(Buffer.from(earlier, 'base64').toString('utf8')) as Operation[];
    pod = applyPatch(deepClone(original), operations, false, false).newDocument;
  }
  const parsed = podSchema.safeParse(pod);
  if (!parsed.success) return result;
  const swapped = swapWriteThroughVolumes(parsed.data, namespace, lookup, config);
  if ('denied' in swapped) {
    return {
      status: 200,
      outcome: 'denied',
      message: swapped.denied,
      body: respond(request.uid, false, {
        status: { code: 400, reason: 'BadRequest', message: swapped.denied },
      }),
    };
  }
  const patch = compare(original as object, JSON.parse(JSON.stringify(swapped.pod)) as object);
  if (patch.length === 0) return result;
  return {
    status: 200,
    outcome: 'mutated',
    body: respond(request.uid, true, {
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
    }),
  };
}
