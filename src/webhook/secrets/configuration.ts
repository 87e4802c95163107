/**
 * The two webhooks write-through adds to the MutatingWebhookConfiguration (the Helm chart
 * renders the same shape; the integration tests register these):
 *  - Secrets labelled smk.dev/write-through=true, CREATE and UPDATE (objectSelector: no other
 *    Secret is ever sent; on UPDATE the old object matching is enough, so removing the label is
 *    seen). It has no side effects: the value is sealed into the stored Secret for the
 *    controller, which writes it to AWS.
 *  - Pods that name a Secret (secret volume, projected secret source, env, envFrom): the swap.
 *    Filtered in the API server by a CEL matchCondition, so other pods are never sent.
 * Both fail closed: a labelled Secret is refused rather than stored with its data, and a pod
 * that mounts a write-through Secret must not start with the empty Secret instead.
 */
import type { V1LabelSelector, V1MutatingWebhook } from '@kubernetes/client-node';
import { writeThroughLabel } from '../../core/write-through.ts';
import { defaultNamespaceSelector } from '../configuration.ts';

export const secretWebhookName = 'write-through.smk.dev';
export const podWebhookName = 'write-through-pods.smk.dev';
export const secretsPath = '/mutate/secrets';
export const podsPath = '/mutate/pods';

const namesASecret = (list: string): string =>
  `(has(object.spec.${list}) && object.spec.${list}.exists(c, ` +
  '(has(c.envFrom) && c.envFrom.exists(e, has(e.secretRef))) || ' +
  '(has(c.env) && c.env.exists(e, has(e.valueFrom) && has(e.valueFrom.secretKeyRef)))))';

/** CEL: the pod names a Secret somewhere write-through could matter (every pod has a projected token volume, so only secret sources count). */
export const podNamesASecret = [
  '(has(object.spec.volumes) && object.spec.volumes.exists(v, has(v.secret) || ' +
    '(has(v.projected) && has(v.projected.sources) && v.projected.sources.exists(s, has(s.secret)))))',
  namesASecret('containers'),
  namesASecret('initContainers'),
].join(' || ');

export interface WriteThroughWebhookOptions {
  readonly caBundlePem: string;
  readonly target:
    | { readonly url: string }
    | { readonly service: { readonly namespace: string; readonly name: string; readonly port?: number } };
  readonly namespaceSelector?: V1LabelSelector;
  /** Secret admission may read the published sealing key on first use (default 10 s). */
  readonly timeoutSeconds?: number;
}

function clientConfig(options: WriteThroughWebhookOptions, path: string) {
  const caBundle = Buffer.from(options.caBundlePem).toString('base64');
  if ('url' in options.target) return { url: new URL(path, options.target.url).toString(), caBundle };
  const service = options.target.service;
  return {
    service: { namespace: service.namespace, name: service.name, path, port: service.port ?? 443 },
    caBundle,
  };
}

export function writeThroughWebhooks(options: WriteThroughWebhookOptions): V1MutatingWebhook[] {
  const namespaceSelector = structuredClone(options.namespaceSelector ?? defaultNamespaceSelector);
  return [
    {
      name: secretWebhookName,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      reinvocationPolicy: 'Never',
      matchPolicy: 'Equivalent',
      timeoutSeconds: options.timeoutSeconds ?? 10,
      clientConfig: clientConfig(options, secretsPath),
      rules: [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE', 'UPDATE'],
          resources: ['secrets'],
          scope: 'Namespaced',
        },
      ],
      objectSelector: { matchLabels: { [writeThroughLabel]: 'true' } },
      namespaceSelector,
    },
    {
      name: podWebhookName,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      // The EKS identity webhook may run after us: its env is copied into the agents.
      reinvocationPolicy: 'IfNeeded',
      matchPolicy: 'Equivalent',
      timeoutSeconds: 5,
      clientConfig: clientConfig(options, podsPath),
      rules: [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE'],
          resources: ['pods'],
          scope: 'Namespaced',
        },
      ],
      matchConditions: [{ name: 'names-a-secret', expression: podNamesASecret }],
      namespaceSelector: structuredClone(namespaceSelector),
    },
  ];
}
