/**
 * Pod annotations → an injection plan. Two dialects reach the same plan: the seed PoC's
 * `secrets.k8s.aws/*` (one secret ARN, one file) and smk's own `smk.dev/*` (a whole objects spec
 * in the AWS CSI provider format). Every rejection names the annotation and what was expected;
 * values of the annotations are references (ARNs, names), never secret material.
 */
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { parseNamedRoleChain, type RoleChain } from '../aws/role-chain.ts';
import { parseDuration } from '../core/duration.ts';
import { isSmkError } from '../core/errors.ts';
import { unsafeNameReason } from '../core/naming.ts';
import { awsRegionExpectation, isAwsRegion } from '../core/regions.ts';
import { parseMountSpec, parseObjectsText } from '../core/spec.ts';
import { parseTemplates } from '../core/template.ts';

export const annotations = {
  seedEnabled: 'secrets.k8s.aws/sidecarInjectorWebhook',
  seedSecretArn: 'secrets.k8s.aws/secret-arn',
  seedMountPath: 'secrets.k8s.aws/mount-path',
  seedFileName: 'secrets.k8s.aws/secret-filename',
  inject: 'smk.dev/inject',
  objects: 'smk.dev/objects',
  region: 'smk.dev/region',
  mountPath: 'smk.dev/mount-path',
  containers: 'smk.dev/containers',
  refreshInterval: 'smk.dev/refresh-interval',
  resources: 'smk.dev/resources',
  assumeRoleArn: 'smk.dev/assume-role-arn',
  assumeRoleExternalId: 'smk.dev/assume-role-external-id',
  assumeRoleDurationSeconds: 'smk.dev/assume-role-duration-seconds',
  assumeRoleSessionTags: 'smk.dev/assume-role-session-tags',
  status: 'smk.dev/status',
} as const;

/** `smk.dev/template-<file>`: a file rendered from the objects' files (core/template.ts), as Vault's agent-inject-template. */
export const templatePrefix = 'smk.dev/template-';

/** The role-chaining annotations, by the setting each carries (src/aws/role-chain.ts). */
export const roleChainAnnotations = {
  roleArn: annotations.assumeRoleArn,
  externalId: annotations.assumeRoleExternalId,
  durationSeconds: annotations.assumeRoleDurationSeconds,
  sessionTags: annotations.assumeRoleSessionTags,
} as const;

export const injectedStatus = 'injected';
export const seedDefaultMountPath = '/tmp';
export const seedDefaultFileName = 'secret';
export const defaultMountPath = '/var/run/secrets/smk';

const smkPrefix = 'smk.dev/';
const seedPrefix = 'secrets.k8s.aws/';
const knownSmkAnnotations = new Set<string>(
  Object.values(annotations).filter((name) => name.startsWith(smkPrefix)),
);

const minRefreshSeconds = 10;
const maxRefreshSeconds = 24 * 60 * 60;

export type ResourceList = Readonly<Record<string, string>>;
export interface Resources {
  readonly requests?: ResourceList;
  readonly limits?: ResourceList;
}

export interface InjectionPlan {
  /** The objects list as JSON, for the agent's SMK_OBJECTS. */
  readonly objectsJson: string;
  /** The `smk.dev/template-<file>` annotations as JSON (file → text), for SMK_TEMPLATES. */
  readonly templatesJson?: string;
  readonly region?: string;
  /** Absolute, normalised (no trailing slash). */
  readonly mountPath: string;
  /** Containers (or user init containers) to mount the volume into; undefined means all of them. */
  readonly containers?: readonly string[];
  readonly refreshIntervalSeconds?: number;
  /** Overrides of the configured defaults, per list. */
  readonly resources?: Resources;
  /** A second role the agent assumes with the pod's own credentials (smk.dev/assume-role-*). */
  readonly roleChain?: RoleChain;
  /** The pod carries the injected-status marker (reinvocation, or an already injected manifest). */
  readonly alreadyInjected: boolean;
}

