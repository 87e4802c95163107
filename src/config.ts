/**
 * All environment and flag input, parsed once with zod at the edge and passed down as plain
 * typed values. Nothing below src/cli reads process.env or argv.
 */
import { z } from 'zod';
import { InvalidInputError } from './core/errors.ts';

const nonEmpty = z.string().trim().min(1);

const environmentSchema = z.object({
  AWS_REGION: nonEmpty.optional(),
  AWS_DEFAULT_REGION: nonEmpty.optional(),
  AWS_ENDPOINT_URL: z.url().optional(),
  SMK_OBJECTS: nonEmpty.optional(),
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
    objects: e.SMK_OBJECTS,
    logLevel: e.SMK_LOG_LEVEL ?? 'info',
    podName: e.POD_NAME,
    podNamespace: e.POD_NAMESPACE,
  };
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
