/**
 * The injector's settings from flags (`smk webhook`, `smk inject`), validated once; anything not
 * given keeps the default (the agent image is this release's image).
 */
import * as z from 'zod';
import { InvalidInputError } from '../core/errors.ts';
import { defaultInjectorConfig, type InjectorConfig } from './mutate.ts';

const quantityPattern = /^\d+(\.\d+)?(k|M|G|Ki|Mi|Gi)?$/;

const flagsSchema = z.object({
  agentImage: z
    .string()
    .trim()
    .min(1)
    .regex(/^[^\s]+$/, 'must be an image reference without spaces')
    .optional(),
  agentCommand: z.array(z.string().min(1)).min(1).optional(),
  pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  volumeSizeLimit: z.string().regex(quantityPattern, 'must be a quantity like 4Mi').optional(),
  nativeSidecar: z.boolean().optional(),
  agentUser: z.coerce.number().int().min(1).max(2_147_483_647).optional(),
  awsEndpointUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  allowJmesPathExpressions: z.boolean().optional(),
});

/** Flag values as parsed from argv: strings, not yet validated. */
export interface InjectorFlags {
  readonly agentImage?: string | undefined;
  readonly agentCommand?: readonly string[] | undefined;
  readonly pullPolicy?: string | undefined;
  readonly volumeSizeLimit?: string | undefined;
  readonly nativeSidecar?: boolean | undefined;
  readonly agentUser?: string | number | undefined;
  readonly awsEndpointUrl?: string | undefined;
  readonly allowJmesPathExpressions?: boolean | undefined;
}

const flagNames: Record<string, string> = {
  agentImage: '--agent-image',
  agentCommand: '--agent-command',
  pullPolicy: '--agent-pull-policy',
  volumeSizeLimit: '--volume-size-limit',
  nativeSidecar: '--no-native-sidecar',
  agentUser: '--agent-user',
  awsEndpointUrl: '--agent-aws-endpoint-url',
  allowJmesPathExpressions: '--allow-jmespath-expressions',
};

export function injectorConfigFromFlags(flags: InjectorFlags, command: string): InjectorConfig {
  const parsed = flagsSchema.safeParse(flags);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    const flag = flagNames[key] ?? key;
    throw new InvalidInputError(`smk ${command}: ${flag} ${issue?.message ?? 'is invalid'}`, {
      subject: `smk ${command}`,
      field: flag,
    });
  }
  const values = parsed.data;
  return {
    ...defaultInjectorConfig,
    agentImage: values.agentImage ?? defaultInjectorConfig.agentImage,
    ...(values.agentCommand ? { agentCommand: values.agentCommand } : {}),
    ...(values.pullPolicy ? { imagePullPolicy: values.pullPolicy } : {}),
    ...(values.volumeSizeLimit ? { volumeSizeLimit: values.volumeSizeLimit } : {}),
    ...(values.nativeSidecar === undefined ? {} : { nativeSidecar: values.nativeSidecar }),
    ...(values.agentUser === undefined ? {} : { agentUser: values.agentUser }),
    ...(values.awsEndpointUrl === undefined ? {} : { awsEndpointUrl: values.awsEndpointUrl }),
    ...(values.allowJmesPathExpressions === undefined
      ? {}
      : { allowJmesPathExpressions: values.allowJmesPathExpressions }),
  };
}
