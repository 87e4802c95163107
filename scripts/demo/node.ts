/**
 * The demo on the node bed: every seed scenario as real pods. A real kubelet runs them with
 * containerd; smk is installed with `helm upgrade --install` of deploy/helm/smk (webhook, controller,
 * CSI provider — the smk image) beside the real Secrets Store CSI driver; the AWS endpoint is moto.
 * Each scenario applies the manifests of examples/ unchanged, waits for the pods to be Ready (the
 * time is in the summary) and shows what the running containers see.
 *
 * The demo secrets are made-up values created in the local moto only; printing them is the point
 * of the demo (it shows the bytes arrived), unlike anything smk itself logs.
 */
import { randomBytes } from 'node:crypto';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { V1Pod } from '@kubernetes/client-node';
import { applyExample } from '../../test/examples/examples.ts';
import { startNodeWorld } from '../../test/harness/node-world.ts';
import { runCommand } from '../../test/harness/run.ts';
import {
  execInPod,
  installSmk,
  isReady,
  type NodeTestWorld,
  nodeHelmArgs,
  nodeTestWorld,
  podLog,
  releaseValues,
  secondsSince,
  upsertSecret,
  waitFor,
  waitForReadyPod,
} from '../../test/node/harness.ts';

interface Outcome {
  readonly title: string;
  readonly ok: boolean;
  /** apply → pods Ready, when the scenario starts pods. */
  readonly readySeconds: number | undefined;
  readonly seconds: number;
  readonly detail: string;
}

const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const indent = (text: string): string =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');

