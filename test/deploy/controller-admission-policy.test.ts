/**
 * Finding 7 of issue 14: the controller's ServiceAccount may create TokenRequests and write Secrets
 * and workloads in every namespace (RBAC cannot narrow them further), and a compromised controller
 * used that to mint a token for kube-system/generic-garbage-collector. The chart's
 * ValidatingAdmissionPolicies are applied here for real, with the rendered ServiceAccount and RBAC,
 * and every request is made as that ServiceAccount: the API server itself refuses what the
 * controller's job does not need, and what smk's code asks for still passes — a SecretSync in a
 * tenant namespace syncs through smk's own identity code, as the rendered account.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  AuthenticationV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
} from '@kubernetes/client-node';
import { createServiceAccounts, podIdentityAudience, stsAudience } from '../../src/kube/service-accounts.ts';
import {
  createAwsSecret,
  createServiceAccount,
  installCrds,
  type RunningController,
  readSecret,
  ready,
  secretSyncApi,
  secretsManager,
  startController,
  waitFor,
} from '../controller/harness.ts';
import { installCrds as installCrdFiles } from '../harness/crds.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { kubeConfigFromText, renderKubeConfig } from '../testbed/kubeconfig.ts';
import {
  controllerAccess,
  helm,
  objectName,
  type RenderedObject,
  renderChart,
  serverSideApply,
} from './helm.ts';

/** The API server's answer to a request that must be refused: its HTTP status and message. */
async function refusal(what: string, request: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await request;
  } catch (error) {
    if (error instanceof ApiException) {
      const body = typeof error.body === 'string' ? error.body : JSON.stringify(error.body);
      let message = body;
      try {
        message = (JSON.parse(body) as { message?: string }).message ?? body;
      } catch {
        // Not a Status object: the raw body says what happened.
      }
      return { code: error.code, message };
    }
    throw error;
  }
  assert.fail(`${what} was allowed`);
}

interface Installed {
  readonly account: string;
  /** A client authenticating as the rendered controller ServiceAccount. */
  readonly asController: KubeConfig;
}

