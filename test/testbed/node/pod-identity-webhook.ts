/**
 * What EKS adds to every cluster and this bed would otherwise lack: the EKS Pod Identity Webhook
 * (IRSA). For a pod whose ServiceAccount carries `eks.amazonaws.com/role-arn`, it adds to every
 * container and init container the env the AWS SDKs read (AWS_ROLE_ARN,
 * AWS_WEB_IDENTITY_TOKEN_FILE, regional STS, the region) and a projected ServiceAccount token with
 * audience sts.amazonaws.com — as amazon-eks-pod-identity-webhook does. smk's injected agent then
 * assumes the pod's role through STS (moto here) with the pod's own token, as on EKS.
 *
 * It runs in the bed's process on a loopback port; the API server calls it by URL.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { z } from 'zod';
import { type CertificateAuthority, issueServingCertificate } from '../../../src/webhook/tls/pki.ts';

export const roleArnAnnotation = 'eks.amazonaws.com/role-arn';
export const tokenVolumeName = 'aws-iam-token';
export const tokenDirectory = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
const configurationName = 'pod-identity-webhook';

const containerSchema = z
  .object({
    name: z.string(),
    env: z.array(z.object({ name: z.string() }).passthrough()).optional(),
    volumeMounts: z.array(z.object({ name: z.string(), mountPath: z.string() }).passthrough()).optional(),
  })
  .passthrough();
const reviewSchema = z.object({
  apiVersion: z.string(),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string(),
    namespace: z.string(),
    object: z.object({
      spec: z
        .object({
          serviceAccountName: z.string().optional(),
          containers: z.array(containerSchema),
          initContainers: z.array(containerSchema).optional(),
          volumes: z.array(z.object({ name: z.string() }).passthrough()).optional(),
        })
        .passthrough(),
    }),
  }),
});
type Container = z.infer<typeof containerSchema>;

type JsonPatch = { op: 'add'; path: string; value: unknown }[];

/** The JSON patch amazon-eks-pod-identity-webhook makes for a pod running as `roleArn`. Pure. */
export function identityPatch(
  spec: z.infer<typeof reviewSchema>['request']['object']['spec'],
  roleArn: string,
  region: string,
): JsonPatch {
  if ((spec.volumes ?? []).some((volume) => volume.name === tokenVolumeName)) return [];
  const env = [
    { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
    { name: 'AWS_DEFAULT_REGION', value: region },
    { name: 'AWS_REGION', value: region },
    { name: 'AWS_ROLE_ARN', value: roleArn },
    { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: `${tokenDirectory}/token` },
  ];
  const mount = { name: tokenVolumeName, mountPath: tokenDirectory, readOnly: true };
  const patch: JsonPatch = [];
  const containerPatch = (field: 'containers' | 'initContainers', containers: readonly Container[]): void => {
    containers.forEach((container, index) => {
      const present = new Set((container.env ?? []).map((variable) => variable.name));
      const added = env.filter((variable) => !present.has(variable.name));
      const base = `/spec/${field}/${index}`;
      if (container.env === undefined) patch.push({ op: 'add', path: `${base}/env`, value: added });
      else for (const variable of added) patch.push({ op: 'add', path: `${base}/env/-`, value: variable });
      if (container.volumeMounts === undefined)
        patch.push({ op: 'add', path: `${base}/volumeMounts`, value: [mount] });
      else patch.push({ op: 'add', path: `${base}/volumeMounts/-`, value: mount });
    });
  };
  containerPatch('containers', spec.containers);
  containerPatch('initContainers', spec.initContainers ?? []);
  const volume = {
    name: tokenVolumeName,
    projected: {
      sources: [
        { serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } },
      ],
    },
  };
  if (spec.volumes === undefined) patch.push({ op: 'add', path: '/spec/volumes', value: [volume] });
  else patch.push({ op: 'add', path: '/spec/volumes/-', value: volume });
  return patch;
}

export interface PodIdentityWebhook {
  readonly url: string;
  stop(): Promise<void>;
}

/** Serves the webhook and registers it with the API server (failurePolicy Ignore, as EKS does). */
export async function startPodIdentityWebhook(options: {
  readonly kubeConfig: KubeConfig;
  readonly ca: CertificateAuthority;
  readonly region: string;
}): Promise<PodIdentityWebhook> {
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const serving = await issueServingCertificate(options.ca, {
    commonName: 'pod-identity-webhook',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  const roleOf = async (namespace: string, name: string): Promise<string | undefined> => {
    try {
      const account = await core.readNamespacedServiceAccount({ namespace, name });
      return account.metadata?.annotations?.[roleArnAnnotation];
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  };
  const server: Server = createServer({ cert: serving.certPem, key: serving.keyPem }, (request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
    });
    request.on('end', () => {
      void (async () => {
        const review = reviewSchema.parse(JSON.parse(body));
        const { namespace, object, uid } = review.request;
        const roleArn = await roleOf(namespace, object.spec.serviceAccountName ?? 'default');
        const patch = roleArn === undefined ? [] : identityPatch(object.spec, roleArn, options.region);
        return {
          apiVersion: review.apiVersion,
          kind: 'AdmissionReview',
          response: {
            uid,
            allowed: true,
            ...(patch.length === 0
              ? {}
              : { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }),
          },
        };
      })().then(
        (answer) => {
          response.setHeader('content-type', 'application/json');
          response.end(JSON.stringify(answer));
        },
        (error: unknown) => {
          response.statusCode = 500;
          response.end(error instanceof Error ? error.message : String(error));
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/mutate`;
  const admission = options.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: configurationName },
      webhooks: [
        {
          name: 'iam-for-pods.amazonaws.com',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Ignore',
          reinvocationPolicy: 'IfNeeded',
          timeoutSeconds: 10,
          clientConfig: { url, caBundle: Buffer.from(options.ca.certPem).toString('base64') },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          objectSelector: {
            matchExpressions: [
              { key: 'eks.amazonaws.com/skip-pod-identity-webhook', operator: 'DoesNotExist' },
            ],
          },
        },
      ],
    },
  });
  return {
    url,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
