/**
 * The pod's AWS identity as the app containers carry it: the env and token mounts that the EKS
 * pod identity webhook (IRSA) or EKS Pod Identity add. The injected agent containers get a copy,
 * so they act as the pod whichever admission webhook ran first (reinvocation copies again).
 */
import type { Container, EnvVar, VolumeMount } from './pod.ts';

/** Env that tells the SDK's default chain who the pod is, and where AWS is. */
const identityEnvNames = new Set([
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_SESSION_NAME',
  'AWS_STS_REGIONAL_ENDPOINTS',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  'AWS_ENDPOINT_URL_SSM',
  'AWS_ENDPOINT_URL_STS',
  'AWS_USE_FIPS_ENDPOINT',
]);
const credentialEnvNames = ['AWS_ROLE_ARN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI'];
const tokenFileEnvNames = ['AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'];
/** Where the EKS webhooks mount the projected tokens (used when the token file env is not a plain value). */
const knownTokenDirectories = [
  '/var/run/secrets/eks.amazonaws.com/serviceaccount',
  '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount',
];

export interface PodIdentity {
  readonly env: readonly EnvVar[];
  readonly mounts: readonly VolumeMount[];
}

export function isIdentityEnv(name: string): boolean {
  return identityEnvNames.has(name);
}

function hasEnv(container: Container, names: readonly string[]): boolean {
  return (container.env ?? []).some((variable) => names.includes(variable.name));
}

/**
 * The identity of the first container that has credentials configured (else the first with any
 * AWS env); empty when no container has one (then the agent uses the node's default chain).
 * `endpointUrl` (the injector's --agent-aws-endpoint-url) is added as AWS_ENDPOINT_URL unless that
 * container names its own: the pod's choice wins, it only affects the pod's own agents.
 */
export function podIdentity(containers: readonly Container[], endpointUrl?: string): PodIdentity {
  const source =
    containers.find((container) => hasEnv(container, credentialEnvNames)) ??
    containers.find((container) => (container.env ?? []).some((variable) => isIdentityEnv(variable.name)));
  const endpoint = (env: readonly EnvVar[]): EnvVar[] =>
    endpointUrl === undefined || env.some((variable) => variable.name === 'AWS_ENDPOINT_URL')
      ? []
      : [{ name: 'AWS_ENDPOINT_URL', value: endpointUrl }];
  if (source === undefined) return { env: endpoint([]), mounts: [] };
  const env = (source.env ?? []).filter((variable) => isIdentityEnv(variable.name));
  const tokenFiles = env
    .filter((variable) => tokenFileEnvNames.includes(variable.name))
    .map((variable) => variable.value)
    .filter((value): value is string => typeof value === 'string');
  const mounts = (source.volumeMounts ?? [])
    .filter(
      (mount) =>
        knownTokenDirectories.includes(mount.mountPath) ||
        (mount.mountPath !== '/' &&
          tokenFiles.some((file) => file.startsWith(`${mount.mountPath.replace(/\/+$/, '')}/`))),
    )
    .map((mount) => ({ ...mount, readOnly: true }));
  return {
    env: [...env.map((variable) => JSON.parse(JSON.stringify(variable)) as EnvVar), ...endpoint(env)],
    mounts,
  };
}
