/**
 * What the node tests share: the node bed they attach to (SMK_NODE_BED, started by
 * `npm test -- --node`), smk installed the way a person installs it — `helm upgrade --install` of
 * deploy/helm/smk with every role on, next to the real Secrets Store CSI driver — and the waits
 * for real pods: Ready, logs, files inside running containers.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  StorageV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { chartDir, helm } from '../deploy/helm.ts';
import { crdFiles, installCrds } from '../harness/crds.ts';
import { connectMoto } from '../harness/moto.ts';
import { waitFor } from '../harness/wait.ts';
import { copySmkContainerLogs } from '../leak/node-logs.ts';
import { assertContained } from '../testbed/node/host.ts';
import { connectNodeBed, type NodeBed } from '../testbed/node/index.ts';

const run = promisify(execFile);

export { waitFor };

export const release = { name: 'smk', namespace: 'smk-system' } as const;
/** IRSA roles of smk's own ServiceAccounts (the pod identity webhook gives their pods these). */
export const controllerRoleArn = 'arn:aws:iam::123456789012:role/smk-controller';
export const webhookRoleArn = 'arn:aws:iam::123456789012:role/smk-webhook';
const driverManifest = new URL('../testbed/node/manifests/secrets-store-csi-driver.yaml', import.meta.url);

export interface NodeTestWorld {
  readonly node: NodeBed;
  /** Copies smk's container logs for the leak scan (before the pods go), then lets go of the test's namespaces. */
  finish(): Promise<void>;
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly secretsManager: SecretsManagerClient;
  readonly region: string;
}

let world: Promise<NodeTestWorld> | undefined;

/** The node bed this test process attaches to (once). */
export function nodeTestWorld(): Promise<NodeTestWorld> {
  world ??= (async () => {
    const node = await connectNodeBed();
    const moto = connectMoto();
    const region = process.env.AWS_REGION ?? 'us-east-1';
    const kubeConfig = node.bed.kubeConfig;
    return {
      node,
      async finish() {
        const captureDir = process.env.SMK_LEAK_DIR;
        if (captureDir) await copySmkContainerLogs(captureDir);
        await node.stop();
      },
      kubeConfig,
      core: kubeConfig.makeApiClient(CoreV1Api),
      apps: kubeConfig.makeApiClient(AppsV1Api),
      secretsManager: new SecretsManagerClient({
        endpoint: moto.endpoint,
        region,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      }),
      region,
    };
  })();
  return world;
}

/** Creates the secret, or puts the value as its new AWSCURRENT version when it exists; its ARN and new version. */
export async function upsertSecret(
  client: SecretsManagerClient,
  name: string,
  value: string,
): Promise<{ arn: string; versionId: string }> {
  try {
    const created = await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
    return { arn: created.ARN ?? '', versionId: created.VersionId ?? '' };
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
    const put = await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
    return { arn: put.ARN ?? '', versionId: put.VersionId ?? '' };
  }
}

/** `kubectl apply --server-side -f FILE` for every document of a manifest file. */
async function applyManifest(kubeConfig: KubeConfig, file: URL): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  for (const object of loadAllYaml(await readFile(file, 'utf8'))) {
    if (object)
      await client.patch(object, undefined, undefined, 'smk-node-tests', true, PatchStrategy.ServerSideApply);
  }
}

let driver: Promise<void> | undefined;

/** The Secrets Store CSI driver DaemonSet, running and registered with the kubelet. */
export function installCsiDriver(test: NodeTestWorld): Promise<void> {
  driver ??= (async () => {
    await installCrds(test.kubeConfig, [crdFiles.secretProviderClass]);
    await applyManifest(test.kubeConfig, driverManifest);
    const storage = test.kubeConfig.makeApiClient(StorageV1Api);
    await waitFor(
      'the Secrets Store CSI driver registered on the node',
      180_000,
      async () => {
        const csiNode = await storage.readCSINode({ name: test.node.nodeName });
        return (csiNode.spec.drivers ?? []).some((entry) => entry.name === 'secrets-store.csi.k8s.io');
      },
      500,
    );
  })();
  return driver;
}

