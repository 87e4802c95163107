/**
 * deploy/helm/smk rendered by a real helm, for the default values and an all-on values file: every
 * rendered object is applied with server-side dry-run to the test bed's API server (its schemas,
 * defaulting and admission decide, not a linter); the CRDs are deploy/crds unchanged; nothing
 * secret is generated at render time; and the security posture of every pod template holds.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { rolloutKindNames, rolloutKinds } from '../../src/controller/rotation/kinds.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  chartDir,
  crdDir,
  find,
  fixtures,
  helm,
  objectName,
  type RenderedObject,
  readYamlObjects,
  renderChart,
  serverSideApply,
} from './helm.ts';

interface PodTemplate {
  spec: {
    securityContext?: Record<string, unknown>;
    containers: Array<{ name: string; args?: string[]; securityContext?: Record<string, unknown> }>;
    automountServiceAccountToken?: boolean;
    volumes?: Array<{ name: string; hostPath?: unknown }>;
  };
}

function podTemplate(object: RenderedObject): PodTemplate {
  return (object.spec as { template: PodTemplate }).template;
}

function workloads(objects: readonly RenderedObject[]): RenderedObject[] {
  return objects.filter((object) => ['Deployment', 'DaemonSet', 'StatefulSet'].includes(object.kind));
}

function kinds(objects: readonly RenderedObject[]): string[] {
  return objects.map((object) => `${object.kind}/${object.metadata.name}`).sort();
}

/** Namespaced objects first need their namespace; CRDs before anything else (dry-run order does not matter otherwise). */
async function dryRunAll(bed: TestBed, objects: readonly RenderedObject[]): Promise<string[]> {
  const failures: string[] = [];
  for (const object of objects) {
    try {
      await serverSideApply(bed.kubeConfig, object, { dryRun: true });
    } catch (error) {
      const body = error instanceof ApiException ? String(error.body).slice(0, 400) : String(error);
      failures.push(`${objectName(object)}: ${body}`);
    }
  }
  return failures;
}

const run = promisify(execFile);

