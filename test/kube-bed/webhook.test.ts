/**
 * The bed's API server calls a mutating admission webhook over TLS (url mode, CA in caBundle) and
 * stores the patched object, as it will call smk's injector.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AdmissionregistrationV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { eventually } from './wait.ts';

const admissionReviewSchema = z.object({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string(),
    operation: z.string(),
    namespace: z.string(),
    dryRun: z.boolean().optional(),
    userInfo: z.object({ username: z.string() }),
    object: z.object({
      metadata: z.looseObject({
        name: z.string().optional(),
        labels: z.record(z.string(), z.string()).optional(),
      }),
    }),
  }),
});
type AdmissionRequest = z.infer<typeof admissionReviewSchema>['request'];

const mutatedLabel = 'smk.dev/mutated';

/** A tiny mutating webhook: labels every object it sees and remembers the requests. */
async function startWebhook(): Promise<{
  server: Server;
  caPem: string;
  port: number;
  seen: AdmissionRequest[];
}> {
  const ca = await createCertificateAuthority({ commonName: 'kube-bed-webhook-ca', validForDays: 1 });
  const serving = await issueServingCertificate(ca, { commonName: 'webhook', ipAddresses: ['127.0.0.1'] });
  const seen: AdmissionRequest[] = [];
  const server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const review = admissionReviewSchema.parse(JSON.parse(body));
      seen.push(review.request);
      const patch =
        review.request.object.metadata.labels === undefined
          ? [{ op: 'add', path: '/metadata/labels', value: { [mutatedLabel]: 'yes' } }]
          : [{ op: 'add', path: `/metadata/labels/${mutatedLabel.replace('/', '~1')}`, value: 'yes' }];
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid: review.request.uid,
            allowed: true,
            patchType: 'JSONPatch',
            patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, caPem: ca.certPem, port: (server.address() as AddressInfo).port, seen };
}

describe('mutating admission webhook', () => {
  let bed: TestBed;
  let namespace: string;
  let webhook: Awaited<ReturnType<typeof startWebhook>>;
  let configName: string;

  before(async () => {
    bed = await connectTestBed();
    namespace = await bed.newNamespace('webhook');
    webhook = await startWebhook();
    configName = `kube-bed-${namespace}`;
    await bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: {
        metadata: { name: configName },
        webhooks: [
          {
            name: 'label.kube-bed.smk.dev',
            clientConfig: {
              url: `https://127.0.0.1:${webhook.port}/mutate`,
              caBundle: Buffer.from(webhook.caPem).toString('base64'),
            },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            // Only this test's namespace: the bed is shared by tests running in parallel.
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            failurePolicy: 'Fail',
            timeoutSeconds: 5,
          },
        ],
      },
    });
  });

  after(async () => {
    await bed.kubeConfig
      .makeApiClient(AdmissionregistrationV1Api)
      .deleteMutatingWebhookConfiguration({ name: configName });
    await new Promise((resolve) => webhook.server.close(resolve));
    await bed.stop();
  });

  function pod(name: string): V1Pod {
    return { metadata: { name }, spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } };
  }

  it('is called when a Pod is created and its patch is stored', async () => {
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    // The API server picks up a new webhook configuration asynchronously; probe with dry runs.
    await eventually('the webhook configuration to take effect', async () => {
      const probe = await core.createNamespacedPod({ namespace, body: pod('probe'), dryRun: 'All' });
      return probe.metadata?.labels?.[mutatedLabel] === 'yes' ? true : undefined;
    });
    const callsBefore = webhook.seen.length;

    await core.createNamespacedPod({ namespace, body: pod('app') });

    const stored = await core.readNamespacedPod({ namespace, name: 'app' });
    assert.equal(stored.metadata?.labels?.[mutatedLabel], 'yes');
    const calls = webhook.seen.slice(callsBefore);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.operation, 'CREATE');
    assert.equal(calls[0]?.namespace, namespace);
    assert.equal(calls[0]?.object.metadata.name, 'app');
    assert.equal(calls[0]?.dryRun, false);
    assert.equal(calls[0]?.userInfo.username, 'smk-testbed-admin');
  });

  it('is not called for Pods in other namespaces', async () => {
    const other = await bed.newNamespace('webhook-other');
    const callsBefore = webhook.seen.length;
    const created = await bed.kubeConfig
      .makeApiClient(CoreV1Api)
      .createNamespacedPod({ namespace: other, body: pod('untouched') });
    assert.equal(created.metadata?.labels?.[mutatedLabel], undefined);
    assert.equal(webhook.seen.length, callsBefore);
  });
});
