/**
 * All environment and flag input, parsed once with zod at the edge and passed down as plain
 * typed values. This is the one file that reads process.env; nothing else reads it or argv below
 * src/cli.
 */
import { isAbsolute } from 'node:path';
import * as z from 'zod';
import { agentEnv, agentRoleChainEnv } from './core/agent-contract.ts';
import { InvalidInputError } from './core/errors.ts';
import type { InClusterEnvironment } from './kube/in-cluster.ts';

const nonEmpty = z.string().trim().min(1);

const environmentSchema = z.object({
  AWS_REGION: nonEmpty.optional(),
  AWS_DEFAULT_REGION: nonEmpty.optional(),
  AWS_ENDPOINT_URL: z.url().optional(),
  [agentEnv.objects]: nonEmpty.optional(),
  SMK_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  // Set by the chart from the downward API; the lease holder's name and the namespace smk runs in.
  POD_NAME: z.string().optional(),
  POD_NAMESPACE: z.string().optional(),
});

export interface Environment {
  /** AWS_REGION, else AWS_DEFAULT_REGION. */
  readonly region: string | undefined;
  readonly awsEndpoint: string | undefined;
  /** An objects spec given through the environment (the injected agent receives it this way). */
  readonly objects: string | undefined;
  readonly logLevel: string;
  /** POD_NAME: this replica's name (else the caller uses the host name). */
  readonly podName: string | undefined;
  /** POD_NAMESPACE: the namespace smk itself runs in. */
  readonly podNamespace: string | undefined;
}

export function parseEnvironment(env: NodeJS.ProcessEnv): Environment {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = issue?.path.join('.') ?? 'environment';
    throw new InvalidInputError(`environment variable ${name}: ${issue?.message ?? 'invalid'}`, {
      subject: 'environment',
      field: name,
    });
  }
  const e = parsed.data;
  return {
    region: e.AWS_REGION ?? e.AWS_DEFAULT_REGION,
    awsEndpoint: e.AWS_ENDPOINT_URL,
    objects: e[agentEnv.objects],
    logLevel: e.SMK_LOG_LEVEL ?? 'info',
    podName: e.POD_NAME,
    podNamespace: e.POD_NAMESPACE,
  };
}

/** The process's environment (AWS, log level, pod facts), parsed. */
export function processEnvironment(): Environment {
  return parseEnvironment(process.env);
}

const agentEnvironmentSchema = z.object({
  [agentEnv.dir]: z
    .string({ error: 'is required' })
    .refine((dir) => isAbsolute(dir), 'must be an absolute directory path'),
  [agentEnv.region]: z.string().trim().min(1).optional(),
  [agentEnv.refreshInterval]: z.coerce
    .number({ error: 'must be a number of seconds' })
    .int('must be a whole number of seconds')
    .min(1, 'must be at least 1 second')
    .max(86_400, 'must be at most 86400 seconds')
    .optional(),
  [agentEnv.jmesPathExpressions]: z.literal('allowed', { error: 'must be "allowed" or unset' }).optional(),
  /** JSON {"file": "template"}; parsed by core/template.ts, which names the template in its errors. */
  [agentEnv.templates]: z.string().optional(),
});

/** What the webhook told the injected agent through its environment (core/agent-contract.ts). */
export interface AgentEnvironment {
  readonly dir: string;
  readonly region: string | undefined;
  readonly refreshIntervalSeconds: number | undefined;
  readonly allowExpressions: boolean;
  /** The SMK_TEMPLATES text as the webhook wrote it (unparsed). */
  readonly templatesText: string | undefined;
}

export function parseAgentEnvironment(env: NodeJS.ProcessEnv): AgentEnvironment {
  const parsed = agentEnvironmentSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? 'environment');
    throw new InvalidInputError(`smk agent: environment variable ${name} ${issue?.message ?? 'is invalid'}`, {
      subject: 'smk agent',
      field: name,
    });
  }
  return {
    dir: parsed.data[agentEnv.dir],
    region: parsed.data[agentEnv.region],
    refreshIntervalSeconds: parsed.data[agentEnv.refreshInterval],
    allowExpressions: parsed.data[agentEnv.jmesPathExpressions] === 'allowed',
    templatesText: parsed.data[agentEnv.templates],
  };
}