export type PlanResult =
  | { readonly kind: 'none' }
  | { readonly kind: 'plan'; readonly plan: InjectionPlan }
  | { readonly kind: 'invalid'; readonly message: string };

/** Cheap test for the fast path: does any annotation ask for injection at all? */
export function mentionsInjection(raw: Readonly<Record<string, unknown>> | undefined): boolean {
  if (raw === undefined) return false;
  return raw[annotations.seedEnabled] !== undefined || raw[annotations.inject] !== undefined;
}

class AnnotationProblem extends Error {}

function problem(annotation: string, message: string): never {
  throw new AnnotationProblem(`annotation ${annotation}: ${message}`);
}

function optional(values: Readonly<Record<string, string>>, name: string): string | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') problem(name, 'is empty; remove it or give a value');
  return trimmed;
}

function parseSwitch(
  values: Readonly<Record<string, string>>,
  name: string,
  on: string,
  off: string,
): boolean {
  const value = values[name];
  if (value === undefined) return false;
  const normalised = value.trim().toLowerCase();
  if (normalised === on) return true;
  if (normalised === off) return false;
  return problem(name, `expected "${on}" or "${off}"`);
}

/** An absolute directory, normalised; `..`, `.`, NUL and `:` are refused (kubelet refuses them too). */
export function parseMountPath(name: string, value: string): string {
  if (!value.startsWith('/')) problem(name, 'expected an absolute directory path like /var/run/secrets/smk');
  const trimmed = value.replace(/\/+$/, '');
  if (trimmed === '') problem(name, 'must not be the root directory /');
  const segments = trimmed.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..') {
      problem(name, 'must be a normalised absolute path without empty, "." or ".." segments');
    }
  }
  if (/[\0:\n]/.test(trimmed)) problem(name, 'must not contain NUL, ":" or a newline');
  if (trimmed.length > 1024) problem(name, 'is longer than 1024 characters');
  return trimmed;
}

function parseRefreshInterval(name: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) problem(name, 'expected a duration like 60s, 5m or 1h30m');
  // The agent counts whole seconds: a fraction rounds up, never to a shorter interval.
  const seconds = Math.ceil(ms / 1000);
  if (seconds < minRefreshSeconds || seconds > maxRefreshSeconds) {
    problem(name, `must be between ${minRefreshSeconds}s and 24h`);
  }
  return seconds;
}

const quantityPattern = /^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const quantity = z.union([
  z.string().regex(quantityPattern, 'expected a Kubernetes quantity like 50m, 64Mi or 1'),
  z
    .number()
    .nonnegative()
    .transform((n) => String(n)),
]);
const resourceListSchema = z.strictObject({
  cpu: quantity.optional(),
  memory: quantity.optional(),
  'ephemeral-storage': quantity.optional(),
});
const resourcesSchema = z.strictObject({
  requests: resourceListSchema.optional(),
  limits: resourceListSchema.optional(),
});

function parseResources(name: string, value: string): Resources {
  let parsed: unknown;
  try {
    // logLevel 'error': the yaml package would otherwise print warnings quoting the annotation.
    parsed = parseYaml(value, { maxAliasCount: 10, logLevel: 'error' });
  } catch {
    problem(name, 'is not valid YAML or JSON; expected {requests: {cpu, memory}, limits: {cpu, memory}}');
  }
  const result = resourcesSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    const what =
      issue?.code === 'unrecognized_keys'
        ? `unknown field ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}; expected requests/limits with cpu, memory, ephemeral-storage`
        : (issue?.message ?? 'invalid');
    problem(name, where === '' ? what : `${where}: ${what}`);
  }
  const resources: { requests?: ResourceList; limits?: ResourceList } = {};
  if (result.data.requests) resources.requests = definedEntries(result.data.requests);
  if (result.data.limits) resources.limits = definedEntries(result.data.limits);
  return resources;
}