/** Extra `--set` values every node test installs smk with: every role on, fast rotation polling. */
export const releaseValues = [
  'csiProvider.enabled=true',
  'webhook.writeThrough.enabled=true',
  `controller.serviceAccount.roleArn=${controllerRoleArn}`,
  `webhook.serviceAccount.roleArn=${webhookRoleArn}`,
  // The rotation test waits for a poll: one every 10 s (the least smk takes) instead of a minute.
  'controller.rotation.pollInterval=10s',
];

/** The node bed's chart flags (image, AWS endpoint) from the world's env, as a person would paste them. */
export function nodeHelmArgs(): string[] {
  const args = process.env.SMK_NODE_HELM_ARGS;
  if (!args) throw new Error('SMK_NODE_HELM_ARGS is not set: run the node tests with `npm test -- --node`');
  return args.split(' ').filter((word) => word !== '');
}

export interface InstallResult {
  /** How long `helm upgrade --install … --wait` took. */
  readonly seconds: number;
  readonly output: string;
}

/**
 * `helm upgrade --install smk deploy/helm/smk -n smk-system --create-namespace $SMK_NODE_HELM_ARGS
 * --set … --wait`: what a person runs. Idempotent: later calls upgrade the same release.
 */
export async function installSmk(
  test: NodeTestWorld,
  extraValues: readonly string[] = [],
): Promise<InstallResult> {
  // Every file's pods start after this: containment is read again each time (kube-proxy re-adds its
  // jumps at the top of FORWARD if its chains are ever flushed).
  await assertContained();
  await installCsiDriver(test);
  const started = performance.now();
  const args = [
    'upgrade',
    '--install',
    release.name,
    chartDir,
    '--namespace',
    release.namespace,
    '--create-namespace',
    ...nodeHelmArgs(),
    ...[...releaseValues, ...extraValues].flatMap((value) => ['--set', value]),
    '--wait',
    '--timeout',
    '5m',
  ];
  try {
    const { stdout, stderr } = await run(await helm(), args, {
      env: { ...process.env, KUBECONFIG: test.node.bed.kubeConfigPath },
      maxBuffer: 16 * 1024 * 1024,
    });
    const seconds = (performance.now() - started) / 1000;
    recordTiming(
      `helm upgrade --install smk --wait (${stdout.includes('has been upgraded') ? 'upgrade' : 'install'})`,
      seconds,
    );
    return { seconds, output: `${stdout}${stderr}` };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    const pods = await describePods(test, release.namespace).catch((why: unknown) => String(why));
    throw new Error(`helm ${args.join(' ')} failed:\n${failed.stderr ?? ''}${failed.stdout ?? ''}\n${pods}`, {
      cause: error,
    });
  }
}

/** One line per pod (phase, readiness, waiting reasons) and its recent events: for failure messages. */
export async function describePods(test: NodeTestWorld, namespace: string): Promise<string> {
  const pods = await test.core.listNamespacedPod({ namespace });
  const events = await test.core.listNamespacedEvent({ namespace });
  const lines = pods.items.map((pod) => {
    const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
    const states = statuses
      .map((status) => {
        const waiting = status.state?.waiting;
        const terminated = status.state?.terminated;
        return `${status.name}:${waiting ? `waiting(${waiting.reason ?? ''}: ${waiting.message ?? ''})` : terminated ? `terminated(${terminated.reason ?? ''} ${terminated.exitCode})` : status.ready ? 'ready' : 'running'}`;
      })
      .join(' ');
    return `pod ${pod.metadata?.name}: ${pod.status?.phase} ${states}`;
  });
  const recent = events.items
    .slice(-15)
    .map(
      (event) =>
        `event ${event.involvedObject.kind}/${event.involvedObject.name}: ${event.reason}: ${event.message}`,
    );
  return [`namespace ${namespace}:`, ...lines, ...recent].join('\n');
}

