/**
 * The chart's policy objects as rendered: the controller's ValidatingAdmissionPolicies (on by
 * default, matched to the rendered controller ServiceAccount only) and the opt-in NetworkPolicies
 * (webhook ingress, controller ingress and egress). The NetworkPolicies are applied to the test bed
 * for real, so its API server validates them; the bed runs no CNI, so what they let through is not
 * tested here — that depends on the cluster's CNI enforcing them at all.
 * What the admission policies refuse is tested in controller-admission-policy.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { find, helm, objectName, type RenderedObject, renderChart, serverSideApply } from './helm.ts';

interface Policy {
  matchConditions: Array<{ name: string; expression: string }>;
  validations: Array<{ expression: string }>;
}

interface NetworkPolicySpec {
  podSelector: { matchLabels: Record<string, string> };
  policyTypes: string[];
  ingress?: Array<{ from?: unknown[]; ports: Array<{ protocol: string; port: number }> }>;
  egress?: Array<{ to?: unknown[]; ports: Array<{ protocol: string; port: number }> }>;
}

const policyKinds = ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];

function names(objects: readonly RenderedObject[], kinds: readonly string[]): string[] {
  return objects
    .filter((object) => kinds.includes(object.kind))
    .map((object) => `${object.kind}/${object.metadata.name}`)
    .sort();
}

const apiServer = [{ ipBlock: { cidr: '10.0.0.0/24' } }];
const monitoring = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }];

describe('chart policies: admission policies for the controller, NetworkPolicies', () => {
  let bed: TestBed;

  before(
    async () => {
      await helm();
      bed = await connectTestBed();
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    await bed?.stop();
  });

  test("admission policies: on by default, each matching only this release's controller or webhook ServiceAccount", async () => {
    const { objects } = await renderChart({ release: 'smk', namespace: 'platform' });
    assert.deepEqual(names(objects, policyKinds), [
      'ValidatingAdmissionPolicy/smk-controller-argo-rollouts',
      'ValidatingAdmissionPolicy/smk-controller-cronjob-rollouts',
      'ValidatingAdmissionPolicy/smk-controller-rollouts',
      'ValidatingAdmissionPolicy/smk-controller-secrets',
      'ValidatingAdmissionPolicy/smk-controller-token-requests',
      'ValidatingAdmissionPolicy/smk-webhook-configuration',
      'ValidatingAdmissionPolicyBinding/smk-controller-argo-rollouts',
      'ValidatingAdmissionPolicyBinding/smk-controller-cronjob-rollouts',
      'ValidatingAdmissionPolicyBinding/smk-controller-rollouts',
      'ValidatingAdmissionPolicyBinding/smk-controller-secrets',
      'ValidatingAdmissionPolicyBinding/smk-controller-token-requests',
      'ValidatingAdmissionPolicyBinding/smk-webhook-configuration',
    ]);
    for (const name of ['token-requests', 'secrets', 'rollouts', 'cronjob-rollouts', 'argo-rollouts']) {
      const policy = find(objects, 'ValidatingAdmissionPolicy', `smk-controller-${name}`).spec as Policy;
      assert.deepEqual(policy.matchConditions, [
        {
          name: 'smk-controller',
          expression: 'request.userInfo.username == "system:serviceaccount:platform:smk-controller"',
        },
      ]);
      const binding = find(objects, 'ValidatingAdmissionPolicyBinding', `smk-controller-${name}`).spec;
      assert.deepEqual(binding, { policyName: `smk-controller-${name}`, validationActions: ['Deny'] });
    }
    const configuration = find(objects, 'ValidatingAdmissionPolicy', 'smk-webhook-configuration')
      .spec as Policy;
    assert.deepEqual(configuration.matchConditions, [
      {
        name: 'smk-webhook',
        expression: 'request.userInfo.username == "system:serviceaccount:platform:smk-webhook"',
      },
    ]);
    // The release's own namespace joins the excluded ones: its accounts carry smk's own IAM roles.
    const tokens = find(objects, 'ValidatingAdmissionPolicy', 'smk-controller-token-requests').spec as Policy;
    assert.equal(
      tokens.validations[0]?.expression,
      '!(request.namespace in ["kube-system","kube-node-lease","kube-public","platform"])',
    );
  });

  test('admission policies: follow the account name, rotation, namespaceLabels, and can be turned off', async () => {
    const named = await renderChart({
      release: 'smk',
      namespace: 'platform',
      setJson: {
        'controller.serviceAccount': { create: false, name: 'existing' },
        'controller.rotation.enabled': false,
        'controller.admissionPolicy.namespaceLabels': { 'smk.dev/sync': 'enabled', team: 'a' },
      },
    });
    // No rollouts without rotation (the controller then has no right to patch workloads either).
    assert.deepEqual(names(named.objects, ['ValidatingAdmissionPolicy']), [
      'ValidatingAdmissionPolicy/smk-controller-secrets',
      'ValidatingAdmissionPolicy/smk-controller-token-requests',
      'ValidatingAdmissionPolicy/smk-webhook-configuration',
    ]);
    const tokens = find(named.objects, 'ValidatingAdmissionPolicy', 'smk-controller-token-requests')
      .spec as Policy;
    assert.match(tokens.matchConditions[0]?.expression ?? '', /"system:serviceaccount:platform:existing"$/);
    assert.equal(
      tokens.validations[1]?.expression,
      'has(namespaceObject.metadata.labels) && "smk.dev/sync" in namespaceObject.metadata.labels && ' +
        'namespaceObject.metadata.labels["smk.dev/sync"] == "enabled" && "team" in namespaceObject.metadata.labels && ' +
        'namespaceObject.metadata.labels["team"] == "a"',
    );
    const off = await renderChart({
      release: 'smk',
      namespace: 'platform',
      setJson: { 'controller.admissionPolicy.enabled': false, 'webhook.admissionPolicy.enabled': false },
    });
    assert.deepEqual(names(off.objects, policyKinds), []);
    // cert-manager TLS: the webhook has no right to patch its configuration, so no policy for it.
    const certManager = await renderChart({
      release: 'smk',
      namespace: 'platform',
      setJson: { 'webhook.tls.mode': 'cert-manager' },
    });
    assert.ok(!names(certManager.objects, policyKinds).some((name) => name.includes('webhook')));
    await assert.rejects(
      renderChart({
        release: 'smk',
        namespace: 'platform',
        setJson: { 'controller.admissionPolicy.namespaceLabels': { 'bad key!': 'x' } },
      }),
      // (helm's schema library names the wrong path for a property name; the message is right.)
      /invalid propertyName 'bad key!'/,
    );
  });

  test('NetworkPolicies: none by default; enabled, the webhook admits the API server and scrapers on its port only', async () => {
    const plain = await renderChart({ release: 'smk', namespace: 'platform' });
    assert.deepEqual(names(plain.objects, ['NetworkPolicy']), []);
    await assert.rejects(
      renderChart({ release: 'smk', namespace: 'platform', setJson: { 'networkPolicy.enabled': true } }),
      /networkPolicy\.webhook\.apiServer is empty/,
    );
    await assert.rejects(
      renderChart({
        release: 'smk',
        namespace: 'platform',
        setJson: {
          'networkPolicy.enabled': true,
          'networkPolicy.webhook.apiServer': [{ cidr: '10.0.0.0/24' }],
        },
      }),
      /networkPolicy\/webhook\/apiServer\/0/,
    );

    const namespace = await bed.newNamespace('chart-netpol');
    const { objects } = await renderChart({
      release: 'smk',
      namespace,
      setJson: {
        'networkPolicy.enabled': true,
        'networkPolicy.webhook.apiServer': apiServer,
        'networkPolicy.metrics.from': monitoring,
      },
    });
    assert.deepEqual(names(objects, ['NetworkPolicy']), [
      'NetworkPolicy/smk-controller',
      'NetworkPolicy/smk-webhook',
    ]);
    const webhook = find(objects, 'NetworkPolicy', 'smk-webhook').spec as NetworkPolicySpec;
    assert.deepEqual(webhook.podSelector.matchLabels, {
      'app.kubernetes.io/name': 'smk',
      'app.kubernetes.io/instance': 'smk',
      'app.kubernetes.io/component': 'webhook',
    });
    assert.deepEqual(webhook.policyTypes, ['Ingress']);
    assert.deepEqual(webhook.ingress, [
      { from: [...apiServer, ...monitoring], ports: [{ protocol: 'TCP', port: 8443 }] },
    ]);

    const controller = find(objects, 'NetworkPolicy', 'smk-controller').spec as NetworkPolicySpec;
    assert.equal(controller.podSelector.matchLabels['app.kubernetes.io/component'], 'controller');
    assert.deepEqual(controller.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(controller.ingress, [{ from: monitoring, ports: [{ protocol: 'TCP', port: 8081 }] }]);
    assert.deepEqual(controller.egress, [
      // API server and AWS: any address by default, on their ports only.
      {
        ports: [
          { protocol: 'TCP', port: 443 },
          { protocol: 'TCP', port: 6443 },
        ],
      },
      { ports: [{ protocol: 'TCP', port: 443 }] },
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          },
        ],
        ports: [
          { protocol: 'UDP', port: 53 },
          { protocol: 'TCP', port: 53 },
        ],
      },
    ]);
    // The API server's own validation (the bed enforces none of it: no CNI).
    for (const object of objects.filter((o) => o.kind === 'NetworkPolicy')) {
      await serverSideApply(bed.kubeConfig, object, { dryRun: false }).catch((error: unknown) => {
        throw new Error(
          `${objectName(object)}: ${error instanceof ApiException ? String(error.body) : String(error)}`,
        );
      });
    }
  });

  test('NetworkPolicies: with no scraper named the controller admits nobody; narrowed egress and extra rules render as given', async () => {
    const namespace = await bed.newNamespace('chart-netpol-narrow');
    const extra = {
      to: [{ ipBlock: { cidr: '169.254.170.23/32' } }],
      ports: [{ protocol: 'TCP', port: 80 }],
    };
    const { objects } = await renderChart({
      release: 'smk',
      namespace,
      setJson: {
        'webhook.enabled': false,
        'networkPolicy.enabled': true,
        'networkPolicy.controller.apiServer': { to: apiServer, ports: [443] },
        'networkPolicy.controller.aws': { to: [{ ipBlock: { cidr: '10.1.0.0/16' } }], ports: [443] },
        'networkPolicy.controller.extraEgress': [extra],
      },
    });
    // The webhook is off, so its API server sources are not needed.
    assert.deepEqual(names(objects, ['NetworkPolicy']), ['NetworkPolicy/smk-controller']);
    const controller = find(objects, 'NetworkPolicy', 'smk-controller').spec as NetworkPolicySpec;
    assert.deepEqual(controller.ingress, []);
    assert.deepEqual(controller.egress?.[0], { to: apiServer, ports: [{ protocol: 'TCP', port: 443 }] });
    assert.deepEqual(controller.egress?.[1], {
      to: [{ ipBlock: { cidr: '10.1.0.0/16' } }],
      ports: [{ protocol: 'TCP', port: 443 }],
    });
    assert.deepEqual(controller.egress?.at(-1), extra);
    const [policy] = objects.filter((o) => o.kind === 'NetworkPolicy');
    assert.ok(policy);
    await serverSideApply(bed.kubeConfig, policy, { dryRun: false });
  });
});