/**
 * The role-chaining variables the injector hands the agent (core/agent-contract.ts), unparsed:
 * aws/role-chain.ts parses them and names the variable in its errors.
 */
export function agentRoleChainEnvironment(): Readonly<Record<string, string | undefined>> {
  return Object.fromEntries(Object.values(agentRoleChainEnv).map((name) => [name, process.env[name]]));
}

/** The injected agent's own environment, parsed. */
export function agentProcessEnvironment(): AgentEnvironment {
  return parseAgentEnvironment(process.env);
}

/** Where a kubeconfig may come from, as kubectl looks (src/cli/kube-config.ts decides). */
export interface KubeConfigEnvironment {
  /** KUBECONFIG: a list of files, split on the platform's path delimiter. */
  readonly kubeConfig: string | undefined;
  readonly home: string | undefined;
  /** KUBERNETES_SERVICE_HOST: set in every pod; in-cluster configuration needs it. */
  readonly serviceHost: string | undefined;
}

/** Read apart from processEnvironment: a bad AWS variable must not hide where the kubeconfig is. */
export function kubeConfigEnvironment(): KubeConfigEnvironment {
  return {
    kubeConfig: process.env.KUBECONFIG,
    home: process.env.HOME,
    serviceHost: process.env.KUBERNETES_SERVICE_HOST,
  };
}

const inClusterSchema = z.object({
  KUBERNETES_SERVICE_HOST: nonEmpty,
  KUBERNETES_SERVICE_PORT: z.coerce.number().int().min(1).max(65_535),
});

/** Where the kubernetes Service is, as the kubelet tells every pod (client-go reads the same two). */
/** KUBERNETES_SERVICE_HOST and _PORT; a bad or missing one is named. */
export function parseInClusterEnvironment(env: NodeJS.ProcessEnv): InClusterEnvironment {
  const parsed = inClusterSchema.safeParse(env);
  if (!parsed.success) {
    const name = String(parsed.error.issues[0]?.path[0] ?? 'KUBERNETES_SERVICE_HOST');
    throw new InvalidInputError(
      `environment variable ${name}: expected the kubernetes Service's ${name.endsWith('PORT') ? 'port (1-65535)' : 'host'}`,
      {
        subject: 'in-cluster configuration',
        field: name,
      },
    );
  }
  return { host: parsed.data.KUBERNETES_SERVICE_HOST, port: parsed.data.KUBERNETES_SERVICE_PORT };
}

export function inClusterEnvironment(): InClusterEnvironment {
  return parseInClusterEnvironment(process.env);
}

/** SMK_DEBUG=1: print the stack of an unexpected error. Read on its own, as the last resort of main. */
export function debugRequested(): boolean {
  return process.env.SMK_DEBUG === '1';
}

/**
 * `--allow-jmespath-expressions`: the cluster administrator's opt-in to full JMESPath expressions
 * in `jmesPath[].path` (default: plain field paths; core/field-path.ts). Defined once for every
 * role that reads specs — controller, csi-provider, webhook and inject (which pass it on to the
 * injected agent), fetch — so that one spec means the same wherever it is used.
 */
export const jmesPathExpressionsOption = {
  'allow-jmespath-expressions': { type: 'boolean', default: false },
} as const;

/** Its help text, indented to line up under a command's other options at `column`. */
export function jmesPathExpressionsHelp(column: number): string {
  const pad = ' '.repeat(column);
  return [
    '  --allow-jmespath-expressions',
    `${pad}accept full JMESPath expressions in jmesPath[].path (default: plain field paths`,
    `${pad}like db.password, "db-user", hosts[0]); each object's expressions run off the event`,
    `${pad}loop within 100 ms of CPU. Enable it on every role alike (the chart's jmesPathExpressions)`,
  ].join('\n');
}
