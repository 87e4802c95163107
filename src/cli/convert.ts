/**
 * `smk convert -f FILE|DIR|- …`: External Secrets Operator manifests (ExternalSecret with its
 * SecretStore / ClusterSecretStore) and workloads using the Vault agent injector, printed as their
 * smk equivalent — SecretSyncs, and workloads with smk.dev/* annotations. Named `convert`, not
 * `migrate`: it reads files and prints, it changes nothing in a cluster. Every field smk cannot
 * honour is reported on stderr by object and path; then nothing is printed and the exit code is 1,
 * unless --allow-partial (print what converted, exit 0).
 */
import { parseAllDocuments } from 'yaml';
import { InvalidInputError } from '../core/errors.ts';
import { parseCommandArgs, usageError } from './args.ts';
import { convertEso } from './convert-eso.ts';
import { isEsoObject } from './convert-eso-schema.ts';
import { type ConvertIssue, printIssues, printManifests } from './convert-output.ts';
import { convertVaultObject } from './convert-vault.ts';
import { type ManifestSource, readManifestSources } from './input.ts';

const help = `Usage: smk convert -f FILE|DIR|- [-f …] [options]

Print the smk equivalent of External Secrets Operator and Vault agent injector manifests:
  ExternalSecret (+ the SecretStore / ClusterSecretStore it names)  →  SecretSync
  Pods / workloads with vault.hashicorp.com/agent-inject-*          →  the same, with smk.dev/* annotations
Other objects are left out. Every field smk cannot honour is reported on stderr
("unsupported ExternalSecret shop/db spec.dataFrom[0].find: …"), as are fields carried over in
smk's own way ("note …").

Options:
  -f, --filename F          a file, a directory (its .yaml, .yml and .json files, recursively) or
                            "-" for stdin; repeat for several. Give the stores with their ExternalSecrets.
  --service-account NAME    the ServiceAccount SecretSyncs read as, when a store has none of this
                            namespace (the operator's own identity, or another namespace's account)
  --allow-partial           print what converted and exit 0 even when some fields could not be
  --quiet                   do not print notes (unsupported fields are always reported)

Exit code 1 when anything is unsupported (nothing printed) unless --allow-partial.
`;

function documentsOf(source: ManifestSource): { objects: unknown[]; issues: ConvertIssue[] } {
  const objects: unknown[] = [];
  const issues: ConvertIssue[] = [];
  // logLevel 'error': the yaml package would otherwise print warnings quoting the input.
  for (const [index, document] of parseAllDocuments(source.text, { logLevel: 'error' }).entries()) {
    if (document.errors.length > 0) {
      issues.push({
        severity: 'unsupported',
        subject: `${source.name} document ${index}`,
        field: 'yaml',
        message: 'not valid YAML',
      });
      continue;
    }
    const object: unknown = document.toJS({ maxAliasCount: 100 });
    if (object === null || object === undefined) continue;
    const list = object as { kind?: unknown; items?: unknown };
    if (list.kind === 'List' && Array.isArray(list.items)) objects.push(...list.items);
    else objects.push(object);
  }
  return { objects, issues };
}

/** The conversion of every object of the inputs, in input order. Pure. */
export function convertObjects(
  objects: readonly unknown[],
  options: { readonly serviceAccount?: string | undefined } = {},
): { objects: unknown[]; issues: ConvertIssue[] } {
  const eso = convertEso(objects, options);
  const output: unknown[] = [...eso.objects];
  const issues = [...eso.issues];
  for (const object of objects) {
    if (isEsoObject(object)) continue;
    const vault = convertVaultObject(object);
    issues.push(...vault.issues);
    if (vault.object !== undefined) output.push(vault.object);
  }
  return { objects: output, issues };
}

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('convert', args, {
    filename: { type: 'string', short: 'f', multiple: true },
    'service-account': { type: 'string' },
    'allow-partial': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (values.filename === undefined || values.filename.length === 0) {
    throw usageError('convert', '-f FILE|DIR|- is required', '--filename');
  }
  const objects: unknown[] = [];
  const issues: ConvertIssue[] = [];
  for (const source of await readManifestSources('convert', values.filename)) {
    const found = documentsOf(source);
    objects.push(...found.objects);
    issues.push(...found.issues);
  }
  const converted = convertObjects(objects, { serviceAccount: values['service-account'] });
  issues.push(...converted.issues);
  const unsupported = issues.filter((issue) => issue.severity === 'unsupported');
  const shown = values.quiet ? unsupported : issues;
  if (shown.length > 0) process.stderr.write(printIssues(shown));
  if (unsupported.length > 0 && !values['allow-partial']) {
    process.stderr.write(
      `smk convert: ${unsupported.length} field(s) have no smk equivalent; nothing printed (--allow-partial prints the rest)\n`,
    );
    return 1;
  }
  if (converted.objects.length === 0) {
    throw new InvalidInputError('smk convert: no ExternalSecret or Vault-injected workload in the input', {
      field: '--filename',
    });
  }
  process.stdout.write(printManifests(converted.objects));
  return 0;
}
