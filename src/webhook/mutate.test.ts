import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { agentEnv, initContainerName, refreshContainerName, volumeName } from '../core/agent-contract.ts';
import { defaultInjectorConfig, type InjectorConfig, type MutationResult, mutatePod } from './mutate.ts';
import type { Container, Pod } from './pod.ts';

const config: InjectorConfig = { ...defaultInjectorConfig, agentImage: 'registry.example/smk:test' };
const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:database-password-hlRvvF';

function seedPod(extra: Record<string, string> = {}): Pod {
  return {
    metadata: {
      name: 'web',
      annotations: {
        'secrets.k8s.aws/sidecarInjectorWebhook': 'enabled',
        'secrets.k8s.aws/secret-arn': arn,
        ...extra,
      },
    },
    spec: { containers: [{ name: 'web', image: 'busybox:1.28' }] },
  };
}

function injected(result: MutationResult): Pod {
  if ('denied' in result) assert.fail(`denied: ${result.denied}`);
  return result.pod;
}

function container(pod: Pod, name: string): Container {
  const found = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === name);
  assert.ok(found, `container ${name}`);
  return found;
}

function envNames(c: Container): string[] {
  return (c.env ?? []).map((variable) => variable.name);
}

/** What the EKS pod identity webhook does to app containers (IRSA). */
function addIrsa(pod: Pod): Pod {
  const copy = structuredClone(pod);
  for (const c of copy.spec.containers) {
    if (c.name.startsWith('smk-')) continue;
    c.env = [
      ...(c.env ?? []),
      { name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::123456789012:role/web' },
      {
        name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
        value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
      },
    ];
    c.volumeMounts = [
      ...(c.volumeMounts ?? []),
      {
        name: 'aws-iam-token',
        mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
        readOnly: true,
      },
    ];
  }
  copy.spec.volumes = [...(copy.spec.volumes ?? []), { name: 'aws-iam-token', projected: { sources: [] } }];
  return copy;
}

describe('mutatePod', () => {
  test('a pod without injection annotations is returned as is (fast path, same object)', () => {
    const pod = { metadata: { name: 'x' }, spec: { containers: [{ name: 'a' }] } };
    const result = mutatePod(pod, config);
    assert.ok('pod' in result);
    assert.equal(result.pod, pod);
    assert.equal(result.changed, false);
    assert.deepEqual(mutatePod({ spec: {} }, config), { pod: { spec: {} }, changed: false, patch: [] });
    assert.deepEqual(mutatePod(null, config), { pod: null, changed: false, patch: [] });
  });

  test('the input is never modified', () => {
    const pod = seedPod();
    const before = structuredClone(pod);
    const result = injected(mutatePod(pod, config));
    assert.deepEqual(pod, before);
    assert.notDeepEqual(result, before);
  });

  test('the init container comes first, gets only references and runs locked down', () => {
    const withInit = seedPod();
    withInit.spec.initContainers = [{ name: 'prepare', image: 'busybox' }];
    const pod = injected(mutatePod(withInit, config));
    assert.deepEqual(
      pod.spec.initContainers?.map((c) => c.name),
      [initContainerName, 'prepare'],
    );
    const init = container(pod, initContainerName);
    assert.deepEqual(envNames(init), [agentEnv.objects, agentEnv.dir]);
    assert.deepEqual(JSON.parse(String(init.env?.[0]?.value)), [{ objectName: arn, objectAlias: 'secret' }]);
    assert.deepEqual(init.command, ['smk', 'agent', 'init']);
    assert.deepEqual(init.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // The user's init container can read the secrets too.
    assert.deepEqual(container(pod, 'prepare').volumeMounts, [
      { name: volumeName, mountPath: '/tmp', readOnly: true },
    ]);
  });

  test('identity env and token mounts are copied when the EKS webhook ran first', () => {
    const pod = injected(mutatePod(addIrsa(seedPod()), config));
    const init = container(pod, initContainerName);
    assert.deepEqual(envNames(init), [
      agentEnv.objects,
      agentEnv.dir,
      'AWS_ROLE_ARN',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
    ]);
    assert.deepEqual(init.volumeMounts?.[1], {
      name: 'aws-iam-token',
      mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
      readOnly: true,
    });
  });

  test('on reinvocation after the EKS webhook, the identity is copied and nothing else moves', () => {
    const first = injected(mutatePod(seedPod({ 'smk.dev/refresh-interval': '60s' }), config));
    // The API server defaults fields of our containers between webhook calls; they must survive.
    for (const c of first.spec.initContainers ?? []) c.terminationMessagePath = '/dev/termination-log';
    const afterEks = addIrsa(first);
    const second = mutatePod(afterEks, config);
    assert.ok('pod' in second && second.changed);
    for (const name of [initContainerName, refreshContainerName]) {
      const c = container(second.pod, name);
      assert.ok(envNames(c).includes('AWS_ROLE_ARN'), name);
      assert.equal(c.terminationMessagePath, '/dev/termination-log');
      assert.equal(c.volumeMounts?.length, 2);
    }
    assert.equal(second.pod.spec.initContainers?.length, 2);
    assert.equal(second.pod.spec.volumes?.filter((v) => v.name === volumeName).length, 1);
    assert.equal(container(second.pod, 'web').volumeMounts?.filter((m) => m.name === volumeName).length, 1);
    const third = mutatePod(second.pod, config);
    assert.ok('pod' in third);
    assert.equal(third.changed, false);
    assert.deepEqual(third.pod, second.pod);
  });

  test("the cluster's AWS endpoint reaches every injected container, unless the pod names its own", () => {
    const endpoint = 'http://aws.smk.test:4566';
    const withEndpoint: InjectorConfig = { ...config, awsEndpointUrl: endpoint };
    const pod = injected(mutatePod(addIrsa(seedPod({ 'smk.dev/refresh-interval': '60s' })), withEndpoint));
    for (const name of [initContainerName, refreshContainerName]) {
      const env = container(pod, name).env ?? [];
      assert.deepEqual(
        env.filter((variable) => variable.name === 'AWS_ENDPOINT_URL'),
        [{ name: 'AWS_ENDPOINT_URL', value: endpoint }],
        name,
      );
    }
    // Reinvocation keeps exactly one.
    const again = mutatePod(pod, withEndpoint);
    assert.ok('pod' in again);
    assert.equal(again.changed, false);

    const own = seedPod();
    own.spec.containers[0] = {
      ...own.spec.containers[0],
      name: 'web',
      env: [{ name: 'AWS_ENDPOINT_URL', value: 'http://own:1' }],
    };
    const ownEnv = container(injected(mutatePod(own, withEndpoint)), initContainerName).env ?? [];
    assert.deepEqual(
      ownEnv.filter((variable) => variable.name === 'AWS_ENDPOINT_URL'),
      [{ name: 'AWS_ENDPOINT_URL', value: 'http://own:1' }],
    );
    const none = container(injected(mutatePod(seedPod(), config)), initContainerName);
    assert.ok(!envNames(none).includes('AWS_ENDPOINT_URL'), 'no endpoint configured: none set');
  });

  test('EKS Pod Identity env and token mount are copied', () => {
    const pod = seedPod();
    pod.spec.containers[0] = {
      name: 'web',
      env: [
        { name: 'AWS_CONTAINER_CREDENTIALS_FULL_URI', value: 'http://169.254.170.23/v1/credentials' },
        {
          name: 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
          value: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
        },
        { name: 'DB_HOST', value: 'db' },
      ],
      volumeMounts: [
        {
          name: 'eks-pod-identity-token',
          mountPath: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount',
          readOnly: true,
        },
        { name: 'data', mountPath: '/data' },
      ],
    };
    const init = container(injected(mutatePod(pod, config)), initContainerName);
    assert.deepEqual(envNames(init), [
      agentEnv.objects,
      agentEnv.dir,
      'AWS_CONTAINER_CREDENTIALS_FULL_URI',
      'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
    ]);
    assert.deepEqual(
      init.volumeMounts?.map((m) => m.name),
      [volumeName, 'eks-pod-identity-token'],
    );
  });

  test('the refresh interval reads the one duration grammar (as on a SecretProviderClass); a fraction rounds up', () => {
    const refresh = (value: string) =>
      container(
        injected(mutatePod(seedPod({ 'smk.dev/refresh-interval': value }), config)),
        refreshContainerName,
      ).env?.find((v) => v.name === agentEnv.refreshInterval)?.value;
    assert.equal(refresh('90000ms'), '90');
    assert.equal(refresh('1.5m'), '90');
    assert.equal(refresh('10500ms'), '11');
    const tooShort = mutatePod(seedPod({ 'smk.dev/refresh-interval': '500ms' }), config);
    assert.ok('denied' in tooShort);
    assert.match(tooShort.denied, /between 10s and 24h/);
  });

  test('the refresh sidecar is a native sidecar, or a regular container when configured so', () => {
    const annotated = seedPod({ 'smk.dev/refresh-interval': '1h30m' });
    const native = injected(mutatePod(annotated, config));
    const sidecar = container(native, refreshContainerName);
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.deepEqual(
      native.spec.initContainers?.map((c) => c.name),
      [initContainerName, refreshContainerName],
    );
    assert.equal(sidecar.env?.find((v) => v.name === agentEnv.refreshInterval)?.value, '5400');

    const classic = injected(mutatePod(annotated, { ...config, nativeSidecar: false }));
    assert.deepEqual(
      classic.spec.initContainers?.map((c) => c.name),
      [initContainerName],
    );
    assert.deepEqual(
      classic.spec.containers.map((c) => c.name),
      ['web', refreshContainerName],
    );
    assert.equal(container(classic, refreshContainerName).restartPolicy, undefined);
  });

  test('a container named like an injected one is refused unless the pod is marked injected', () => {
    const pod = seedPod();
    pod.spec.containers.push({ name: initContainerName });
    const result = mutatePod(pod, config);
    assert.deepEqual(result, {
      denied: `pod already has a container named "${initContainerName}", which the injector reserves; rename it`,
    });
  });

  test('smk.dev/containers limits the mount to the named containers', () => {
    const pod = seedPod({ 'smk.dev/containers': 'web' });
    pod.spec.containers.push({ name: 'proxy' });
    const result = injected(mutatePod(pod, config));
    assert.equal(container(result, 'web').volumeMounts?.length, 1);
    assert.equal(container(result, 'proxy').volumeMounts, undefined);
  });

  test('the agent runs as the app user when it is non-root, else as the configured user', () => {
    const pod = seedPod();
    pod.spec.containers[0] = { name: 'web', securityContext: { runAsUser: 0 } };
    pod.spec.securityContext = { runAsUser: 1001 };
    const init = container(injected(mutatePod(pod, config)), initContainerName);
    assert.equal(init.securityContext?.runAsUser, 1001);
    assert.equal(init.securityContext?.runAsGroup, 1001);
  });

  test('a denial never echoes a value from the pod', () => {
    const pod = seedPod({ 'smk.dev/resources': '{requests: {cpu: "hunter2-very-secret"}}' });
    const result = mutatePod(pod, config);
    assert.ok('denied' in result);
    assert.doesNotMatch(result.denied, /hunter2/);
  });

  test('jmesPath expressions: denied by default, naming the annotation and field; with the flag admitted and passed on to the agent', () => {
    const pod: Pod = {
      metadata: {
        name: 'web',
        annotations: {
          'smk.dev/inject': 'true',
          'smk.dev/objects': JSON.stringify([
            { objectName: arn, jmesPath: [{ path: 'to_string(port)', objectAlias: 'port' }] },
          ]),
        },
      },
      spec: { containers: [{ name: 'web', image: 'busybox:1.28' }] },
    };
    const refused = mutatePod(pod, config);
    assert.ok('denied' in refused);
    assert.match(
      refused.denied,
      /^annotation smk\.dev\/objects: .*jmesPath\[0\]\.path is not a plain field path/,
    );
    assert.match(refused.denied, /--allow-jmespath-expressions/);

    const allowed = injected(mutatePod(pod, { ...config, allowJmesPathExpressions: true }));
    const init = container(allowed, initContainerName);
    assert.deepEqual(
      init.env?.find((variable) => variable.name === agentEnv.jmesPathExpressions),
      { name: agentEnv.jmesPathExpressions, value: 'allowed' },
    );
    // Plain paths never need it: the default injection carries no such variable.
    assert.ok(
      !envNames(container(injected(mutatePod(seedPod(), config)), initContainerName)).includes(
        agentEnv.jmesPathExpressions,
      ),
    );
  });
});
