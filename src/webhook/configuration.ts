/**
 * The MutatingWebhookConfiguration that registers the injector: pods on CREATE, fail closed (a
 * pod that asked for secrets must not start without them), reinvoked when a later webhook (EKS
 * identity) changed the pod, no side effects. The Helm chart and the integration tests render it
 * from here so they cannot drift apart.
 */
import type { V1LabelSelector, V1MutatingWebhookConfiguration } from '@kubernetes/client-node';

export const webhookName = 'inject.smk.dev';
export const mutatePath = '/mutate/pods';

export interface WebhookConfigurationOptions {
  readonly name: string;
  /** PEM of the CA that signed the serving certificate. */
  readonly caBundlePem: string;
  /** Either a URL (out-of-cluster, tests) or an in-cluster Service. */
  readonly target:
    | { readonly url: string }
    | { readonly service: { readonly namespace: string; readonly name: string; readonly port?: number } };
  readonly namespaceSelector?: V1LabelSelector;
  readonly objectSelector?: V1LabelSelector;
  /** Default Fail: an annotated pod never starts without its secrets when the webhook is down. */
  readonly failurePolicy?: 'Fail' | 'Ignore';
  readonly timeoutSeconds?: number;
}

/** Namespaces the injector never touches, so a broken webhook cannot block the control plane. */
export const defaultNamespaceSelector: V1LabelSelector = {
  matchExpressions: [
    { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-node-lease'] },
    { key: 'smk.dev/injection', operator: 'NotIn', values: ['disabled'] },
  ],
};

export function webhookConfiguration(options: WebhookConfigurationOptions): V1MutatingWebhookConfiguration {
  const clientConfig =
    'url' in options.target
      ? { url: new URL(mutatePath, options.target.url).toString() }
      : {
          service: {
            namespace: options.target.service.namespace,
            name: options.target.service.name,
            path: mutatePath,
            port: options.target.service.port ?? 443,
          },
        };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: options.name, labels: { 'app.kubernetes.io/name': 'smk' } },
    webhooks: [
      {
        name: webhookName,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: options.failurePolicy ?? 'Fail',
        // The EKS identity webhook may run after us; IfNeeded lets us copy what it added.
        reinvocationPolicy: 'IfNeeded',
        matchPolicy: 'Equivalent',
        timeoutSeconds: options.timeoutSeconds ?? 5,
        clientConfig: { ...clientConfig, caBundle: Buffer.from(options.caBundlePem).toString('base64') },
        rules: [
          {
            apiGroups: [''],
            apiVersions: ['v1'],
            operations: ['CREATE'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        namespaceSelector: structuredClone(options.namespaceSelector ?? defaultNamespaceSelector),
        ...(options.objectSelector ? { objectSelector: structuredClone(options.objectSelector) } : {}),
      },
    ],
  };
}
