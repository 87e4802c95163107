/**
 * `smk agent init|refresh`: what the injected containers run. Everything comes from the
 * environment the injector set — references only (objects spec, directory, region), never a
 * value — and AWS credentials come from the pod's own identity (the IRSA / EKS Pod Identity env
 * the injector copied from the app container). init exits non-zero on any problem (fail closed);
 * refresh runs until SIGTERM.
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { runInit } from '../agent/init.ts';
import { runRefreshLoop } from '../agent/refresh.ts';
import { AwsClients, createSecretReader, SecretCache } from '../aws/index.ts';
import { parseEnvironment } from '../config.ts';
import { InvalidInputError } from '../core/errors.ts';
import { createExpressionEvaluator } from '../core/expressions.ts';
import { createLogger } from '../core/log.ts';
import { parseMountSpec } from '../core/spec.ts';
import { parseTemplatesJson } from '../core/template.ts';
import { agentEnv } from '../webhook/agent-contract.ts';
import { parseCommandArgs, usageError } from './args.ts';

const help = `Usage: smk agent init|refresh

Runs inside a pod the injector mutated; configured by the environment it set:
  ${agentEnv.objects}       the objects spec (AWS CSI provider "objects" format, JSON or YAML)
  ${agentEnv.dir}           directory to write the files into (the shared memory volume)
  ${agentEnv.region}        region for objects without an ARN (default AWS_REGION)
  ${agentEnv.refreshInterval}  seconds between version checks (refresh only)
  ${agentEnv.jmesPathExpressions}  "allowed": accept full JMESPath expressions (set by the injector
            when its administrator enabled them; default: plain field paths)
  ${agentEnv.templates}     files rendered from the objects' files, as JSON {"file": "template"}
            (the pod's smk.dev/template-<file> annotations; docs/templates.md)

  init      fetch every object and write the files atomically; exit 1 if anything failed
  refresh   keep the files current: a version check per interval (with jitter), a fetch and an
            atomic swap only when a version moved; the last good files stay on errors
`;

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
});

function agentEnvironment(env: NodeJS.ProcessEnv) {
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
  };
}

export async function run(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'agent',
    args,
    { help: { type: 'boolean', short: 'h', default: false } },
    1,
  );
  const mode = positionals[0];
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (mode !== 'init' && mode !== 'refresh') {
    throw usageError(
      'agent',
      mode === undefined
        ? 'expected "init" or "refresh"'
        : `unknown mode "${mode}": expected "init" or "refresh"`,
    );
  }
  const environment = parseEnvironment(process.env);
  const own = agentEnvironment(process.env);
  if (environment.objects === undefined) {
    throw new InvalidInputError(`smk agent: environment variable ${agentEnv.objects} is required`, {
      subject: 'smk agent',
      field: agentEnv.objects,
    });
  }
  const spec = parseMountSpec({ objects: environment.objects, region: own.region }, agentEnv.objects, {
    allowExpressions: own.allowExpressions,
  });
  const templatesText = process.env[agentEnv.templates];
  const templates =
    templatesText === undefined ? undefined : parseTemplatesJson(templatesText, agentEnv.templates, spec);
  const expressions = own.allowExpressions ? createExpressionEvaluator() : undefined;
  const log = createLogger({ name: `smk-agent-${mode}`, level: environment.logLevel });
  const reader = createSecretReader(
    { kind: 'default' },
    {
      cache: new SecretCache(),
      clients: new AwsClients({
        endpoint: environment.awsEndpoint,
        ...(environment.region ? { stsRegion: environment.region } : {}),
      }),
    },
  );
  const defaultRegion = own.region ?? environment.region;

  if (mode === 'init') {
    try {
      await runInit({ spec, dir: own.dir, reader, defaultRegion, expressions, templates, log });
    } finally {
      await expressions?.close();
    }
    return 0;
  }

  if (own.refreshIntervalSeconds === undefined) {
    throw new InvalidInputError(
      `smk agent refresh: environment variable ${agentEnv.refreshInterval} is required`,
      {
        subject: 'smk agent',
        field: agentEnv.refreshInterval,
      },
    );
  }
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  log.info({ dir: own.dir, intervalSeconds: own.refreshIntervalSeconds }, 'refreshing secrets');
  await runRefreshLoop({
    spec,
    dir: own.dir,
    reader,
    defaultRegion,
    expressions,
    templates,
    log,
    intervalMs: own.refreshIntervalSeconds * 1000,
    signal: controller.signal,
  });
  await expressions?.close();
  log.info('refresh stopped');
  return 0;
}
