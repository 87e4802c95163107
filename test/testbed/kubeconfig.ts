/**
 * kubeconfig files for the bed: one renderer, so the file a person or a child process reads and
 * the KubeConfig object a test uses are the same text.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';

export type Credentials =
  | { readonly name: string; readonly certPem: string; readonly keyPem: string }
  | { readonly name: string; readonly token: string };

export interface KubeConfigInput {
  readonly server: string;
  readonly caPem: string;
  readonly credentials: Credentials;
  readonly namespace?: string;
}

const clusterName = 'smk-testbed';

export function renderKubeConfig(input: KubeConfigInput): string {
  const { credentials } = input;
  const user =
    'token' in credentials
      ? { token: credentials.token }
      : {
          'client-certificate-data': base64(credentials.certPem),
          'client-key-data': base64(credentials.keyPem),
        };
  const contextName = `${credentials.name}@${clusterName}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: clusterName,
        cluster: { server: input.server, 'certificate-authority-data': base64(input.caPem) },
      },
    ],
    users: [{ name: credentials.name, user }],
    contexts: [
      {
        name: contextName,
        context: { cluster: clusterName, user: credentials.name, namespace: input.namespace ?? 'default' },
      },
    ],
    'current-context': contextName,
  });
}

export function kubeConfigFromText(text: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(text);
  return kubeConfig;
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
