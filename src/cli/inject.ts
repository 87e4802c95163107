/**
 * `smk inject -f FILE|-`: the admission webhook's mutation, offline. Pods and the pod templates of
 * Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs in multi-document YAML
 * come out injected, exactly as the webhook would store them:
 *   smk inject -f app.yaml | kubectl apply -f -
 * Nothing is printed unless every document succeeded.
 */
import { readFile } from 'node:fs/promises';
import { jmesPathExpressionsHelp, jmesPathExpressionsOption } from '../config.ts';
import { InvalidInputError } from '../core/errors.ts';
import { injectorConfigFromFlags } from '../webhook/injector-config.ts';
import { injectManifests } from '../webhook/manifests.ts';
import { parseCommandArgs } from './args.ts';

const help = `Usage: smk inject -f FILE|- [options]

Apply the injector's mutation to every Pod and pod template in FILE (multi-document YAML; "-"
reads stdin) and print the result as YAML. Objects without injection annotations are printed
unchanged. Errors name the document (index, kind, name) and the annotation at fault.

Options:
  -f, --filename FILE|-     the manifests
  --agent-image IMAGE       image of the injected agent (default: this release's smk image)
  --agent-pull-policy P     Always | IfNotPresent | Never (default IfNotPresent)
  --volume-size-limit Q     size limit of the memory volume (default 4Mi)
  --no-native-sidecar       run the refresh sidecar as a regular container (Kubernetes < 1.29)
${jmesPathExpressionsHelp(28)}
`;

async function readInput(source: string): Promise<string> {
  if (source !== '-') return readFile(source, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('inject', args, {
    filename: { type: 'string', short: 'f' },
    'agent-image': { type: 'string' },
    'agent-pull-policy': { type: 'string' },
    'volume-size-limit': { type: 'string' },
    'no-native-sidecar': { type: 'boolean', default: false },
    ...jmesPathExpressionsOption,
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (values.filename === undefined) {
    throw new InvalidInputError('smk inject: -f FILE|- is required (see smk inject --help)', {
      field: '--filename',
    });
  }
  const config = injectorConfigFromFlags(
    {
      agentImage: values['agent-image'],
      pullPolicy: values['agent-pull-policy'],
      volumeSizeLimit: values['volume-size-limit'],
      nativeSidecar: !values['no-native-sidecar'],
      allowJmesPathExpressions: values['allow-jmespath-expressions'],
    },
    'inject',
  );
  const result = injectManifests(await readInput(values.filename), config);
  if (!result.ok) {
    for (const error of result.errors) process.stderr.write(`smk inject: ${error}\n`);
    return 1;
  }
  process.stdout.write(result.yaml);
  return 0;
}
