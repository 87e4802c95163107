/**
 * The webhook→agent contract: what the injected containers receive — their names, the command
 * they run and the environment that carries references (objects spec, region, directory), never a
 * secret value. The webhook (src/webhook/mutate.ts) writes it into the pod spec; `smk agent`
 * reads it (the environment through src/config.ts, parseAgentEnvironment). It sits in core beside
 * the write-through contract because two roles share it and neither may import the other.
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
  /** The pod's `smk.dev/template-<file>` annotations as a JSON object, file → template; only when set. */
  templates: 'SMK_TEMPLATES',
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

/** The arguments after the image's smk command: `agent init` or `agent refresh`. */
export function agentArguments(mode: AgentMode): readonly string[] {
  return ['agent', mode];
}