describe('Helm chart deploy/helm/smk', () => {
  let bed: TestBed;

  before(
    async () => {
      await helm();
      bed = await connectTestBed();
      // cert-manager and Prometheus Operator kinds exist only as stand-ins (see the fixture).
      const client = KubernetesObjectApi.makeApiClient(bed.kubeConfig);
      const crds = await readYamlObjects(`${fixtures}third-party-crds.yaml`);
      for (const crd of crds) {
        await client.patch(crd, undefined, undefined, 'smk-chart-test', true, PatchStrategy.ServerSideApply);
      }
      // Objects of a new kind are accepted once its CRD is Established.
      const extensions = bed.kubeConfig.makeApiClient(ApiextensionsV1Api);
      for (const crd of crds) {
        for (let established = false; !established; ) {
          const { status } = await extensions.readCustomResourceDefinition({ name: crd.metadata.name });
          established = (status?.conditions ?? []).some(
            (c) => c.type === 'Established' && c.status === 'True',
          );
          if (!established) await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    },
    { timeout: 15 * 60_000 },
  );

  // Dry-run creates nothing, so nothing cluster-scoped to clean up (the CRDs may be in real use by
  // other tests on the bed); the stand-in CRDs stay for the bed's lifetime.
  after(async () => {
    await bed?.stop();
  });

  test('default values: the expected objects, every one accepted by the API server (dry-run)', async () => {
    const namespace = await bed.newNamespace('chart-default');
    const { objects } = await renderChart({ release: 'smk', namespace });
    assert.deepEqual(kinds(objects), [
      'ClusterRole/smk-controller',
      'ClusterRole/smk-webhook',
      'ClusterRoleBinding/smk-controller',
      'ClusterRoleBinding/smk-webhook',
      'CustomResourceDefinition/clustersecretsyncs.smk.dev',
      'CustomResourceDefinition/secretsrotationmappings.awssecretsoperator.secretoperator',
      'CustomResourceDefinition/secretsyncs.smk.dev',
      'Deployment/smk-controller',
      'Deployment/smk-webhook',
      'MutatingWebhookConfiguration/smk-webhook',
      'PodDisruptionBudget/smk-webhook',
      'Role/smk-controller-leader-election',
      'Role/smk-webhook',
      'RoleBinding/smk-controller-leader-election',
      'RoleBinding/smk-webhook',
      'Secret/smk-webhook-tls',
      'Service/smk-controller-metrics',
      'Service/smk-webhook',
      'ServiceAccount/smk-controller',
      'ServiceAccount/smk-webhook',
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
    assert.deepEqual(await dryRunAll(bed, objects), []);
  });

  test('all-on values: every role, write-through, cert-manager, monitors, alerts, dashboard — all accepted (dry-run)', async () => {
    const namespace = await bed.newNamespace('chart-all-on');
    const watched = [await bed.newNamespace('chart-team-a'), await bed.newNamespace('chart-team-b')];
    const { objects } = await renderChart({
      release: 'platform',
      namespace,
      valuesFiles: [`${fixtures}values-all-on.yaml`],
      setJson: { 'controller.namespaces': watched },
    });
    const names = kinds(objects);
    for (const expected of [
      'DaemonSet/platform-smk-csi-provider',
      'Certificate/platform-smk-webhook',
      'Certificate/platform-smk-webhook-ca',
      'Issuer/platform-smk-webhook-ca',
      'Issuer/platform-smk-webhook-selfsigned',
      'ServiceMonitor/platform-smk-webhook',
      'ServiceMonitor/platform-smk-controller',
      'PodMonitor/platform-smk-csi-provider',
      'PrometheusRule/platform-smk',
      'ConfigMap/platform-smk-dashboard',
      'PodDisruptionBudget/platform-smk-controller',
    ]) {
      assert.ok(names.includes(expected), `${expected} rendered`);
    }
    // Scoped controller: Roles in the watched namespaces, no ClusterRole for syncing.
    const roles = objects.filter((o) => o.kind === 'Role' && o.metadata.name === 'platform-smk-controller');
    assert.deepEqual(roles.map((role) => role.metadata.namespace).sort(), [...watched].sort());
    assert.ok(!names.includes('ClusterRole/platform-smk-controller'));
    // cert-manager mode: no self-managed TLS rights, no empty Secret, the CA injector annotation.
    assert.ok(
      !names.includes('Role/platform-smk-webhook') && !names.includes('Secret/platform-smk-webhook-tls'),
    );
    const configuration = find(objects, 'MutatingWebhookConfiguration');
    assert.equal(
      (configuration.metadata.annotations as Record<string, string>)['cert-manager.io/inject-ca-from'],
      `${namespace}/platform-smk-webhook`,
    );
    // Every ServiceAccount carries its IRSA role from the values.
    for (const account of objects.filter((o) => o.kind === 'ServiceAccount')) {
      assert.match(
        String(
          (account.metadata.annotations as Record<string, string> | undefined)?.[
            'eks.amazonaws.com/role-arn'
          ],
        ),
        /^arn:aws:iam::123456789012:role\/smk-/,
        objectName(account),
      );
    }
    assert.deepEqual(await dryRunAll(bed, objects), []);
  });

  test('the CRDs are the files in deploy/crds, unchanged but for labels and the keep annotation', async () => {
    const { objects } = await renderChart({ release: 'smk', namespace: 'smk' });
    const rendered = objects.filter((object) => object.kind === 'CustomResourceDefinition');
    const files = (await readdir(crdDir)).filter((name) => name.endsWith('.yaml'));
    assert.equal(rendered.length, files.length, 'one CRD per file in deploy/crds');
    for (const file of files) {
      const [source] = await readYamlObjects(`${crdDir}/${file}`);
      assert.ok(source);
      const crd = find(rendered, 'CustomResourceDefinition', source.metadata.name);
      assert.deepEqual(crd.spec, source.spec, `${file}: spec`);
      const annotations = crd.metadata.annotations as Record<string, string>;
      assert.equal(annotations['helm.sh/resource-policy'], 'keep');
    }
    const without = await renderChart({
      release: 'smk',
      namespace: 'smk',
      setJson: { 'crds.install': false },
    });
    assert.equal(without.objects.filter((object) => object.kind === 'CustomResourceDefinition').length, 0);
  });

  test('nothing is generated at render time: two renders are identical, no certificate or key anywhere', async () => {
    const first = await renderChart({ release: 'smk', namespace: 'smk' });
    const second = await renderChart({ release: 'smk', namespace: 'smk' });
    assert.equal(first.text, second.text);
    assert.doesNotMatch(first.text, /-----BEGIN/);
    const configuration = find(first.objects, 'MutatingWebhookConfiguration');
    for (const webhook of configuration.webhooks as Array<{ clientConfig: Record<string, unknown> }>) {
      assert.equal(
        webhook.clientConfig.caBundle,
        undefined,
        'caBundle is patched in at run time, never rendered',
      );
    }
    const secret = find(first.objects, 'Secret', 'smk-webhook-tls');
    assert.equal(secret.data, undefined);
    assert.equal(secret.stringData, undefined);
  });

  test('pods: non-root, read-only root, no capabilities, no escalation — the CSI provider is the one documented exception', async () => {
    const { objects } = await renderChart({
      release: 'platform',
      namespace: 'smk',
      valuesFiles: [`${fixtures}values-all-on.yaml`],
    });
    const defaults = await renderChart({ release: 'smk', namespace: 'smk' });
    for (const workload of [...workloads(objects), ...workloads(defaults.objects)]) {
      const pod = podTemplate(workload);
      const csi = workload.kind === 'DaemonSet';
      for (const container of pod.spec.containers) {
        const context = container.securityContext ?? {};
        const what = `${objectName(workload)} ${container.name}`;
        assert.equal(context.allowPrivilegeEscalation, false, `${what}: allowPrivilegeEscalation`);
        assert.equal(context.readOnlyRootFilesystem, true, `${what}: readOnlyRootFilesystem`);
        assert.deepEqual(context.capabilities, { drop: ['ALL'] }, `${what}: capabilities`);
        assert.equal(context.privileged, false, `${what}: privileged`);
      }
      if (csi) {
        assert.deepEqual(pod.spec.securityContext, {
          runAsUser: 0,
          runAsGroup: 0,
          runAsNonRoot: false,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        assert.ok(pod.spec.volumes?.some((volume) => volume.hostPath));
      } else {
        assert.equal(pod.spec.securityContext?.runAsNonRoot, true, objectName(workload));
        assert.equal(pod.spec.securityContext?.runAsUser, 65532, objectName(workload));
        assert.ok(
          !pod.spec.volumes?.some((volume) => volume.hostPath),
          `${objectName(workload)}: no hostPath`,
        );
      }
    }
  });

  test('Pod Security: webhook and controller pods pass "restricted"; the CSI provider needs "privileged"', async () => {
    const { objects } = await renderChart({
      release: 'platform',
      namespace: 'smk',
      valuesFiles: [`${fixtures}values-all-on.yaml`],
    });
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    const level = async (name: string): Promise<string> => {
      const namespace = await bed.newNamespace(`chart-psa-${name}`);
      await core.patchNamespace(
        {
          name: namespace,
          body: { metadata: { labels: { 'pod-security.kubernetes.io/enforce': name } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return namespace;
    };
    const restricted = await level('restricted');
    const baseline = await level('baseline');
    const privileged = await level('privileged');
    // The pods the workloads would create (PodSecurity judges pods; the default ServiceAccount
    // stands in for the chart's, which PodSecurity does not look at).
    const create = (workload: RenderedObject, namespace: string) => {
      const template = structuredClone(podTemplate(workload)) as PodTemplate & { metadata?: object };
      return core.createNamespacedPod({
        namespace,
        dryRun: 'All',
        body: {
          metadata: { name: `${workload.metadata.name}-pod` },
          spec: { ...(template.spec as object), serviceAccountName: 'default' } as never,
        },
      });
    };
    for (const workload of workloads(objects)) {
      if (workload.kind === 'DaemonSet') {
        for (const namespace of [restricted, baseline]) {
          await assert.rejects(create(workload, namespace), /violates PodSecurity/, objectName(workload));
        }
        await create(workload, privileged);
      } else {
        await create(workload, restricted);
      }
    }
  });

  test('webhook: 2 replicas spread across zones and nodes, a PDB, and probes on the HTTPS port', async () => {
    const { objects } = await renderChart({ release: 'smk', namespace: 'smk' });
    const deployment = find(objects, 'Deployment', 'smk-webhook');
    const spec = deployment.spec as {
      replicas: number;
      strategy: { rollingUpdate: { maxUnavailable: number } };
      template: {
        spec: {
          topologySpreadConstraints: Array<{ topologyKey: string }>;
          containers: Array<Record<string, { httpGet?: { scheme: string } }>>;
        };
      };
    };
    assert.equal(spec.replicas, 2);
    assert.equal(spec.strategy.rollingUpdate.maxUnavailable, 0);
    assert.deepEqual(
      spec.template.spec.topologySpreadConstraints.map((constraint) => constraint.topologyKey),
      ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'],
    );
    const [container] = spec.template.spec.containers;
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      assert.equal(container?.[probe]?.httpGet?.scheme, 'HTTPS', probe);
    }
    const budget = find(objects, 'PodDisruptionBudget', 'smk-webhook');
    assert.equal((budget.spec as { minAvailable: number }).minAvailable, 1);
  });

  test('webhook configuration: Fail, only pods that asked (matchConditions), system and own namespaces out, no caBundle', async () => {
    const { objects } = await renderChart({ release: 'smk', namespace: 'smk-system' });
    const configuration = find(objects, 'MutatingWebhookConfiguration', 'smk-webhook');
    const webhooks = configuration.webhooks as Array<Record<string, unknown>>;
    assert.equal(webhooks.length, 1, 'write-through is off by default');
    const [pods] = webhooks;
    assert.deepEqual(
      {
        name: pods?.name,
        failurePolicy: pods?.failurePolicy,
        sideEffects: pods?.sideEffects,
        reinvocationPolicy: pods?.reinvocationPolicy,
        timeoutSeconds: pods?.timeoutSeconds,
        clientConfig: pods?.clientConfig,
      },
      {
        name: 'inject.smk.dev',
        failurePolicy: 'Fail',
        sideEffects: 'None',
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 5,
        clientConfig: {
          service: { namespace: 'smk-system', name: 'smk-webhook', path: '/mutate/pods', port: 443 },
        },
      },
    );
    assert.deepEqual(pods?.namespaceSelector, {
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-system', 'kube-node-lease', 'kube-public', 'smk-system'],
        },
        { key: 'smk.dev/injection', operator: 'NotIn', values: ['disabled'] },
      ],
    });
    const [condition] = (pods?.matchConditions ?? []) as Array<{ expression: string }>;
    assert.match(condition?.expression ?? '', /'smk\.dev\/inject' in object\.metadata\.annotations/);
    assert.match(condition?.expression ?? '', /'secrets\.k8s\.aws\/sidecarInjectorWebhook' in/);

    const allOn = await renderChart({
      release: 'smk',
      namespace: 'smk-system',
      valuesFiles: [`${fixtures}values-all-on.yaml`],
    });
    const writeThrough = (
      find(allOn.objects, 'MutatingWebhookConfiguration').webhooks as Array<Record<string, unknown>>
    )[1];
    assert.equal(writeThrough?.name, 'write-through.smk.dev');
    assert.deepEqual(writeThrough?.objectSelector, { matchLabels: { 'smk.dev/write-through': 'true' } });
    assert.equal(
      writeThrough?.sideEffects,
      'None',
      'the webhook writes nothing: it seals for the controller',
    );
    assert.equal(writeThrough?.failurePolicy, 'Fail');
  });

  test('jmesPathExpressions: off by default; true gives every role that reads specs the same flag', async () => {
    const roles = (objects: readonly RenderedObject[]): Record<string, boolean> =>
      Object.fromEntries(
        workloads(objects).map((object) => [
          `${object.kind}/${object.metadata.name}`,
          (podTemplate(object).spec.containers[0]?.args ?? []).includes('--allow-jmespath-expressions'),
        ]),
      );
    const setJson = { 'csiProvider.enabled': true };
    const off = await renderChart({ release: 'smk', namespace: 'smk', setJson });
    assert.deepEqual(roles(off.objects), {
      'DaemonSet/smk-csi-provider': false,
      'Deployment/smk-controller': false,
      'Deployment/smk-webhook': false,
    });
    const on = await renderChart({
      release: 'smk',
      namespace: 'smk',
      setJson: { ...setJson, jmesPathExpressions: true },
    });
    assert.deepEqual(roles(on.objects), {
      'DaemonSet/smk-csi-provider': true,
      'Deployment/smk-controller': true,
      'Deployment/smk-webhook': true,
    });
    await assert.rejects(
      renderChart({ release: 'smk', namespace: 'smk', setJson: { jmesPathExpressions: 'yes' } }),
      /jmesPathExpressions/,
    );
  });

  test("rotation's RBAC grants every rollout kind the verbs its row needs (kinds.ts), and none without rotation", async () => {
    type Rule = { apiGroups?: string[]; resources?: string[]; verbs?: string[] };
    const rulesOf = (objects: readonly RenderedObject[]): Rule[] =>
      (find(objects, 'ClusterRole', 'smk-controller') as unknown as { rules: Rule[] }).rules ?? [];
    const grants = (rules: readonly Rule[], group: string, resource: string, verb: string): boolean =>
      rules.some(
        (rule) =>
          (rule.apiGroups ?? []).includes(group) &&
          (rule.resources ?? []).includes(resource) &&
          (rule.verbs ?? []).includes(verb),
      );
    const on = rulesOf((await renderChart({ release: 'smk', namespace: 'smk' })).objects);
    const off = rulesOf(
      (
        await renderChart({
          release: 'smk',
          namespace: 'smk',
          setJson: { 'controller.rotation.enabled': false },
        })
      ).objects,
    );
    for (const kind of rolloutKindNames) {
      const row = rolloutKinds[kind];
      for (const verb of row.verbs) {
        assert.ok(grants(on, row.group, row.resource, verb), `${kind}: ${verb} ${row.resource}.${row.group}`);
        assert.ok(!grants(off, row.group, row.resource, 'patch'), `${kind}: no patch without rotation`);
      }
    }
    assert.ok(grants(on, '', 'configmaps', 'watch') && !grants(on, '', 'configmaps', 'patch'));
  });

  test('helm lint --strict passes for the default, all-on, escape-hatch and OpenShift values', async () => {
    const binary = await helm();
    for (const values of [
      [],
      ['--values', `${fixtures}values-all-on.yaml`],
      ['--values', `${fixtures}values-escape-hatches.yaml`],
      ['--values', `${fixtures}values-openshift.yaml`],
    ]) {
      const { stdout } = await run(binary, ['lint', '--strict', chartDir, ...values]);
      assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test('invalid values and combinations fail the render with a message', async () => {
    await assert.rejects(
      renderChart({ release: 'smk', namespace: 'smk', setJson: { 'webhook.tls.mode': 'openssl' } }),
      /at '\/webhook\/tls\/mode': value must be one of 'self', 'cert-manager'/,
    );
    await assert.rejects(
      renderChart({
        release: 'smk',
        namespace: 'smk',
        setJson: { 'controller.leaderElection.enabled': false },
      }),
      /controller\.replicas > 1 needs controller\.leaderElection\.enabled/,
    );
    // values.schema.json: a typo is an error, not a silently ignored key.
    await assert.rejects(
      renderChart({ release: 'smk', namespace: 'smk', setJson: { 'webhook.replica': 3 } }),
      /at '\/webhook': additional properties 'replica' not allowed/,
    );
    await assert.rejects(
      renderChart({
        release: 'smk',
        namespace: 'smk',
        setJson: { 'controller.serviceAccount.roleArn': 'my-role' },
      }),
      /at '\/controller\/serviceAccount\/roleArn'/,
    );
  });
});

interface Container {
  name: string;
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  ports?: Array<{ name: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  securityContext?: Record<string, unknown>;
  [probe: string]: unknown;
}

interface FullPodSpec {
  containers: Container[];
  volumes?: Array<{ name: string }>;
  securityContext?: Record<string, unknown>;
  priorityClassName?: string;
  topologySpreadConstraints?: Array<{ topologyKey: string; whenUnsatisfiable: string }>;
  hostNetwork?: boolean;
  dnsPolicy?: string;
  tolerations?: unknown[];
  affinity?: Record<string, unknown>;
}

function podSpec(object: RenderedObject): FullPodSpec {
  return (object.spec as { template: { spec: FullPodSpec } }).template.spec;
}

describe('Helm chart deploy/helm/smk: escape hatches and scheduling (issue 18)', () => {
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

  test('every role takes extraArgs, extraEnv, extraVolumes, extraVolumeMounts after its own; priority and spread per Deployment; all accepted (dry-run)', async () => {
    const namespace = await bed.newNamespace('chart-extras');
    const { objects } = await renderChart({
      release: 'smk',
      namespace,
      valuesFiles: [`${fixtures}values-escape-hatches.yaml`],
    });
    const expectedArg: Record<string, string> = {
      'Deployment/smk-webhook': '--shutdown-delay=7',
      'Deployment/smk-controller': '--concurrency=8',
      'DaemonSet/smk-csi-provider': '--authorization-window=10m',
    };
    assert.deepEqual(
      Object.keys(expectedArg).sort(),
      workloads(objects)
        .map((o) => `${o.kind}/${o.metadata.name}`)
        .sort(),
    );
    for (const workload of workloads(objects)) {
      const what = `${workload.kind}/${workload.metadata.name}`;
      const spec = podSpec(workload);
      const [container] = spec.containers;
      assert.ok(container);
      // Appended last: a repeated flag given here wins over the chart's (the CLI keeps the last).
      assert.equal(container.args?.at(-1), expectedArg[what], `${what}: extraArgs last`);
      assert.equal(container.env?.at(-1)?.name, 'HTTPS_PROXY', `${what}: extraEnv last`);
      assert.deepEqual(container.volumeMounts?.at(-1), {
        name: 'trust',
        mountPath: '/etc/smk/trust',
        readOnly: true,
      });
      assert.deepEqual(spec.volumes?.at(-1), { name: 'trust', configMap: { name: 'corporate-ca' } });
      assert.ok(
        spec.volumes?.some((volume) => volume.name === 'tmp'),
        `${what}: the chart's volumes stay`,
      );
      if (workload.kind === 'Deployment') {
        assert.equal(spec.priorityClassName, 'system-cluster-critical', what);
        assert.deepEqual(
          spec.topologySpreadConstraints?.map((c) => [c.topologyKey, c.whenUnsatisfiable]),
          [['topology.kubernetes.io/zone', 'DoNotSchedule']],
          `${what}: the given spread replaces the default`,
        );
      }
    }
    // Default spread of the controller (a leader and its standby on different nodes).
    const defaults = await renderChart({ release: 'smk', namespace });
    assert.deepEqual(
      podSpec(find(defaults.objects, 'Deployment', 'smk-controller')).topologySpreadConstraints?.map(
        (c) => c.topologyKey,
      ),
      ['kubernetes.io/hostname'],
    );
    assert.deepEqual(await dryRunAll(bed, objects), []);
    await assert.rejects(
      renderChart({
        release: 'smk',
        namespace,
        setJson: { 'controller.extraVolumeMounts': [{ name: 'trust' }] },
      }),
      /controller\/extraVolumeMounts\/0.*mountPath/,
    );
    await assert.rejects(
      renderChart({ release: 'smk', namespace, setJson: { 'webhook.extraArgs': '--port=1' } }),
      /at '\/webhook\/extraArgs'/,
    );
  });

  test('OpenShift restricted-v2: null removes runAsUser/runAsGroup/fsGroup; the pods still pass Pod Security "restricted"', async () => {
    const namespace = await bed.newNamespace('chart-openshift');
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    await core.patchNamespace(
      {
        name: namespace,
        body: { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const { objects } = await renderChart({
      release: 'smk',
      namespace,
      valuesFiles: [`${fixtures}values-openshift.yaml`],
    });
    const deployments = objects.filter((object) => object.kind === 'Deployment');
    assert.equal(deployments.length, 2);
    for (const deployment of deployments) {
      const spec = podSpec(deployment);
      const contexts = [spec.securityContext ?? {}, ...spec.containers.map((c) => c.securityContext ?? {})];
      for (const context of contexts) {
        for (const fixed of ['runAsUser', 'runAsGroup', 'fsGroup']) {
          assert.ok(!(fixed in context), `${objectName(deployment)}: no ${fixed} (the SCC assigns it)`);
        }
      }
      assert.equal(spec.securityContext?.runAsNonRoot, true);
      assert.deepEqual(spec.securityContext?.seccompProfile, { type: 'RuntimeDefault' });
      await core.createNamespacedPod({
        namespace,
        dryRun: 'All',
        body: {
          metadata: { name: `${deployment.metadata.name}-pod` },
          spec: { ...(spec as object), serviceAccountName: 'default' } as never,
        },
      });
    }
    assert.deepEqual(await dryRunAll(bed, objects), []);
  });

  test('webhook hostNetwork: the port is the container port, and the Service, probes and NetworkPolicy follow it; DNS for the host network', async () => {
    const namespace = await bed.newNamespace('chart-hostnet');
    const { objects } = await renderChart({
      release: 'smk',
      namespace,
      setJson: {
        'webhook.hostNetwork': true,
        'webhook.port': 9443,
        'networkPolicy.enabled': true,
        'networkPolicy.webhook.apiServer': [{ ipBlock: { cidr: '10.0.0.0/24' } }],
      },
    });
    const deployment = find(objects, 'Deployment', 'smk-webhook');
    const spec = podSpec(deployment);
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet');
    const [container] = spec.containers;
    assert.ok(container);
    assert.ok(container.args?.includes('--port=9443'));
    assert.deepEqual(container.ports, [{ name: 'https', containerPort: 9443, protocol: 'TCP' }]);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      assert.equal((container[probe] as { httpGet: { port: string } }).httpGet.port, 'https', probe);
    }
    const service = find(objects, 'Service', 'smk-webhook');
    assert.deepEqual((service.spec as { ports: unknown[] }).ports, [
      { name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' },
    ]);
    const policy = find(objects, 'NetworkPolicy', 'smk-webhook');
    assert.deepEqual((policy.spec as { ingress: Array<{ ports: unknown[] }> }).ingress[0]?.ports, [
      { protocol: 'TCP', port: 9443 },
    ]);
    assert.deepEqual(await dryRunAll(bed, objects), []);
    // Pod Security: the host network needs the "privileged" level (as values.yaml says).
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    const pod = (level: string) =>
      core.createNamespacedPod({
        namespace: level === 'privileged' ? namespace : baseline,
        dryRun: 'All',
        body: {
          metadata: { name: `webhook-${level}` },
          spec: { ...(spec as object), serviceAccountName: 'default' } as never,
        },
      });
    const baseline = await bed.newNamespace('chart-hostnet-baseline');
    await core.patchNamespace(
      {
        name: baseline,
        body: { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await assert.rejects(
      pod('baseline'),
      /violates PodSecurity .*baseline:latest.*host namespaces \(hostNetwork=true\)/,
    );
    await pod('privileged');
    // dnsPolicy given wins; without hostNetwork none is rendered (Kubernetes' default).
    const given = await renderChart({
      release: 'smk',
      namespace,
      setJson: { 'webhook.hostNetwork': true, 'webhook.dnsPolicy': 'Default' },
    });
    assert.equal(podSpec(find(given.objects, 'Deployment', 'smk-webhook')).dnsPolicy, 'Default');
    const defaults = await renderChart({ release: 'smk', namespace });
    const defaultSpec = podSpec(find(defaults.objects, 'Deployment', 'smk-webhook'));
    assert.equal(defaultSpec.hostNetwork, undefined);
    assert.equal(defaultSpec.dnsPolicy, undefined);
  });

  test('CSI provider: kept off EKS Fargate nodes by default, tolerations still configurable', async () => {
    const namespace = await bed.newNamespace('chart-csi-fargate');
    const fargateExcluded = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'eks.amazonaws.com/compute-type', operator: 'NotIn', values: ['fargate'] },
              ],
            },
          ],
        },
      },
    };
    const { objects } = await renderChart({
      release: 'smk',
      namespace,
      setJson: { 'csiProvider.enabled': true },
    });
    const daemonSet = find(objects, 'DaemonSet', 'smk-csi-provider');
    assert.deepEqual(podSpec(daemonSet).affinity, fargateExcluded);
    assert.deepEqual(podSpec(daemonSet).tolerations, [{ operator: 'Exists' }]);
    assert.deepEqual(await dryRunAll(bed, [daemonSet]), []);
    const tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'secrets', effect: 'NoSchedule' }];
    const custom = await renderChart({
      release: 'smk',
      namespace,
      setJson: { 'csiProvider.enabled': true, 'csiProvider.tolerations': tolerations },
    });
    const customSpec = podSpec(find(custom.objects, 'DaemonSet', 'smk-csi-provider'));
    assert.deepEqual(customSpec.tolerations, tolerations);
    assert.deepEqual(customSpec.affinity, fargateExcluded, 'the Fargate rule stays with other tolerations');
    // Helm merges a given affinity into the default; null removes the rule.
    const preferred = [{ weight: 1, preference: { matchExpressions: [{ key: 'ssd', operator: 'Exists' }] } }];
    const merged = await renderChart({
      release: 'smk',
      namespace,
      setJson: {
        'csiProvider.enabled': true,
        'csiProvider.affinity': {
          nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: preferred },
        },
      },
    });
    assert.deepEqual(podSpec(find(merged.objects, 'DaemonSet', 'smk-csi-provider')).affinity, {
      nodeAffinity: {
        ...fargateExcluded.nodeAffinity,
        preferredDuringSchedulingIgnoredDuringExecution: preferred,
      },
    });
    const removed = await renderChart({
      release: 'smk',
      namespace,
      setJson: { 'csiProvider.enabled': true, 'csiProvider.affinity': { nodeAffinity: null } },
    });
    assert.equal(podSpec(find(removed.objects, 'DaemonSet', 'smk-csi-provider')).affinity, undefined);
  });

  test('PodDisruptionBudget: one replica gets maxUnavailable 1 (drains finish) and NOTES says so; minAvailable >= replicas > 1 fails', async () => {
    const namespace = await bed.newNamespace('chart-pdb');
    const setJson = {
      'webhook.replicas': 1,
      'controller.replicas': 1,
      'controller.podDisruptionBudget.enabled': true,
    };
    const { objects } = await renderChart({ release: 'smk', namespace, setJson });
    for (const name of ['smk-webhook', 'smk-controller']) {
      assert.deepEqual(
        (find(objects, 'PodDisruptionBudget', name).spec as Record<string, unknown>).maxUnavailable,
        1,
        name,
      );
      assert.equal(
        (find(objects, 'PodDisruptionBudget', name).spec as Record<string, unknown>).minAvailable,
        undefined,
        name,
      );
    }
    assert.deepEqual(await dryRunAll(bed, objects), []);
    const notes = async (values: Record<string, unknown>): Promise<string> => {
      const args = ['install', 'smk', chartDir, '--dry-run=client', '--namespace', namespace];
      for (const [key, value] of Object.entries(values))
        args.push('--set-json', `${key}=${JSON.stringify(value)}`);
      const { stdout } = await run(await helm(), args, { maxBuffer: 64 * 1024 * 1024 });
      return stdout.slice(stdout.indexOf('NOTES:'));
    };
    const relaxed = await notes(setJson);
    assert.match(relaxed, /Injector webhook[\s\S]*One replica: its PodDisruptionBudget is maxUnavailable 1/);
    assert.match(relaxed, /Sync controller[\s\S]*One replica: its PodDisruptionBudget is maxUnavailable 1/);
    assert.doesNotMatch(await notes({}), /One replica/);
    // Two replicas keep minAvailable 1.
    const two = await renderChart({ release: 'smk', namespace });
    assert.equal(
      (find(two.objects, 'PodDisruptionBudget', 'smk-webhook').spec as Record<string, unknown>).minAvailable,
      1,
    );
    await assert.rejects(
      renderChart({ release: 'smk', namespace, setJson: { 'webhook.podDisruptionBudget.minAvailable': 2 } }),
      /webhook\.podDisruptionBudget\.minAvailable 2 with webhook\.replicas 2 blocks every node drain/,
    );
  });
});

interface RegisteredMetric {
  readonly type: string;
  readonly labels: readonly string[];
}

/**
 * Every metric the code registers, with its type and label names, read from the registry itself:
 * each src module that registers an smk_ metric is imported (registration happens at import), and
 * the process metrics are turned on as the roles do. Dashboards and alerts are checked against this.
 */
async function registeredMetrics(): Promise<Map<string, RegisteredMetric>> {
  const src = new URL('../../src/', import.meta.url).pathname;
  const files = (await readdir(src, { recursive: true })).filter(
    (file) => file.endsWith('.ts') && !file.endsWith('.test.ts'),
  );
  for (const file of files) {
    const text = await readFile(`${src}${file}`, 'utf8');
    if (/\b(counter|gauge|histogram)\(\s*'smk_/.test(text)) await import(`${src}${file}`);
  }
  const { registry, collectProcessMetrics } = await import('../../src/core/metrics.ts');
  collectProcessMetrics();
  const known = new Map<string, RegisteredMetric>();
  for (const metric of await registry.getMetricsAsJSON()) {
    // prom-client keeps a metric's label names on the instance (not in its typings).
    const labels = (registry.getSingleMetric(metric.name) as unknown as { labelNames?: unknown }).labelNames;
    assert.ok(Array.isArray(labels), `${metric.name}: label names readable`);
    known.set(metric.name, { type: String(metric.type), labels: labels.map(String) });
  }
  return known;
}

/** The metric names a PromQL expression reads, with a histogram's _bucket/_sum/_count series mapped to it. */
function metricNames(expr: string, known: ReadonlyMap<string, RegisteredMetric>): string[] {
  return [...expr.matchAll(/\bsmk_[a-z0-9_]+/g)].map(([name]) => {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return base !== name && known.get(base)?.type === 'histogram' ? base : name;
  });
}

/**
 * Labels every scraped series has besides its own: Prometheus Operator's target labels, and le; a
 * series' own `namespace` (smk_status_condition's object) arrives as exported_namespace.
 */
const targetLabels = [
  'namespace',
  'exported_namespace',
  'pod',
  'service',
  'job',
  'instance',
  'container',
  'endpoint',
  'le',
];

/** Each metric's row of docs/metrics.md, whose backticked words are its label values. */
async function documentedRows(): Promise<Map<string, string>> {
  const page = await readFile(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  return new Map(
    [...page.matchAll(/^\| `(smk_[a-z0-9_]+)` \|(.*)$/gm)].map(([, name, row]) => [name ?? '', row ?? '']),
  );
}

/**
 * Every `outcome`, `reason`, `condition` and `status` value an expression matches is one docs/metrics.md
 * lists for one of the metrics it reads: a renamed value cannot leave an alert that never fires.
 */
function assertDocumentedValues(
  what: string,
  expr: string,
  names: string[],
  rows: ReadonlyMap<string, string>,
): void {
  for (const [, label, values] of expr.matchAll(
    /\b(outcome|reason|condition|status)\s*(?:=~|!~|!=|=)\s*"([^"]*)"/g,
  )) {
    for (const value of (values ?? '').split('|')) {
      assert.ok(
        names.some((name) => rows.get(name)?.includes(`\`${value}\``)),
        `${what}: ${label}="${value}" is listed for ${names.join(', ')} in docs/metrics.md`,
      );
    }
  }
}

/**
 * Checks one expression: every smk_ metric it reads is registered by src, and every label it
 * matches on or aggregates by is one of those metrics' labels or a target label.
 */
function assertRealMetrics(
  what: string,
  expr: string,
  known: ReadonlyMap<string, RegisteredMetric>,
): string[] {
  const names = metricNames(expr, known);
  assert.ok(names.length > 0, `${what}: reads an smk metric`);
  for (const name of names) assert.ok(known.has(name), `${what}: ${name} is registered by src`);
  const labels = new Set([...targetLabels, ...names.flatMap((name) => known.get(name)?.labels ?? [])]);
  const used = [
    ...[...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap(([, list]) => (list ?? '').split(',')),
    ...[...expr.matchAll(/[{,]\s*([a-z_]+)\s*(?:=~|!~|!=|=)/g)].map(([, label]) => label ?? ''),
  ].map((label) => label.trim());
  for (const label of used)
    assert.ok(labels.has(label), `${what}: label ${label} exists on ${names.join(', ')}`);
  return names;
}

describe('Helm chart deploy/helm/smk: monitoring (issue 18)', () => {
  test('ServiceMonitors: namespace, interval, scrapeTimeout, relabelings and metricRelabelings on every endpoint', async () => {
    const relabelings = [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }];
    const metricRelabelings = [{ sourceLabels: ['__name__'], regex: 'smk_nodejs_gc_.*', action: 'drop' }];
    const setJson = {
      'serviceMonitor.enabled': true,
      'serviceMonitor.namespace': 'monitoring',
      'serviceMonitor.interval': '15s',
      'serviceMonitor.scrapeTimeout': '5s',
      'serviceMonitor.relabelings': relabelings,
      'serviceMonitor.metricRelabelings': metricRelabelings,
      'csiProvider.enabled': true,
    };
    // Another namespace: the webhook's CA must be a Secret there (Prometheus Operator reads tlsConfig
    // Secrets from the monitor's namespace only), so the render asks for it rather than break TLS.
    await assert.rejects(
      renderChart({ release: 'smk', namespace: 'smk-system', setJson }),
      /serviceMonitor\.namespace monitoring: .*serviceMonitor\.webhookCaSecret/,
    );
    const { objects } = await renderChart({
      release: 'smk',
      namespace: 'smk-system',
      setJson: { ...setJson, 'serviceMonitor.webhookCaSecret': 'smk-webhook-ca' },
    });
    const monitors = objects.filter((o) => ['ServiceMonitor', 'PodMonitor'].includes(o.kind));
    assert.deepEqual(kinds(monitors), [
      'PodMonitor/smk-csi-provider',
      'ServiceMonitor/smk-controller',
      'ServiceMonitor/smk-webhook',
    ]);
    for (const monitor of monitors) {
      const spec = monitor.spec as Record<string, unknown>;
      assert.equal(monitor.metadata.namespace, 'monitoring', objectName(monitor));
      assert.deepEqual(spec.namespaceSelector, { matchNames: ['smk-system'] }, objectName(monitor));
      const endpoints = (spec.endpoints ?? spec.podMetricsEndpoints) as Array<Record<string, unknown>>;
      assert.equal(endpoints.length, 1);
      const [endpoint] = endpoints;
      assert.equal(endpoint?.interval, '15s');
      assert.equal(endpoint?.scrapeTimeout, '5s');
      assert.deepEqual(endpoint?.relabelings, relabelings);
      assert.deepEqual(endpoint?.metricRelabelings, metricRelabelings);
    }
    const webhook = find(monitors, 'ServiceMonitor', 'smk-webhook');
    assert.deepEqual((webhook.spec as { endpoints: Array<{ tlsConfig: unknown }> }).endpoints[0]?.tlsConfig, {
      serverName: 'smk-webhook.smk-system.svc',
      ca: { secret: { name: 'smk-webhook-ca', key: 'ca.crt' } },
    });
    // Default: the release's namespace, no selector across namespaces, no timeout or relabelings.
    const defaults = await renderChart({
      release: 'smk',
      namespace: 'smk-system',
      setJson: { 'serviceMonitor.enabled': true },
    });
    const controller = find(defaults.objects, 'ServiceMonitor', 'smk-controller');
    assert.equal(controller.metadata.namespace, 'smk-system');
    assert.deepEqual(controller.spec, {
      selector: {
        matchLabels: {
          'app.kubernetes.io/name': 'smk',
          'app.kubernetes.io/instance': 'smk',
          'app.kubernetes.io/component': 'controller',
        },
      },
      endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }],
    });
  });

  test('PrometheusRule: opt-in, alerts only on metrics the code registers, scoped to the release namespace', async () => {
    const known = await registeredMetrics();
    const rows = await documentedRows();
    assert.ok(known.size > 20, `the registry holds smk's metrics (${known.size})`);
    const off = await renderChart({ release: 'smk', namespace: 'smk-system' });
    assert.ok(!off.objects.some((o) => o.kind === 'PrometheusRule' || o.kind === 'ConfigMap'));
    const { objects } = await renderChart({
      release: 'smk',
      namespace: 'smk-system',
      setJson: {
        'prometheusRule.enabled': true,
        'prometheusRule.extraRules': [{ alert: 'Mine', expr: 'vector(1)' }],
        'csiProvider.enabled': true,
        'webhook.writeThrough.enabled': true,
      },
    });
    const rule = find(objects, 'PrometheusRule', 'smk');
    const groups = (rule.spec as { groups: Array<{ name: string; rules: Array<Record<string, unknown>> }> })
      .groups;
    assert.equal(groups.length, 1);
    const rules = groups[0]?.rules ?? [];
    assert.deepEqual(
      rules.map((r) => r.alert),
      [
        'SmkWebhookCertificateExpiring',
        'SmkWebhookTlsCheckFailing',
        'SmkWebhookOverloaded',
        'SmkObjectNotReady',
        'SmkSyncFailing',
        'SmkSyncQueueNotDraining',
        'SmkInformerRestarting',
        'SmkEventsDropped',
        'SmkRotationPollsFailing',
        'SmkRotationRolloutsFailing',
        'SmkWriteThroughFailing',
        'SmkAwsThrottled',
        'SmkCsiMountsFailing',
        'Mine',
      ],
    );
    for (const alert of rules.slice(0, -1)) {
      const what = String(alert.alert);
      const expr = String(alert.expr);
      assertDocumentedValues(what, expr, assertRealMetrics(what, expr, known), rows);
      // Every selector names this release's namespace, so two installs do not alert for each other.
      for (const selector of expr.matchAll(/\bsmk_[a-z0-9_]+\{([^}]*)\}/g)) {
        assert.match(selector[1] ?? '', /^namespace="smk-system"/, `${what}: ${selector[0]}`);
      }
      assert.ok(!/\bsmk_[a-z0-9_]+(\[|\)|\s|$)/.test(expr), `${what}: no unscoped selector`);
      assert.match(String((alert.labels as Record<string, string>).severity), /^(critical|warning|info)$/);
      assert.ok((alert.annotations as Record<string, string>).summary, `${what}: summary`);
      if (alert.for !== undefined) assert.match(String(alert.for), /^[0-9]+[smh]$/, what);
      // Balanced brackets: a cheap guard against a template typo (no promtool here).
      for (const [open, close] of ['()', '{}', '[]']) {
        assert.equal(
          expr.split(open ?? '').length,
          expr.split(close ?? '').length,
          `${what}: ${open}${close}`,
        );
      }
    }
    // cert-manager mode: no self-TLS metrics, so no alerts on them.
    const certManager = await renderChart({
      release: 'smk',
      namespace: 'smk-system',
      setJson: { 'prometheusRule.enabled': true, 'webhook.tls.mode': 'cert-manager' },
    });
    const names = (
      find(certManager.objects, 'PrometheusRule').spec as {
        groups: Array<{ rules: Array<{ alert: string }> }>;
      }
    ).groups[0]?.rules.map((r) => r.alert);
    assert.ok(!names?.includes('SmkWebhookCertificateExpiring'));
  });

  test('Grafana dashboard: opt-in ConfigMap with the sidecar label; every panel query reads metrics the code registers', async () => {
    const known = await registeredMetrics();
    const rows = await documentedRows();
    const { objects } = await renderChart({
      release: 'smk',
      namespace: 'smk-system',
      setJson: {
        'grafanaDashboard.enabled': true,
        'grafanaDashboard.annotations': { grafana_folder: 'smk' },
      },
    });
    const configMap = find(objects, 'ConfigMap', 'smk-dashboard');
    assert.equal((configMap.metadata.labels as Record<string, string>).grafana_dashboard, '1');
    assert.deepEqual(configMap.metadata.annotations, { grafana_folder: 'smk' });
    const dashboard = JSON.parse((configMap.data as Record<string, string>)['smk.json'] ?? '') as {
      uid: string;
      panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
    };
    assert.equal(dashboard.uid, 'smk-overview');
    const queried = new Set<string>();
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      assert.ok(panel.targets && panel.targets.length > 0, `${panel.title}: has queries`);
      for (const { expr } of panel.targets) {
        const names = assertRealMetrics(panel.title, expr, known);
        assertDocumentedValues(panel.title, expr, names, rows);
        for (const name of names) queried.add(name);
      }
    }
    // The headline series of each role are on it.
    for (const name of [
      'smk_webhook_admission_requests_total',
      'smk_sync_reconciles_total',
      'smk_rotation_rollouts_total',
      'smk_csi_mounts_total',
      'smk_aws_calls_total',
      'smk_status_condition',
    ]) {
      assert.ok(queried.has(name), name);
    }
  });
});