function expectEqual(what: string, actual: string, expected: string): void {
  if (actual !== expected)
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

interface Scenario {
  readonly title: string;
  readonly story: string;
  /** Returns a one-line result and the apply→Ready seconds it measured. */
  run(test: NodeTestWorld): Promise<{ detail: string; readySeconds?: number }>;
}

const smkBinary = new URL('../../dist/smk.mjs', import.meta.url).pathname;

async function readyPods(test: NodeTestWorld, namespace: string, labelSelector: string): Promise<V1Pod[]> {
  const pods = await test.core.listNamespacedPod({ namespace, labelSelector });
  return pods.items.filter((pod) => isReady(pod) && pod.metadata?.deletionTimestamp === undefined);
}

const envOf = (
  test: NodeTestWorld,
  namespace: string,
  pod: V1Pod,
  container: string,
  name: string,
): Promise<string> =>
  execInPod(test, namespace, pod.metadata?.name ?? '', container, ['sh', '-c', `printf %s "$${name}"`]);

const scenarios: Scenario[] = [
  {
    title: 'aws-secret-sidecar-injector: injection — the webserver prints its secret',
    story:
      "The aws-secret-sidecar-injector post's Deployment, unchanged. The API server sends its pod to smk's webhook (a pod of the chart),\n" +
      'which adds an init container running the smk image: it assumes the pod’s IRSA role with the pod’s own\n' +
      'projected token (STS), fetches the secret and writes /tmp/secret on a memory volume. The webserver\n' +
      'container starts after it and prints the file.',
    async run(test) {
      const namespace = await test.node.bed.newNamespace('demo-seed-002');
      const value = JSON.stringify({ username: 'admin', password: `P@ss-${randomBytes(3).toString('hex')}` });
      await upsertSecret(test.secretsManager, 'database-password-hlRvvF', value);
      say(`$ aws secretsmanager create-secret --name database-password-hlRvvF --secret-string '${value}'`);
      say(`$ kubectl -n ${namespace} apply -f examples/injection-sidecar-injector/`);
      const started = performance.now();
      await applyExample(test.kubeConfig, 'injection-sidecar-injector', namespace);
      const pod = await waitForReadyPod(test, namespace, 'run=webserver');
      const readySeconds = secondsSince(started);
      const init = pod.spec?.initContainers?.[0];
      say(`pod ${pod.metadata?.name} Ready after ${readySeconds} s on node ${pod.spec?.nodeName}`);
      say(`  init container ${init?.name}: image ${init?.image}, command ${JSON.stringify(init?.command)}`);
      const log = await waitFor('the webserver to print', 30_000, async () => {
        const text = await podLog(test, namespace, pod.metadata?.name ?? '', 'webserver');
        return text.trim() === '' ? undefined : text;
      });
      say(`$ kubectl -n ${namespace} logs deploy/webserver\n${log.trimEnd()}`);
      expectEqual('the webserver printed', log.trim(), value);
      return { detail: 'the running webserver printed the secret the injected agent fetched', readySeconds };
    },
  },
  {
    title: 'ASCP drop-in: CSI — the real driver mounts through smk’s provider',
    story:
      "The ASCP guide's SecretProviderClass and pod, unchanged. The kubelet asks the Secrets Store CSI driver to mount\n" +
      'the volume; the driver calls smk’s provider (the chart’s DaemonSet) over its socket with the pod’s token;\n' +
      'the provider reads both secrets (eu-west-1, from their ARNs) and the files appear in the container.',
    async run(test) {
      const namespace = await test.node.bed.newNamespace('demo-seed-001');
      const euWest1 = new SecretsManagerClient({
        endpoint: process.env.AWS_ENDPOINT_URL ?? '',
        region: 'eu-west-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      try {
        const user = { username: 'john.doe', password: `pw-${randomBytes(3).toString('hex')}` };
        await upsertSecret(euWest1, 'MySecret-00AACC', JSON.stringify({ user }));
        await upsertSecret(euWest1, 'MySecret2-00AABB', 'the whole value');
        say(`$ kubectl -n ${namespace} apply -f examples/csi-ascp/`);
        const started = performance.now();
        await applyExample(test.kubeConfig, 'csi-ascp', namespace);
        await waitForReadyPod(test, namespace, '');
        const readySeconds = secondsSince(started);
        say(`pod test-secrets Ready after ${readySeconds} s`);
        for (const file of ['dbusername', 'dbpassword', 'foobar']) {
          const text = await execInPod(test, namespace, 'test-secrets', 'busybox', [
            'cat',
            `/mnt/secrets-store/${file}`,
          ]);
          say(`$ kubectl -n ${namespace} exec test-secrets -- cat /mnt/secrets-store/${file}\n${text}`);
          if (file === 'dbpassword') expectEqual(file, text, user.password);
        }
        return { detail: 'dbusername, dbpassword, foobar mounted by the real CSI driver', readySeconds };
      } finally {
        euWest1.destroy();
      }
    },
  },
  {
    title: 'secretObjects sync — every replica’s SECRET_API_KEY',
    story:
      "The sync blog post's class opted in to smk's sync: the controller (a pod of the chart) keeps Secret foosecret in\n" +
      'step with CSI-driver-test-secret, acting as nginx-deployment-sa; the three nginx replicas (busybox\n' +
      'httpd standing in for nginx:1.14.2) take SECRET_API_KEY from it and mount the CSI volume.',
    async run(test) {
      const namespace = await test.node.bed.newNamespace('demo-seed-004');
      const value = `api-key-${randomBytes(3).toString('hex')}`;
      await upsertSecret(test.secretsManager, 'CSI-driver-test-secret', value);
      say(`$ kubectl -n ${namespace} apply -f examples/sync-secretproviderclass/`);
      const started = performance.now();
      await applyExample(test.kubeConfig, 'sync-secretproviderclass', namespace);
      const pods = await waitFor('3 Ready replicas', 240_000, async () => {
        const ready = await readyPods(test, namespace, 'app=nginx');
        return ready.length === 3 ? ready : undefined;
      });
      const readySeconds = secondsSince(started);
      for (const pod of pods) {
        const seen = await envOf(test, namespace, pod, 'nginx', 'SECRET_API_KEY');
        say(`$ kubectl -n ${namespace} exec ${pod.metadata?.name} -- sh -c 'echo $SECRET_API_KEY'\n${seen}`);
        expectEqual('SECRET_API_KEY', seen, value);
      }
      return { detail: '3 replicas Ready with SECRET_API_KEY from the synced Secret', readySeconds };
    },
  },
  {
    title: 'rotation operator — a new value rolls the Deployment',
    story:
      "The rotation operator post's SecretsRotationMapping and labelled Deployment. The secret gets a new value; the controller\n" +
      '(polling every 10 s here; SQS events on AWS) re-syncs app-secret, then restarts the labelled\n' +
      'Deployment: the new pod reads the new value.',
    async run(test) {
      const namespace = await test.node.bed.newNamespace('demo-seed-003');
      const first = `first-${randomBytes(3).toString('hex')}`;
      const second = `second-${randomBytes(3).toString('hex')}`;
      const { versionId } = await upsertSecret(test.secretsManager, 'eks-controller-test-secret', first);
      say(`$ kubectl -n ${namespace} apply -f examples/rotation-mapping/`);
      const started = performance.now();
      await applyExample(test.kubeConfig, 'rotation-mapping', namespace);
      await waitForReadyPod(test, namespace, 'app=operatortest', 240_000);
      const readySeconds = secondsSince(started);
      const before = await waitFor('the Deployment to settle', 240_000, async () => {
        const deployment = await test.apps.readNamespacedDeployment({ namespace, name: 'operatortest' });
        if (!(deployment.metadata?.annotations?.['smk.dev/rolled-versions'] ?? '').includes(versionId))
          return undefined;
        if (deployment.status?.replicas !== 1 || deployment.status.availableReplicas !== 1) return undefined;
        return (await readyPods(test, namespace, 'app=operatortest'))[0];
      });
      say(`pod ${before.metadata?.name}: VALUE=${await envOf(test, namespace, before, 'nginx', 'VALUE')}`);
      say(
        `$ aws secretsmanager put-secret-value --secret-id eks-controller-test-secret --secret-string ${second}`,
      );
      const rotated = performance.now();
      await upsertSecret(test.secretsManager, 'eks-controller-test-secret', second);
      const after = await waitFor('the new pod', 240_000, async () =>
        (await readyPods(test, namespace, 'app=operatortest')).find(
          (pod) => pod.metadata?.uid !== before.metadata?.uid,
        ),
      );
      const seen = await envOf(test, namespace, after, 'nginx', 'VALUE');
      say(`new pod ${after.metadata?.name} Ready ${secondsSince(rotated)} s after the put: VALUE=${seen}`);
      expectEqual('VALUE in the new pod', seen, second);
      return {
        detail: `rolled ${secondsSince(rotated)} s after the put; the new pod sees the new value`,
        readySeconds,
      };
    },
  },
  {
    title: 'write-through: the Secret’s value lives in Secrets Manager',
    story:
      'A Secret labelled smk.dev/write-through is stored in Secrets Manager by the webhook; etcd keeps only\n' +
      'where it lives. A pod mounting it gets the value from the injected agent, as the pod’s own identity.',
    async run(test) {
      const namespace = await test.node.bed.newNamespace('demo-write-through');
      await test.core.createNamespacedServiceAccount({
        namespace,
        body: {
          metadata: {
            name: 'payments',
            annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/payments' },
          },
        },
      });
      say(`$ kubectl -n ${namespace} apply -f examples/write-through/`);
      await applyExample(test.kubeConfig, 'write-through', namespace);
      const stored = await test.core.readNamespacedSecret({ namespace, name: 'payment-api' });
      say(
        `Secret payment-api in etcd: data ${JSON.stringify(stored.data ?? {})}, smk.dev/aws-secret-arn ${stored.metadata?.annotations?.['smk.dev/aws-secret-arn']}`,
      );
      const started = performance.now();
      await test.core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: 'reader', labels: { app: 'reader' } },
          spec: {
            serviceAccountName: 'payments',
            containers: [
              {
                name: 'app',
                image: 'busybox:1.28',
                command: ['sh', '-c', 'sleep 3600'],
                volumeMounts: [{ name: 'payment', mountPath: '/etc/payment', readOnly: true }],
              },
            ],
            volumes: [{ name: 'payment', secret: { secretName: 'payment-api' } }],
          },
        },
      });
      await waitForReadyPod(test, namespace, 'app=reader');
      const readySeconds = secondsSince(started);
      const text = await execInPod(test, namespace, 'reader', 'app', ['cat', '/etc/payment/api-key']);
      say(`$ kubectl -n ${namespace} exec reader -- cat /etc/payment/api-key\n${text}`);
      expectEqual('api-key', text, 'example-not-a-real-key');
      return { detail: 'a pod mounting the data-less Secret reads its value', readySeconds };
    },
  },
  {
    title: 'smk doctor against the install',
    story:
      'smk doctor, from where a person sits (a kubeconfig and AWS credentials), checks the running install.',
    async run(test) {
      const namespace = await test.node.bed.newNamespace('demo-doctor');
      await test.core.createNamespacedServiceAccount({
        namespace,
        body: {
          metadata: {
            name: 'app',
            annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/app' },
          },
        },
      });
      await upsertSecret(test.secretsManager, 'demo-doctor-secret', 'value');
      const args = [
        'doctor',
        '--service-account',
        `${namespace}/app`,
        '--secret',
        'demo-doctor-secret',
        '--csi-socket',
        '/var/run/secrets-store-csi-providers/aws.sock',
      ];
      say(`$ smk ${args.join(' ')}`);
      const result = await runCommand(process.execPath, [smkBinary, ...args]);
      say(indent(result.stdout + result.stderr));
      if (result.code !== 0) throw new Error(`smk doctor exited ${result.code}`);
      return { detail: 'every check passed' };
    },
  },
];

