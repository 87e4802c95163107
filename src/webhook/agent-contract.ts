/**
 * What the injected containers receive: their names, the command they run and the environment
 * that carries references (objects spec, region, directory) — never a secret value. The
 * webhook writes this contract; `smk agent` (src/cli/agent.ts) reads it.
 */
export const agentEnv = {
  /** The objects list (AWS CSI provider `objects` format) as JSON. */
  objects: 'SMK_OBJECTS',
  /** Default region for objects whose name is not an ARN. */
  region: 'SMK_REGION',
  /** pathTranslation, only when the pod set one. */
  pathTranslation: 'SMK_PATH_TRANSLATION',
  /** Directory the files go to: the shared volume's mount path. */
  dir: 'SMK_DIR',
  /** Seconds between version checks (refresh sidecar only). */
  refreshInterval: 'SMK_REFRESH_INTERVAL',
  /**
   * "allowed" when the injector runs with --allow-jmespath-expressions: the agent then accepts
   * what the injector accepted, so a pod's spec means what it means to the controller and CSI.
   */
  jmesPathExpressions: 'SMK_JMESPATH_EXPRESSIONS',
} as const;

/**
 * Role chaining (the pod's smk.dev/assume-role-* annotations): the agent assumes this role with the
 * pod's own IRSA / Pod Identity credentials. References only; an external id is no secret in AWS's model.
 */
export const agentRoleChainEnv = {
  roleArn: 'SMK_ASSUME_ROLE_ARN',
  externalId: 'SMK_ASSUME_ROLE_EXTERNAL_ID',
  durationSeconds: 'SMK_ASSUME_ROLE_DURATION_SECONDS',
  sessionTags: 'SMK_ASSUME_ROLE_SESSION_TAGS',
} as const;

export const initContainerName = 'smk-agent-init';
export const refreshContainerName = 'smk-agent-refresh';
export const volumeName = 'smk-secrets';

export const injectedContainerNames: readonly string[] = [initContainerName, refreshContainerName];

export type AgentMode = 'init' | 'refresh';