function definedEntries(list: Record<string, string | undefined>): ResourceList {
  return Object.fromEntries(
    Object.entries(list).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

function parseContainerList(name: string, value: string): string[] {
  const names = value.split(',').map((part) => part.trim());
  if (names.some((part) => part === '')) problem(name, 'expected a comma-separated list of container names');
  return [...new Set(names)];
}

const seedArnPattern =
  /^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;

function objectsFromSeed(values: Readonly<Record<string, string>>): unknown[] {
  const arn = optional(values, annotations.seedSecretArn);
  if (arn === undefined) {
    problem(
      annotations.seedSecretArn,
      `is required when ${annotations.seedEnabled} is "enabled"; expected a Secrets Manager secret ARN`,
    );
  }
  if (!seedArnPattern.test(arn)) {
    problem(
      annotations.seedSecretArn,
      'expected a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)',
    );
  }
  const fileName = optional(values, annotations.seedFileName) ?? seedDefaultFileName;
  const reason = unsafeNameReason(fileName);
  if (reason !== undefined || fileName.includes('/')) {
    problem(annotations.seedFileName, `${reason ?? 'contains "/"'}; expected a plain file name`);
  }
  return [{ objectName: arn, objectAlias: fileName }];
}

/**
 * Plans by the annotations they came from. Pods of one workload carry identical annotations, so
 * the spec is parsed once per workload, not once per pod (YAML and spec validation dominate the
 * cost of a review). Results are immutable; the map is bounded (oldest out first).
 */
const planCache = new Map<string, PlanResult>();
const planCacheSize = 512;

/** smk.dev/* and secrets.k8s.aws/*: the annotations a plan is made from. */
export function isInjectionAnnotation(name: string): boolean {
  return name.startsWith(smkPrefix) || name.startsWith(seedPrefix);
}

/** The injection annotations as one string: equal keys give equal plans. */
function injectionKey(values: Readonly<Record<string, string>>): string {
  let key = '';
  for (const name of Object.keys(values)) {
    if (isInjectionAnnotation(name)) key += `${name}\0${values[name]}\0`;
  }
  return key;
}

/**
 * Reads the annotations of a pod (or template). Pure; no AWS or Kubernetes call.
 * `allowExpressions`: the injector's --allow-jmespath-expressions (the agent gets the same).
 */
export function planFromAnnotations(
  values: Readonly<Record<string, string>> | undefined,
  allowExpressions = false,
): PlanResult {
  if (values === undefined || !mentionsInjection(values)) return { kind: 'none' };
  const key = `${allowExpressions ? 'x' : 'p'}\0${injectionKey(values)}`;
  const cached = planCache.get(key);
  if (cached !== undefined) return cached;
  const result = computePlan(values, allowExpressions);
  planCache.set(key, result);
  if (planCache.size > planCacheSize) {
    const oldest = planCache.keys().next().value;
    if (oldest !== undefined) planCache.delete(oldest);
  }
  return result;
}

function computePlan(values: Readonly<Record<string, string>>, allowExpressions: boolean): PlanResult {
  try {
    const seed = parseSwitch(values, annotations.seedEnabled, 'enabled', 'disabled');
    const own = parseSwitch(values, annotations.inject, 'true', 'false');
    if (!seed && !own) return { kind: 'none' };
    return { kind: 'plan', plan: buildPlan(values, seed, allowExpressions) };
  } catch (error) {
    if (error instanceof AnnotationProblem) return { kind: 'invalid', message: error.message };
    throw error;
  }
}

function buildPlan(
  values: Readonly<Record<string, string>>,
  seed: boolean,
  allowExpressions: boolean,
): InjectionPlan {
  for (const name of Object.keys(values)) {
    if (name.startsWith(smkPrefix) && !knownSmkAnnotations.has(name) && !name.startsWith(templatePrefix)) {
      problem(
        name,
        `unknown smk annotation; expected one of ${[...knownSmkAnnotations].join(', ')}, ${templatePrefix}<file>`,
      );
    }
  }
  const templates: Record<string, string> = {};
  for (const [name, text] of Object.entries(values)) {
    if (name.startsWith(templatePrefix)) templates[name.slice(templatePrefix.length)] = text;
  }
  const ownObjects = optional(values, annotations.objects);
  const seedArn = values[annotations.seedSecretArn];
  if (ownObjects !== undefined && seedArn !== undefined && seed) {
    problem(
      annotations.objects,
      `cannot be combined with ${annotations.seedSecretArn}; expected one source of objects`,
    );
  }

  const region = optional(values, annotations.region);
  if (region !== undefined && !isAwsRegion(region)) {
    problem(annotations.region, `expected ${awsRegionExpectation}`);
  }

  let objects: unknown[];
  let objectsAnnotation: string;
  if (ownObjects !== undefined) {
    objectsAnnotation = annotations.objects;
    objects = relabel(() => parseObjectsText(ownObjects, `annotation ${annotations.objects}`));
  } else if (seed) {
    objectsAnnotation = annotations.seedSecretArn;
    objects = objectsFromSeed(values);
  } else {
    return problem(annotations.objects, `is required when ${annotations.inject} is "true"`);
  }
  const spec = relabel(() =>
    parseMountSpec(
      { objects, ...(region === undefined ? {} : { region }) },
      `annotation ${objectsAnnotation}`,
      { allowExpressions },
    ),
  );
  const { ignoredFields } = spec;
  // Checked here (syntax, and the names read against the names the objects produce) so a bad
  // template is refused at admission, where it is seen, before anything is read.
  for (const [file, text] of Object.entries(templates)) {
    relabel(() =>
      parseTemplates({ [file]: text }, () => 'template', `annotation ${templatePrefix}${file}`, spec),
    );
  }
  // smk's own annotation, checked at admission: a typo is refused here, where the user sees it
  // at once (a SecretProviderClass is ASCP's format, and ASCP ignores unknown fields).
  if (ignoredFields.length > 0) {
    problem(
      objectsAnnotation,
      `unknown field ${ignoredFields.join(', ')}; expected only ASCP's object fields`,
    );
  }

  const seedPath = optional(values, annotations.seedMountPath);
  const ownPath = optional(values, annotations.mountPath);
  const seedMountPath =
    seedPath === undefined ? undefined : parseMountPath(annotations.seedMountPath, seedPath);
  const ownMountPath = ownPath === undefined ? undefined : parseMountPath(annotations.mountPath, ownPath);
  if (seedMountPath !== undefined && ownMountPath !== undefined && seedMountPath !== ownMountPath) {
    problem(annotations.mountPath, `differs from ${annotations.seedMountPath}; expected one mount path`);
  }
  const mountPath =
    ownMountPath ??
    seedMountPath ??
    (objectsAnnotation === annotations.seedSecretArn ? seedDefaultMountPath : defaultMountPath);

  const containersValue = optional(values, annotations.containers);
  const refreshValue = optional(values, annotations.refreshInterval);
  const resourcesValue = optional(values, annotations.resources);
  const roleChain = relabel(() => parseNamedRoleChain(values, roleChainAnnotations, 'annotations'));
  const status = values[annotations.status];
  if (status !== undefined && status !== injectedStatus) {
    problem(annotations.status, `is set by the injector; expected "${injectedStatus}" or no annotation`);
  }
  return {
    objectsJson: JSON.stringify(objects),
    ...(Object.keys(templates).length === 0 ? {} : { templatesJson: JSON.stringify(templates) }),
    ...(region === undefined ? {} : { region }),
    mountPath,
    ...(containersValue === undefined
      ? {}
      : { containers: parseContainerList(annotations.containers, containersValue) }),
    ...(refreshValue === undefined
      ? {}
      : { refreshIntervalSeconds: parseRefreshInterval(annotations.refreshInterval, refreshValue) }),
    ...(resourcesValue === undefined
      ? {}
      : { resources: parseResources(annotations.resources, resourcesValue) }),
    ...(roleChain === undefined ? {} : { roleChain }),
    alreadyInjected: status === injectedStatus,
  };
}

/** Runs a core parser (whose subject already names the annotation) and turns its rejection into a denial. */
function relabel<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (isSmkError(error)) throw new AnnotationProblem(error.message);
    throw error;
  }
}
