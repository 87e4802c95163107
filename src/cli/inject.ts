/**
 * `smk inject -f FILE|DIR|- …`: the admission webhook's mutation, offline. Pods and the pod
 * templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs in
 * multi-document YAML come out injected, exactly as the webhook would store them:
 *   smk inject -f app/ | kubectl apply -f -
 * What was injected is said on stderr (`deployment/web injected`), as `linkerd inject` does, so
 * stdout stays the manifests alone. Nothing is printed to stdout unless every document succeeded.
 */
import { InvalidInputError } from '../core/errors.ts';
import { type InjectedObject, injectManifests } from '../webhook/manifests.ts';
import { parseCommandArgs, usageError } from './args.ts';
import { injectorFlagOptions, injectorFlagsHelp, injectorFromFlags } from './injector-flags.ts';
import { type ManifestSource, readManifestSources } from './input.ts';

const help = `Usage: smk inject -f FILE|DIR|- [-f …] [options]

Apply the injector's mutation to every Pod and pod template in the manifests (multi-document YAML
or JSON) and print the result as YAML on stdout. Objects without injection annotations are printed
unchanged. Each object is reported on stderr ("deployment/web injected", "service/web unchanged").
Errors name the file, the document (index, kind, name) and the annotation at fault; nothing is
printed on stdout unless every document succeeded.

Options:
  -f, --filename F          a file, a directory (its .yaml, .yml and .json files, recursively, in
                            path order) or "-" for stdin; repeat for several
  --quiet                   do not report the objects on stderr
${injectorFlagsHelp}
`;

/** kubectl's short form: "deployment/web". */
function reference(object: InjectedObject): string {
  const kind = object.kind.toLowerCase();
  return object.name === '' ? kind : `${kind}/${object.name}`;
}

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('inject', args, {
    filename: { type: 'string', short: 'f', multiple: true },
    quiet: { type: 'boolean', default: false },
    ...injectorFlagOptions,
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (values.filename === undefined || values.filename.length === 0) {
    throw usageError('inject', '-f FILE|DIR|- is required', '--filename');
  }
  const config = injectorFromFlags(values, 'inject');
  const sources = await readManifestSources('inject', values.filename);
  const outputs: string[] = [];
  const report: string[] = [];
  const errors: string[] = [];
  // With one source the messages stay as they were; with several, each names its file.
  const prefix = (source: ManifestSource): string => (sources.length > 1 ? `${source.name}: ` : '');
  for (const source of sources) {
    const result = injectManifests(source.text, config);
    if (!result.ok) {
      for (const error of result.errors) errors.push(`${prefix(source)}${error}`);
      continue;
    }
    if (result.yaml !== '') outputs.push(result.yaml);
    for (const object of result.objects) {
      report.push(`${reference(object)} ${object.changed ? 'injected' : 'unchanged'}`);
    }
  }
  if (errors.length > 0) {
    for (const error of errors) process.stderr.write(`smk inject: ${error}\n`);
    return 1;
  }
  if (report.length === 0) {
    throw new InvalidInputError('smk inject: the manifests hold no objects', { field: '--filename' });
  }
  process.stdout.write(outputs.join('---\n'));
  if (!values.quiet) process.stderr.write(`${report.join('\n')}\n`);
  return 0;
}