export async function runNodeDemo(): Promise<number> {
  const outcomes: Outcome[] = [];
  say(
    'smk demo on the node bed: real pods. A kubelet + containerd node runs every pod below; smk is installed\n' +
      'with helm from deploy/helm/smk (the smk image), beside the real Secrets Store CSI driver; moto is AWS.',
  );
  let stopWorld: (() => Promise<void>) | undefined;
  let test: NodeTestWorld | undefined;
  const began = performance.now();
  try {
    if (process.env.SMK_NODE_BED) {
      say(`Using the running node bed (SMK_NODE_BED=${process.env.SMK_NODE_BED}).`);
    } else {
      say('Starting the node bed (the first time, build it: bash test/testbed/node/build.sh)…');
      const world = await startNodeWorld();
      stopWorld = world.stop;
      Object.assign(process.env, world.env);
    }
    test = await nodeTestWorld();
    outcomes.push({
      title: 'start the node bed',
      ok: true,
      readySeconds: undefined,
      seconds: secondsSince(began),
      detail: 'up',
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    say(`✘ ${detail}`);
    outcomes.push({
      title: 'start the node bed',
      ok: false,
      readySeconds: undefined,
      seconds: secondsSince(began),
      detail,
    });
  }
  try {
    if (test) {
      const running = test;
      const steps: Scenario[] = [
        {
          title: 'helm upgrade --install smk (every role on)',
          story:
            'The chart with the node bed’s image and AWS endpoint ($SMK_NODE_HELM_ARGS), write-through and the\n' +
            'CSI provider on; first the Secrets Store CSI driver DaemonSet and its registrar.',
          async run() {
            say(
              `$ helm upgrade --install smk deploy/helm/smk -n smk-system --create-namespace ${nodeHelmArgs().join(' ')} ${releaseValues.map((value) => `--set ${value}`).join(' ')} --wait`,
            );
            const install = await installSmk(running);
            const pods = await running.core.listNamespacedPod({ namespace: 'smk-system' });
            for (const pod of pods.items)
              say(`  pod ${pod.metadata?.name}: ${pod.status?.phase}, Ready ${isReady(pod)}`);
            return {
              detail: `installed, every pod Ready (${install.seconds.toFixed(1)} s)`,
              readySeconds: install.seconds,
            };
          },
        },
        ...scenarios,
      ];
      for (const scenario of steps) {
        say(`\n━━ ${scenario.title}\n${scenario.story}\n`);
        const started = performance.now();
        try {
          const { detail, readySeconds } = await scenario.run(running);
          outcomes.push({
            title: scenario.title,
            ok: true,
            readySeconds,
            seconds: secondsSince(started),
            detail,
          });
          say(`✔ ${detail}`);
        } catch (error) {
          const detail = error instanceof Error ? error.message : String(error);
          outcomes.push({
            title: scenario.title,
            ok: false,
            readySeconds: undefined,
            seconds: secondsSince(started),
            detail,
          });
          say(`✘ ${detail}`);
        }
      }
    }
  } finally {
    await test?.node.stop().catch(() => undefined);
    await stopWorld?.().catch((error: unknown) => say(`stopping the node bed: ${String(error)}`));
  }
  const header = 'scenario (real pods on the node bed)';
  const width = Math.max(...outcomes.map((outcome) => outcome.title.length), header.length);
  say(`\n${header.padEnd(width)}  result  apply→Ready   total`);
  say(`${'-'.repeat(width)}  ------  -----------  -------`);
  for (const outcome of outcomes) {
    const ready = outcome.readySeconds === undefined ? '' : `${outcome.readySeconds.toFixed(1)} s`;
    say(
      `${outcome.title.padEnd(width)}  ${(outcome.ok ? 'pass' : 'FAIL').padEnd(6)}  ${ready.padStart(11)}  ${outcome.seconds.toFixed(1).padStart(5)} s`,
    );
  }
  const failed = outcomes.filter((outcome) => !outcome.ok);
  say(`\n${outcomes.length - failed.length} passed, ${failed.length} failed`);
  for (const outcome of failed) say(`  FAIL ${outcome.title}: ${outcome.detail.split('\n')[0]}`);
  return failed.length === 0 ? 0 : 1;
}