export function isReady(pod: V1Pod): boolean {
  return (
    pod.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ??
    false
  );
}

/** Waits until a pod matching the selector is Ready; returns it (the first Ready one). */
export async function waitForReadyPod(
  test: NodeTestWorld,
  namespace: string,
  labelSelector: string,
  timeoutMs = 180_000,
): Promise<V1Pod> {
  try {
    return await waitFor(
      `a Ready pod (${labelSelector}) in ${namespace}`,
      timeoutMs,
      async () => {
        const pods = await test.core.listNamespacedPod({ namespace, labelSelector });
        return pods.items.find((pod) => isReady(pod) && pod.metadata?.deletionTimestamp === undefined);
      },
      250,
    );
  } catch (error) {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n${await describePods(test, namespace)}`,
      {
        cause: error,
      },
    );
  }
}

/** The pods matching the selector that are Ready and not being deleted. */
export async function readyPods(
  test: NodeTestWorld,
  namespace: string,
  labelSelector: string,
): Promise<V1Pod[]> {
  const pods = await test.core.listNamespacedPod({ namespace, labelSelector });
  return pods.items.filter((pod) => isReady(pod) && pod.metadata?.deletionTimestamp === undefined);
}

/** A ServiceAccount whose pods get `roleArn` by IRSA (the bed's pod identity webhook reads the annotation). */
export async function createIrsaServiceAccount(
  test: NodeTestWorld,
  namespace: string,
  name: string,
  roleArn: string,
): Promise<void> {
  await test.core.createNamespacedServiceAccount({
    namespace,
    body: { metadata: { name, annotations: { 'eks.amazonaws.com/role-arn': roleArn } } },
  });
}

/** What a running container's processes see in env variable `name`, through a shell of its (busybox) image. */
export function podEnv(
  test: NodeTestWorld,
  namespace: string,
  pod: V1Pod,
  container: string,
  name: string,
): Promise<string> {
  return execInPod(test, namespace, pod.metadata?.name ?? '', container, [
    'sh',
    '-c',
    `printf %s "$${name}"`,
  ]);
}

/** A container's log, through the API server and the kubelet (as `kubectl logs`). */
export async function podLog(
  test: NodeTestWorld,
  namespace: string,
  pod: string,
  container: string,
): Promise<string> {
  return test.core.readNamespacedPodLog({ namespace, name: pod, container });
}

/** `kubectl exec POD -c CONTAINER -- COMMAND…` with the bed's kubectl (exec needs a streaming client). */
export async function execInPod(
  test: NodeTestWorld,
  namespace: string,
  pod: string,
  container: string,
  command: readonly string[],
): Promise<string> {
  try {
    const { stdout } = await run(
      test.node.kubectl,
      [
        '--kubeconfig',
        test.node.bed.kubeConfigPath,
        '-n',
        namespace,
        'exec',
        pod,
        '-c',
        container,
        '--',
        ...command,
      ],
      { maxBuffer: 4 * 1024 * 1024 },
    );
    return stdout;
  } catch (error) {
    throw new Error(
      `kubectl exec ${pod} -c ${container} -- ${command.join(' ')}: ${(error as { stderr?: string }).stderr ?? String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Seconds since `since` (performance.now()), for the per-scenario apply→Ready record. */
export function secondsSince(since: number): number {
  return Math.round((performance.now() - since) / 100) / 10;
}

/** Prints one line of the per-scenario record, e.g. "seed 002 apply→Ready: 5.9 s" (the run's log keeps them). */
export function recordTiming(what: string, seconds: number): void {
  process.stdout.write(`[node-timing] ${what}: ${seconds.toFixed(1)} s\n`);
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404;
}