describe("the chart's admission policies on the controller's ServiceAccount (issue 14, finding 7)", () => {
  let bed: TestBed;
  let namespace: string;
  let tenant: string;
  const release = `pol-${Math.random().toString(36).slice(2, 8)}`;
  const policyName = `${release}-smk-controller`;
  const clusterScoped: RenderedObject[] = [];
  let controller: Installed;
  const running: RunningController[] = [];

  /** Applies the controller's ServiceAccount, RBAC and policies of a render for real, as helm would. */
  async function install(objects: readonly RenderedObject[], into: string): Promise<Installed> {
    const access = controllerAccess(objects);
    for (const object of access) {
      await serverSideApply(bed.kubeConfig, object, { dryRun: false, fieldManager: 'helm' }).catch(
        (error: unknown) => {
          throw new Error(
            `${objectName(object)}: ${error instanceof ApiException ? String(error.body) : String(error)}`,
          );
        },
      );
      if (!object.metadata.namespace) clusterScoped.push(object);
    }
    const account = access.find((object) => object.kind === 'ServiceAccount')?.metadata.name;
    assert.ok(account, 'the chart renders a controller ServiceAccount');
    const asController = await bed.kubeConfigForServiceAccount(into, account);
    // Policies take effect once the API server's admission plugin has loaded them: wait until a
    // request only they refuse (a dry-run Secret in kube-system) is refused. An old chart renders
    // none, and the tests below then show what the controller could do without them.
    if (access.some((object) => object.kind === 'ValidatingAdmissionPolicyBinding')) {
      const core = asController.makeApiClient(CoreV1Api);
      await waitFor('the admission policies to take effect', 30_000, async () => {
        const answer = await core
          .createNamespacedSecret({
            namespace: 'kube-system',
            body: { metadata: { name: `${release}-probe` }, type: 'Opaque' },
            dryRun: 'All',
          })
          .then(
            () => undefined,
            (error: unknown) => (error instanceof ApiException ? error.code : undefined),
          );
        return answer === 403;
      });
    }
    return { account, asController };
  }

  before(
    async () => {
      await helm();
      bed = await connectTestBed();
      await installCrds(bed.kubeConfig);
      namespace = await bed.newNamespace('chart-policy');
      tenant = await bed.newNamespace('policy-tenant');
      await createServiceAccount(bed.kubeConfig, tenant, 'app', 'policy-tenant');
      const { objects } = await renderChart({ release, namespace, setJson: { 'webhook.enabled': false } });
      controller = await install(objects, namespace);
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    for (const controllerRun of running) await controllerRun.stop();
    const client = bed ? KubernetesObjectApi.makeApiClient(bed.kubeConfig) : undefined;
    for (const object of clusterScoped) await client?.delete(object).catch(() => undefined);
    await bed?.stop();
  });

  test("the policies type-check against the API server's schemas: no expression warnings", async () => {
    const admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const policies = clusterScoped.filter((object) => object.kind === 'ValidatingAdmissionPolicy');
    assert.equal(policies.length, 5, 'token requests, Secrets, rollouts, CronJob and Argo rollouts');
    for (const { metadata } of policies) {
      const checked = await waitFor(
        `ValidatingAdmissionPolicy ${metadata.name} type-checked`,
        30_000,
        async () => {
          const policy = await admission.readValidatingAdmissionPolicy({ name: metadata.name });
          return policy.status?.observedGeneration === policy.metadata?.generation ? policy : undefined;
        },
      );
      assert.deepEqual(checked.status?.typeChecking?.expressionWarnings ?? [], [], metadata.name);
    }
  });

  test('a token for kube-system/generic-garbage-collector is refused, with any audience', async () => {
    const core = controller.asController.makeApiClient(CoreV1Api);
    const ref = { namespace: 'kube-system', name: 'generic-garbage-collector' };
    // The API server's own audience (the default): before the policy, this token deleted anything.
    const apiServerToken = await refusal(
      'TokenRequest for kube-system/generic-garbage-collector (API server audience)',
      core.createNamespacedServiceAccountToken({ ...ref, body: { spec: { audiences: [] } } }),
    );
    assert.equal(apiServerToken.code, 403);
    assert.match(apiServerToken.message, new RegExp(`${policyName}-token-requests`));
    assert.match(apiServerToken.message, /in namespace kube-system is not allowed/);
    // An AWS audience does not make kube-system's accounts (and their IAM roles) available either.
    const stsToken = await refusal(
      'TokenRequest for kube-system/generic-garbage-collector (sts.amazonaws.com)',
      core.createNamespacedServiceAccountToken({
        ...ref,
        body: { spec: { audiences: [stsAudience], expirationSeconds: 3600 } },
      }),
    );
    assert.equal(stsToken.code, 403);
  });

  test("tenant accounts: no API server audience, no token longer than an hour, none bound to an object, none of smk's own", async () => {
    const core = controller.asController.makeApiClient(CoreV1Api);
    const ref = { namespace: tenant, name: 'app' };
    const refused: Array<[string, Parameters<CoreV1Api['createNamespacedServiceAccountToken']>[0], RegExp]> =
      [
        ['default audience', { ...ref, body: { spec: {} } }, /spec\.audiences must be/],
        [
          'the API server audience beside sts',
          {
            ...ref,
            body: { spec: { audiences: [stsAudience, 'https://kubernetes.default.svc.cluster.local'] } },
          },
          /spec\.audiences must be/,
        ],
        [
          'sts for a day',
          { ...ref, body: { spec: { audiences: [stsAudience], expirationSeconds: 86_400 } } },
          /spec\.expirationSeconds must be at most 3600/,
        ],
        [
          'sts bound to a Secret',
          {
            ...ref,
            body: {
              spec: {
                audiences: [stsAudience],
                expirationSeconds: 3600,
                boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: 'anything' },
              },
            },
          },
          /spec\.boundObjectRef is not allowed/,
        ],
        [
          "sts for the controller's own account",
          {
            namespace,
            name: controller.account,
            body: { spec: { audiences: [stsAudience], expirationSeconds: 3600 } },
          },
          new RegExp(`in namespace ${namespace} is not allowed`),
        ],
      ];
    for (const [what, request, message] of refused) {
      const answer = await refusal(what, core.createNamespacedServiceAccountToken(request));
      assert.equal(answer.code, 403, what);
      assert.match(answer.message, message, what);
    }
  });

  test('what smk asks for is allowed, and the sts token is no credential for the API server', async () => {
    // smk's own request (src/kube/service-accounts.ts defaults), for both AWS audiences.
    const accounts = createServiceAccounts(controller.asController);
    const sts = await accounts.token({ namespace: tenant, name: 'app' });
    await accounts.token({ namespace: tenant, name: 'app' }, podIdentityAudience);

    const review = await bed.kubeConfig
      .makeApiClient(AuthenticationV1Api)
      .createTokenReview({ body: { spec: { token: sts.token } } });
    assert.ok(!review.status?.authenticated, 'TokenReview: not authenticated');
    assert.match(review.status?.error ?? '', /audience/, 'refused for its audience');

    const withStsToken = kubeConfigFromText(
      renderKubeConfig({
        server: bed.serverUrl,
        caPem: bed.caPem,
        credentials: { name: `${tenant}-app-sts`, token: sts.token },
      }),
    );
    const call = await refusal(
      'an API call with the sts token',
      withStsToken.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: tenant }),
    );
    assert.equal(call.code, 401);
  });

  test('a SecretSync in a tenant namespace syncs, smk acting as the rendered ServiceAccount under the policies', async () => {
    const moto = connectMoto();
    const value = JSON.stringify({ username: 'policy-user', password: `Pw-${release}-7q` });
    await createAwsSecret(secretsManager(moto.endpoint), `${tenant}/db`, value);
    const controllerRun = await startController(controller.asController, moto.endpoint, {
      namespaces: [tenant],
    });
    running.push(controllerRun);
    await secretSyncApi(bed.kubeConfig).create(tenant, 'db', {
      serviceAccountName: 'app',
      objects: [{ objectName: `${tenant}/db`, objectType: 'secretsmanager' }],
    });
    let seen = 'no Ready condition';
    await waitFor(`SecretSync ${tenant}/db Ready`, 30_000, async () => {
      const condition = ready(await secretSyncApi(bed.kubeConfig).get(tenant, 'db'));
      if (condition) seen = `${condition.status} ${condition.reason}: ${condition.message}`;
      return condition?.status === 'True';
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}; last seen: ${seen}`);
    });
    const secret = await readSecret(bed.kubeConfig, tenant, 'db');
    assert.equal(secret?.type, 'Opaque');
  });

  test('no Secret the API server turns into a credential, and no Secret write in kube-system', async () => {
    const core = controller.asController.makeApiClient(CoreV1Api);
    // The token controller would fill this with a token of the account it names.
    const accountToken = await refusal(
      'a service-account-token Secret',
      core.createNamespacedSecret({
        namespace: tenant,
        body: {
          metadata: {
            name: 'app-token',
            annotations: { 'kubernetes.io/service-account.name': 'app' },
          },
          type: 'kubernetes.io/service-account-token',
        },
      }),
    );
    assert.equal(accountToken.code, 403);
    assert.match(accountToken.message, /type kubernetes\.io\/service-account-token is not allowed/);
    const bootstrap = await refusal(
      'a bootstrap token Secret in kube-system',
      core.createNamespacedSecret({
        namespace: 'kube-system',
        body: {
          metadata: { name: 'bootstrap-token-abcdef' },
          type: 'bootstrap.kubernetes.io/token',
          stringData: {
            'token-id': 'abcdef',
            'token-secret': '0123456789abcdef',
            'usage-bootstrap-authentication': 'true',
          },
        },
      }),
    );
    assert.equal(bootstrap.code, 403);
    const opaque = await refusal(
      'an Opaque Secret in kube-system',
      core.createNamespacedSecret({
        namespace: 'kube-system',
        body: { metadata: { name: `${release}-opaque` }, type: 'Opaque' },
      }),
    );
    assert.equal(opaque.code, 403);
    assert.match(opaque.message, /in namespace kube-system is not allowed/);
  });

  test('a rollout changes only smk.dev/restartedAt: the pod template cannot be swapped for another account or image', async () => {
    const name = 'web';
    await bed.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: tenant,
      body: {
        metadata: { name },
        spec: {
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { serviceAccountName: 'app', containers: [{ name, image: 'registry.example/web:1' }] },
          },
        },
      },
    });
    const objects = KubernetesObjectApi.makeApiClient(controller.asController);
    const patch = (spec: Record<string, unknown>, annotations: Record<string, string> = {}) =>
      objects.patch(
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name, namespace: tenant, annotations },
          spec,
        },
        undefined,
        undefined,
        'smk-rotation',
        undefined,
        PatchStrategy.MergePatch,
      );
    // What src/controller/rotation/workloads.ts sends.
    await patch(
      { template: { metadata: { annotations: { 'smk.dev/restartedAt': new Date().toISOString() } } } },
      { 'smk.dev/rolled-versions': '{}' },
    );
    const swaps: Array<[string, Record<string, unknown>]> = [
      ['another ServiceAccount', { template: { spec: { serviceAccountName: 'default' } } }],
      [
        'another image',
        { template: { spec: { containers: [{ name, image: 'registry.example/attacker:1' }] } } },
      ],
      ['another pod label', { template: { metadata: { labels: { app: name, role: 'admin' } } } }],
      ['another pod annotation', { template: { metadata: { annotations: { 'smk.dev/inject': 'true' } } } }],
    ];
    for (const [what, spec] of swaps) {
      const answer = await refusal(what, patch(spec));
      assert.equal(answer.code, 403, what);
      assert.match(answer.message, /only the pod template annotation smk\.dev\/restartedAt may change/, what);
    }
    const stored = (await bed.kubeConfig
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name, namespace: tenant })) as V1Deployment;
    assert.equal(stored.spec?.template.spec?.serviceAccountName, 'app');
    assert.ok(
      stored.spec?.template.metadata?.annotations?.['smk.dev/restartedAt'],
      'the rollout went through',
    );
  });

  test("a CronJob's restart changes only its Job template's smk.dev/restartedAt", async () => {
    const name = 'nightly';
    await bed.kubeConfig.makeApiClient(BatchV1Api).createNamespacedCronJob({
      namespace: tenant,
      body: {
        metadata: { name },
        spec: {
          schedule: '0 3 * * *',
          suspend: true,
          jobTemplate: {
            spec: {
              template: {
                metadata: { labels: { app: name } },
                spec: {
                  serviceAccountName: 'app',
                  restartPolicy: 'Never',
                  containers: [{ name, image: 'registry.example/job:1' }],
                },
              },
            },
          },
        },
      },
    });
    const objects = KubernetesObjectApi.makeApiClient(controller.asController);
    const patch = (template: Record<string, unknown>) =>
      objects.patch(
        {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          metadata: { name, namespace: tenant, annotations: { 'smk.dev/rolled-versions': '{}' } },
          spec: { jobTemplate: { spec: { template } } },
        },
        undefined,
        undefined,
        'smk-rotation',
        undefined,
        PatchStrategy.MergePatch,
      );
    // What src/controller/rotation/kinds.ts sends for a CronJob.
    await patch({ metadata: { annotations: { 'smk.dev/restartedAt': new Date().toISOString() } } });
    for (const [what, template] of [
      ['another ServiceAccount', { spec: { serviceAccountName: 'default' } }],
      ['another image', { spec: { containers: [{ name, image: 'registry.example/attacker:1' }] } }],
      ['another pod annotation', { metadata: { annotations: { 'smk.dev/inject': 'true' } } }],
    ] as const) {
      const answer = await refusal(what, patch(template));
      assert.equal(answer.code, 403, what);
      assert.match(answer.message, /only the Job template annotation smk\.dev\/restartedAt may change/, what);
    }
  });

  test("an Argo Rollout's restart is spec.restartAt alone: its template stays what it was", async () => {
    await installCrdFiles(bed.kubeConfig, [
      new URL('../rotation/fixtures/argo-rollout-crd.yaml', import.meta.url),
    ]);
    const name = 'canary';
    const resource = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts', namespace: tenant };
    await bed.kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      ...resource,
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Rollout',
        metadata: { name },
        spec: {
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { serviceAccountName: 'app', containers: [{ name, image: 'registry.example/web:1' }] },
          },
        },
      },
    });
    const objects = KubernetesObjectApi.makeApiClient(controller.asController);
    const patch = (spec: Record<string, unknown>) =>
      objects.patch(
        {
          apiVersion: 'argoproj.io/v1alpha1',
          kind: 'Rollout',
          metadata: { name, namespace: tenant, annotations: { 'smk.dev/rolled-versions': '{}' } },
          spec,
        },
        undefined,
        undefined,
        'smk-rotation',
        undefined,
        PatchStrategy.MergePatch,
      );
    // What src/controller/rotation/kinds.ts sends for a Rollout.
    await patch({ restartAt: new Date().toISOString() });
    for (const [what, spec] of [
      ['another ServiceAccount', { template: { spec: { serviceAccountName: 'default' } } }],
      [
        'another image',
        { template: { spec: { containers: [{ name, image: 'registry.example/attacker:1' }] } } },
      ],
      ['a workloadRef', { workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'other' } }],
    ] as const) {
      const answer = await refusal(what, patch(spec));
      assert.equal(answer.code, 403, what);
      assert.match(answer.message, /only spec\.restartAt may change/, what);
    }
  });

  test('namespaceLabels: with an opt-in label, the controller acts only in labelled namespaces', async () => {
    const optIn = `${release}-optin`;
    const home = await bed.newNamespace('chart-policy-optin');
    const { objects } = await renderChart({
      release: optIn,
      namespace: home,
      setJson: {
        'webhook.enabled': false,
        'controller.admissionPolicy.namespaceLabels': { 'smk.dev/sync': 'enabled' },
      },
    });
    const scoped = await install(objects, home);
    const accounts = createServiceAccounts(scoped.asController);
    const other = await bed.newNamespace('policy-unlabelled');
    await createServiceAccount(bed.kubeConfig, other, 'app', 'policy-unlabelled');
    const answer = await refusal(
      'a token in an unlabelled namespace',
      scoped.asController.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        namespace: other,
        name: 'app',
        body: { spec: { audiences: [stsAudience], expirationSeconds: 3600 } },
      }),
    );
    assert.equal(answer.code, 403);
    assert.match(answer.message, /lacks the labels in controller\.admissionPolicy\.namespaceLabels/);
    await bed.kubeConfig
      .makeApiClient(CoreV1Api)
      .patchNamespace(
        { name: other, body: { metadata: { labels: { 'smk.dev/sync': 'enabled' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    // The policy reads the namespace from the API server's cache, which follows the label shortly.
    await waitFor('a token in the namespace once labelled', 30_000, async () =>
      accounts.token({ namespace: other, name: 'app' }),
    );
  });
});
