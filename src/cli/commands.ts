/** The command table: name, one-line summary, and a lazy import of the module that runs it. */
export interface CommandModule {
  /** Runs the command with its own arguments; resolves to the process exit code. */
  run(args: readonly string[]): Promise<number>;
}

interface CommandEntry {
  readonly summary: string;
  readonly load: () => Promise<CommandModule>;
}

export const commands = {
  fetch: {
    summary: 'fetch the secrets of an objects spec and write them as files (atomically)',
    load: () => import('./fetch.ts'),
  },
  'csi-provider': {
    summary: 'serve the Secrets Store CSI provider socket (drop-in for the AWS provider, one cache per node)',
    load: () => import('./csi-provider.ts'),
  },
  webhook: {
    summary: 'serve the admission webhook that injects the secrets agent into annotated pods',
    load: () => import('./webhook.ts'),
  },
  inject: {
    summary: "print Pods/workloads from YAML with the webhook's injection applied (pipe to kubectl apply)",
    load: () => import('./inject.ts'),
  },
  convert: {
    summary: 'print the smk equivalent of External Secrets Operator and Vault injector manifests',
    load: () => import('./convert.ts'),
  },
  agent: {
    summary: 'in an injected pod: `agent init` writes the secrets, `agent refresh` keeps them current',
    load: () => import('./agent.ts'),
  },
  controller: {
    summary: 'run the sync controller: SecretSync and opted-in SecretProviderClasses → Kubernetes Secrets',
    load: () => import('./controller.ts'),
  },
  doctor: {
    summary: 'check an installation: cluster, CRDs, webhook TLS, IRSA role, rotation queue, CSI socket',
    load: () => import('./doctor.ts'),
  },
  version: {
    summary: 'print the version',
    load: () => import('./version.ts'),
  },
} satisfies Record<string, CommandEntry>;

export type CommandName = keyof typeof commands;
