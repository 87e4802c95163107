/**
 * `smk agent init|refresh`: what the injected containers run. Everything comes from the
 * environment the injector set — references only (objects spec, directory, region), never a
 * value — and AWS credentials come from the pod's own identity (the IRSA / EKS Pod Identity env
 * the injector copied from the app container). init exits non-zero on any problem (fail closed);
 * refresh runs until SIGTERM.
 */
import { runInit } from '../agent/init.ts';
import { runRefreshLoop } from '../agent/refresh.ts';
import { AwsClients, chainedIdentity, createSecretReader, SecretCache } from '../aws/index.ts';
import { parseNamedRoleChain } from '../aws/role-chain.ts';
import { agentProcessEnvironment, agentRoleChainEnvironment, processEnvironment } from '../config.ts';
import { agentEnv, agentRoleChainEnv } from '../core/agent-contract.ts';
import { InvalidInputError } from '../core/errors.ts';
import { createExpressionEvaluator } from '../core/expressions.ts';
import { createLogger } from '../core/log.ts';
import { parseMountSpec } from '../core/spec.ts';
import { parseTemplatesJson } from '../core/template.ts';
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
  ${agentRoleChainEnv.roleArn}  a role to assume (sts:AssumeRole) with the pod's own credentials;
            with ${agentRoleChainEnv.externalId}, ${agentRoleChainEnv.durationSeconds},
            ${agentRoleChainEnv.sessionTags} (key=value,…)

  init      fetch every object and write the files atomically; exit 1 if anything failed
  refresh   keep the files current: a version check per interval (with jitter), a fetch and an
            atomic swap only when a version moved; the last good files stay on errors
`;

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
  const environment = processEnvironment();
  const own = agentProcessEnvironment();
  if (environment.objects === undefined) {
    throw new InvalidInputError(`smk agent: environment variable ${agentEnv.objects} is required`, {
      subject: 'smk agent',
      field: agentEnv.objects,
    });
  }
  const spec = parseMountSpec({ objects: environment.objects, region: own.region }, agentEnv.objects, {
    allowExpressions: own.allowExpressions,
  });
  const templates =
    own.templatesText === undefined
      ? undefined
      : parseTemplatesJson(own.templatesText, agentEnv.templates, spec);
  const expressions = own.allowExpressions ? createExpressionEvaluator() : undefined;
  const log = createLogger({ name: `smk-agent-${mode}`, level: environment.logLevel });
  // The chain starts from the pod's own credentials (the SDK's default chain: its IRSA / Pod Identity env).
  const roleChain = parseNamedRoleChain(agentRoleChainEnvironment(), agentRoleChainEnv, 'smk agent');
  const reader = createSecretReader(
    chainedIdentity({ kind: 'default' }, roleChain, 'smk.agent', agentRoleChainEnv.roleArn),
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
