/**
 * The flags that shape the injected agent, shared by `smk webhook` and `smk inject` (the same
 * mutation, so the same flags, help and validation: injectorConfigFromFlags at the edge).
 */
import { jmesPathExpressionsHelp, jmesPathExpressionsOption } from '../config.ts';
import { injectorConfigFromFlags } from '../webhook/injector-config.ts';
import type { InjectorConfig } from '../webhook/mutate.ts';
import { checkFlags } from './args.ts';

export const injectorFlagOptions = {
  'agent-image': { type: 'string' },
  'agent-pull-policy': { type: 'string' },
  'agent-aws-endpoint-url': { type: 'string' },
  'volume-size-limit': { type: 'string' },
  'no-native-sidecar': { type: 'boolean', default: false },
  ...jmesPathExpressionsOption,
} as const;

export const injectorFlagsHelp = `  --agent-image IMAGE       image of the injected agent (default: this release's smk image)
  --agent-pull-policy P     Always | IfNotPresent | Never (default IfNotPresent)
  --agent-aws-endpoint-url URL
                            AWS_ENDPOINT_URL of the injected agents unless the pod sets its own
                            (LocalStack, a proxy for every service; default: AWS's endpoints)
  --volume-size-limit Q     size limit of the memory volume (default 4Mi)
  --no-native-sidecar       run the refresh sidecar as a regular container (Kubernetes < 1.29)
${jmesPathExpressionsHelp(28)}`;

/** The parsed values of injectorFlagOptions (parseArgs' result for them). */
export interface InjectorFlagValues {
  readonly 'agent-image'?: string | undefined;
  readonly 'agent-pull-policy'?: string | undefined;
  readonly 'agent-aws-endpoint-url'?: string | undefined;
  readonly 'volume-size-limit'?: string | undefined;
  readonly 'no-native-sidecar'?: boolean | undefined;
  readonly 'allow-jmespath-expressions'?: boolean | undefined;
}

/** The injector's configuration from its flags; a bad value is a usage error naming the flag. */
export function injectorFromFlags(values: InjectorFlagValues, command: string): InjectorConfig {
  return checkFlags(() =>
    injectorConfigFromFlags(
      {
        agentImage: values['agent-image'],
        pullPolicy: values['agent-pull-policy'],
        awsEndpointUrl: values['agent-aws-endpoint-url'],
        volumeSizeLimit: values['volume-size-limit'],
        nativeSidecar: !values['no-native-sidecar'],
        allowJmesPathExpressions: values['allow-jmespath-expressions'],
      },
      command,
    ),
  );
}
