/**
 * `smk fetch --objects FILE|- --dir DIR [--region R]`: fetch every object of a spec with as few
 * calls as possible and write the files atomically. Nothing is written unless every object was
 * fetched and extracted; the exit code says whether it worked.
 */
import { AwsClients, chainedIdentity, createSecretReader, SecretCache } from '../aws/index.ts';
import { parseNamedRoleChain } from '../aws/role-chain.ts';
import { jmesPathExpressionsHelp, jmesPathExpressionsOption, processEnvironment } from '../config.ts';
import { writePayloadsAtomically } from '../core/atomic-write.ts';
import { createExpressionEvaluator } from '../core/expressions.ts';
import { resolvePayloads } from '../core/payloads.ts';
import { parseMountSpec } from '../core/spec.ts';
import { parseTemplates } from '../core/template.ts';
import { parseCommandArgs, usageError } from './args.ts';
import { readTextArgument } from './input.ts';

const help = `Usage: smk fetch --objects FILE|- --dir DIR [options]

Fetch the secrets named by an objects spec (the AWS Secrets Store CSI provider's "objects" format,
YAML or JSON) from AWS Secrets Manager / SSM Parameter Store and write them as files in DIR,
atomically (a reader never sees a mix of old and new files).

Options:
  --objects FILE|-          the spec; "-" reads stdin; default: environment variable SMK_OBJECTS
  --dir DIR                 target directory (created if missing)
  --region R                region for objects without an ARN (default AWS_REGION / AWS_DEFAULT_REGION)
  --failover-region R       second region, read too (ASCP's rule: its value when the primary is down)
  --path-translation C      character replacing "/" in names (default "_"; "False" keeps sub-directories)
  --file-mode MODE          mode of files whose object sets no filePermission (default 0600: owner only)
  --template NAME=FILE      also write file NAME rendered from the Liquid template in FILE ({{ name }} of the
                            files the objects produce; repeatable; docs/templates.md)
  --quiet                   print nothing on success
  --assume-role-arn ARN     read as this role, assumed (sts:AssumeRole) with your own credentials
                            (another account's secrets); with:
  --assume-role-external-id ID            the external id the role's trust policy asks for
  --assume-role-duration-seconds N        session length, 900–3600 (AWS caps chained sessions at 1 h)
  --assume-role-session-tags K=V,K2=V2    session tags (the role must allow sts:TagSession)
${jmesPathExpressionsHelp(28)}
`;

/**
 * Files hold secrets and `smk fetch` runs as a person or a job, often in a shared place: readable
 * by the owner only unless the spec or --file-mode says otherwise (the agent and the CSI provider
 * keep ASCP's 0644, for the pod's other users).
 */
const fetchFileMode = 0o600;

function parseFileMode(value: string | undefined): number {
  if (value === undefined) return fetchFileMode;
  if (!/^0?[0-7]{3}$/.test(value)) {
    throw usageError(
      'fetch',
      `--file-mode must be octal permission bits like 0600 or 0640, got ${JSON.stringify(value)}`,
      '--file-mode',
    );
  }
  return Number.parseInt(value, 8);
}

/** `--template NAME=FILE` flags → name → template text (a file, or "-" for stdin once). */
async function templateTexts(flags: readonly string[]): Promise<Record<string, string>> {
  const texts: Record<string, string> = {};
  for (const flag of flags) {
    const at = flag.indexOf('=');
    if (at <= 0 || at === flag.length - 1) {
      throw usageError('fetch', `--template must be NAME=FILE, got ${JSON.stringify(flag)}`, '--template');
    }
    const name = flag.slice(0, at);
    if (Object.hasOwn(texts, name)) {
      throw usageError('fetch', `--template ${name} is given twice`, '--template');
    }
    texts[name] = await readTextArgument('fetch', `--template ${name}`, flag.slice(at + 1));
  }
  return texts;
}

const roleChainFlags = {
  roleArn: '--assume-role-arn',
  externalId: '--assume-role-external-id',
  durationSeconds: '--assume-role-duration-seconds',
  sessionTags: '--assume-role-session-tags',
} as const;
const roleChainOptions = {
  'assume-role-arn': { type: 'string' },
  'assume-role-external-id': { type: 'string' },
  'assume-role-duration-seconds': { type: 'string' },
  'assume-role-session-tags': { type: 'string' },
} as const;

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('fetch', args, {
    objects: { type: 'string' },
    dir: { type: 'string' },
    region: { type: 'string' },
    'failover-region': { type: 'string' },
    'path-translation': { type: 'string' },
    'file-mode': { type: 'string' },
    template: { type: 'string', multiple: true },
    ...roleChainOptions,
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
    ...jmesPathExpressionsOption,
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const environment = processEnvironment();
  const defaultFileMode = parseFileMode(values['file-mode']);
  if (values.dir === undefined || values.dir.trim() === '') {
    throw usageError('fetch', '--dir is required (the directory to write the files into)', '--dir');
  }
  const specText =
    values.objects !== undefined
      ? await readTextArgument('fetch', '--objects', values.objects)
      : environment.objects;
  if (specText === undefined) {
    throw usageError('fetch', 'give the objects spec with --objects FILE|- or SMK_OBJECTS', '--objects');
  }
  const subject = values.objects !== undefined && values.objects !== '-' ? `spec ${values.objects}` : 'spec';
  const allowExpressions = values['allow-jmespath-expressions'];
  const spec = parseMountSpec(
    {
      objects: specText,
      region: values.region,
      failoverRegion: values['failover-region'],
      pathTranslation: values['path-translation'],
    },
    subject,
    { allowExpressions },
  );
  const templates = parseTemplates(
    await templateTexts(values.template ?? []),
    (name) => `--template ${name}`,
    subject,
    spec,
  );
  const roleChain = parseNamedRoleChain(
    {
      [roleChainFlags.roleArn]: values['assume-role-arn'],
      [roleChainFlags.externalId]: values['assume-role-external-id'],
      [roleChainFlags.durationSeconds]: values['assume-role-duration-seconds'],
      [roleChainFlags.sessionTags]: values['assume-role-session-tags'],
    },
    roleChainFlags,
    'smk fetch',
  );
  const reader = createSecretReader(
    chainedIdentity({ kind: 'default' }, roleChain, 'smk.fetch', roleChainFlags.roleArn),
    {
      cache: new SecretCache(),
      clients: new AwsClients({
        endpoint: environment.awsEndpoint,
        ...(environment.region ? { stsRegion: environment.region } : {}),
      }),
    },
  );
  const expressions = allowExpressions ? createExpressionEvaluator() : undefined;
  const payloads = await resolvePayloads(spec, reader, {
    defaultRegion: values.region ?? environment.region,
    defaultFileMode,
    subject,
    expressions,
    templates,
  }).finally(() => expressions?.close());
  const result = await writePayloadsAtomically(values.dir, payloads);
  if (!values.quiet) {
    // Names, sizes and versions only: never a value.
    for (const payload of payloads) {
      process.stderr.write(
        `  ${payload.name}  ${payload.bytes.byteLength} B  mode ${payload.mode.toString(8).padStart(4, '0')}  version ${payload.objectVersion.version}\n`,
      );
    }
    process.stderr.write(
      `smk fetch: ${payloads.length} file(s) in ${values.dir}${result.changed ? '' : ' (unchanged)'}\n`,
    );
  }
  return 0;
}
