/**
 * The webhook's ServiceAccount may patch its own MutatingWebhookConfiguration (self-managed TLS puts
 * its CA into the caBundle), and RBAC cannot narrow a patch to one field: without the chart's
 * ValidatingAdmissionPolicy a compromised webhook could widen its own rules and selectors and be
 * sent (and mutate) any object in any namespace. Applied here for real, with the rendered account,
 * RBAC and configuration, every patch made as that account: the caBundle still changes, nothing
 * else does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AdmissionregistrationV1Api,
  ApiException,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1MutatingWebhook,
} from '@kubernetes/client-node';
import { waitFor } from '../harness/wait.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { find, helm, objectName, type RenderedObject, renderChart, serverSideApply } from './helm.ts';

describe("the chart's admission policy on the webhook's own configuration (issue 14, finding 7)", () => {
  let bed: TestBed;
  let configurationName: string;
  let asWebhook: AdmissionregistrationV1Api;
  const id = Math.random().toString(36).slice(2, 8);
  const applied: RenderedObject[] = [];

  /** A strategic merge patch of the configuration's webhooks by name, as src/webhook/tls/bootstrap.ts sends. */
  const mergeWebhooks = (webhooks: Array<Partial<V1MutatingWebhook> & { name: string }>) =>
    asWebhook.patchMutatingWebhookConfiguration(
      { name: configurationName, body: { webhooks } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  /** A JSON patch (exact operations), as the webhook's ServiceAccount; its HTTP status, 200 when applied. */
  const jsonPatch = (operations: Array<{ op: string; path: string; value?: unknown }>, dryRun?: 'All') =>
    asWebhook
      .patchMutatingWebhookConfiguration(
        { name: configurationName, body: operations, ...(dryRun ? { dryRun } : {}) },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      )
      .then(
        () => 200,
        (error: unknown) => {
          if (error instanceof ApiException) return error.code;
          throw error;
        },
      );

  before(
    async () => {
      await helm();
      bed = await connectTestBed();
      const namespace = await bed.newNamespace('chart-webhook-policy');
      // The configuration only ever matches a namespace label no namespace has: other tests share the bed.
      const { objects } = await renderChart({
        release: `whp-${id}`,
        namespace,
        setJson: {
          'controller.enabled': false,
          'webhook.pods.namespaceSelector': { matchLabels: { 'smk-test.dev/scope': `none-${id}` } },
        },
      });
      const configuration = find(objects, 'MutatingWebhookConfiguration');
      configurationName = configuration.metadata.name;
      for (const object of objects.filter((o) =>
        [
          'ServiceAccount',
          'ClusterRole',
          'ClusterRoleBinding',
          'MutatingWebhookConfiguration',
          'ValidatingAdmissionPolicy',
          'ValidatingAdmissionPolicyBinding',
        ].includes(o.kind),
      )) {
        await serverSideApply(bed.kubeConfig, object, { dryRun: false, fieldManager: 'helm' }).catch(
          (error: unknown) => {
            throw new Error(
              `${objectName(object)}: ${error instanceof ApiException ? String(error.body) : String(error)}`,
            );
          },
        );
        applied.push(object);
      }
      const account = find(objects, 'ServiceAccount').metadata.name;
      asWebhook = (await bed.kubeConfigForServiceAccount(namespace, account)).makeApiClient(
        AdmissionregistrationV1Api,
      );
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    const client = bed ? KubernetesObjectApi.makeApiClient(bed.kubeConfig) : undefined;
    for (const object of applied)
      if (!object.metadata.namespace) await client?.delete(object).catch(() => undefined);
    await bed?.stop();
  });

  test('only the caBundle of its own webhooks changes; wider rules, selectors, failure policy or a new webhook are refused', async () => {
    const current = await asWebhook.readMutatingWebhookConfiguration({ name: configurationName });
    const [first] = current.webhooks ?? [];
    assert.ok(first, 'the chart renders the pod webhook');
    // The policy takes effect once the API server has loaded it: wait until a change (a timeout, as
    // a dry run, so nothing is changed meanwhile) is refused. Without the policy it never is.
    await waitFor('a change other than the caBundle refused', 30_000, async () => {
      const status = await jsonPatch(
        [{ op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 9 }],
        'All',
      );
      return status === 403;
    });
    // Each would widen what the API server sends the webhook (the new selector matches no namespace
    // of the shared bed, so an old chart letting it through harms no other test).
    const widenings: Array<[string, Array<{ op: string; path: string; value?: unknown }>]> = [
      [
        'another namespace selector',
        [
          {
            op: 'replace',
            path: '/webhooks/0/namespaceSelector',
            value: { matchLabels: { 'smk-test.dev/scope': `other-${id}` } },
          },
        ],
      ],
      [
        'every Pod, not only those that asked',
        [{ op: 'replace', path: '/webhooks/0/matchConditions', value: [] }],
      ],
      [
        'Secrets too',
        [
          {
            op: 'add',
            path: '/webhooks/0/rules/-',
            value: {
              apiGroups: [''],
              apiVersions: ['v1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['secrets'],
            },
          },
        ],
      ],
      ['failurePolicy Ignore', [{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }]],
      ['a new webhook', [{ op: 'add', path: '/webhooks/-', value: { ...first, name: 'extra.smk.dev' } }]],
    ];
    for (const [what, operations] of widenings) assert.equal(await jsonPatch(operations), 403, what);

    const bundle = Buffer.from(
      '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n',
    ).toString('base64');
    await mergeWebhooks([{ name: first.name, clientConfig: { caBundle: bundle } }]);
    const stored = await asWebhook.readMutatingWebhookConfiguration({ name: configurationName });
    assert.equal(stored.webhooks?.length, current.webhooks?.length);
    const [patched] = stored.webhooks ?? [];
    assert.equal(patched?.clientConfig.caBundle, bundle);
    const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));
    assert.deepEqual(
      plain({ ...patched, clientConfig: first.clientConfig }),
      plain(first),
      'nothing else changed',
    );
  });
});
