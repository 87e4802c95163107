/**
 * The demo's smk "installation": the chart rendered by a real helm (test/deploy/helm.ts), every
 * object of it applied to the bed for real except the workloads, and each role's workload run as a
 * local process of the bundle (dist/smk.mjs, what the image runs) with the rendered container's
 * args and env, as the rendered ServiceAccount (a TokenRequest token in a kubeconfig).
 *
 * Local-run changes, and only these (the same ones test/deploy makes): the webhook configuration's
 * clientConfig.service becomes a url (the bed's Services route nowhere: no kubelet, no kube-proxy);
 * ports become free loopback ports and the webhook listens on 127.0.0.1; file paths of the
 * container's volumes move into a temp dir; AWS credentials come from the environment (in a
 * cluster, IRSA gives them); one process per role instead of the rendered replica count.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import {
  AdmissionregistrationV1Api,
  ApiException,
  KubernetesObjectApi,
  loadYaml,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { connectProvider } from '../../src/csi/client.ts';
import {
  find,
  helm,
  objectName,
  type RenderedObject,
  renderChart,
  serverSideApply,
} from '../../test/deploy/helm.ts';
import { waitFor } from '../../test/rotation/harness.ts';
import { renderKubeConfig } from '../../test/testbed/kubeconfig.ts';
import { freePorts, tailFile } from '../../test/testbed/processes.ts';
import type { DemoWorld } from './world.ts';

/** The Secrets Store CSI driver's SecretProviderClass CRD (a minimal copy the sync tests keep). */
const spcCrd = new URL('../../test/controller/fixtures/secretproviderclass-crd.yaml', import.meta.url);
const releaseName = 'smk';
/** What deploy/aws/rotation.yaml's queue URL looks like on AWS; moto serves it by its name. */
export const demoQueueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/smk-demo-rotation-events';
export const demoNodeName = 'demo-node-1';

interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath: string } };
}
interface Container {
  readonly name: string;
  readonly args: readonly string[];
  readonly env?: readonly EnvVar[];
  readonly volumeMounts?: readonly { readonly name: string; readonly mountPath: string }[];
}
interface PodTemplateSpec {
  readonly serviceAccountName: string;
  readonly containers: readonly Container[];
}

export interface RoleProcess {
  readonly role: string;
  readonly pid: number | undefined;
  /** The last lines it printed (its log file). */
  tail(lines?: number): string;
  running(): boolean;
  stop(): Promise<void>;
}

export interface DemoRelease {
  readonly name: string;
  readonly namespace: string;
  readonly rendered: readonly RenderedObject[];
  readonly webhookConfigurationName: string;
  /** https://127.0.0.1:PORT: where the webhook configuration sends the API server. */
  readonly webhookUrl: string;
  /** The CSI provider's socket (in a cluster: the driver's providers dir on the node). */
  readonly csiSocket: string;
  readonly controllerServiceAccount: string;
  readonly processes: readonly RoleProcess[];
  /** Each role's last log lines, for a failure report. */
  logs(lines?: number): string;
  stop(): Promise<void>;
}

type Say = (line: string) => void;

function podSpec(workload: RenderedObject): PodTemplateSpec {
  return (workload.spec as { template: { spec: PodTemplateSpec } }).template.spec;
}

function mainContainer(workload: RenderedObject): Container {
  const [container] = podSpec(workload).containers;
  if (!container) throw new Error(`${objectName(workload)} has no container`);
  return container;
}

/** The container's env as the kubelet would resolve it for one pod of the workload. */
function resolveEnv(container: Container, pod: { namespace: string; name: string; nodeName: string }) {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (field === 'metadata.namespace') env[variable.name] = pod.namespace;
    else if (field === 'metadata.name') env[variable.name] = pod.name;
    else if (field === 'spec.nodeName') env[variable.name] = pod.nodeName;
    else
      throw new Error(`container ${container.name}: env ${variable.name} has a source the demo cannot run`);
  }
  return env;
}

/** Kubernetes expands $(VAR) in args from the container's env. */
function expandArgs(args: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return args.map((arg) =>
    arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole),
  );
}

/** Moves a flag value that lies under one of the container's mount paths into `dir`. */
function moveMountedPaths(args: readonly string[], container: Container, dir: string): string[] {
  const mounts = (container.volumeMounts ?? []).map((mount) => mount.mountPath);
  return args.map((arg) => {
    for (const mountPath of mounts) {
      if (arg.includes(`=${mountPath}`)) return arg.replace(`=${mountPath}`, `=${join(dir, mountPath)}`);
    }
    return arg;
  });
}

function replaceFlag(args: readonly string[], flag: string, value: string): string[] {
  return args.map((arg) => (arg.startsWith(`${flag}=`) ? `${flag}=${value}` : arg));
}

function httpStatus(url: string, caPem?: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const onResponse = (response: { statusCode?: number; resume(): void }): void => {
      response.resume();
      resolve(response.statusCode);
    };
    const request = url.startsWith('https:')
      ? httpsGet(url, { ca: caPem }, onResponse)
      : httpGet(url, onResponse);
    request.on('error', () => resolve(undefined));
    request.setTimeout(2_000, () => request.destroy());
  });
}

async function apply(world: DemoWorld, object: RenderedObject): Promise<void> {
  // Through the client's model types: a plain object would lose enum/default/x-kubernetes-* of CRDs.
  const typed = loadYaml<RenderedObject>(stringify(object));
  await serverSideApply(world.bed.kubeConfig, typed, { dryRun: false, fieldManager: 'helm' }).catch(
    (error: unknown) => {
      throw new Error(
        `applying ${objectName(object)}: ${error instanceof ApiException ? String(error.body) : String(error)}`,
      );
    },
  );
}

async function waitEstablished(world: DemoWorld, name: string): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(world.bed.kubeConfig);
  await waitFor(`CRD ${name} established`, 60_000, async () => {
    const crd = (await objects.read({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name },
    })) as { status?: { conditions?: { type: string; status: string }[] } };
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
  });
}

/** A kubeconfig that authenticates as the ServiceAccount (TokenRequest), as in-cluster config would. */
async function serviceAccountKubeConfig(
  world: DemoWorld,
  dir: string,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const token = await world.bed.serviceAccountToken(namespace, serviceAccount);
  const path = join(dir, `${serviceAccount}.kubeconfig`);
  await writeFile(
    path,
    renderKubeConfig({
      server: world.bed.serverUrl,
      caPem: world.bed.caPem,
      credentials: { name: `system:serviceaccount:${namespace}:${serviceAccount}`, token },
      namespace,
    }),
    { mode: 0o600 },
  );
  return path;
}

function startRole(
  world: DemoWorld,
  role: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  logPath: string,
): RoleProcess {
  const log = createWriteStream(logPath, { flags: 'a' });
  const child: ChildProcess = spawn(process.execPath, [world.smkBinary, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exited = child.exitCode !== null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  process.once('exit', () => {
    if (!exited) child.kill('SIGKILL');
  });
  return {
    role,
    pid: child.pid,
    tail: (lines = 15) => tailFile(logPath, lines),
    running: () => !exited,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      log.end();
    },
  };
}

async function untilReady(process_: RoleProcess, what: string, probe: () => Promise<boolean>): Promise<void> {
  await waitFor(what, 90_000, async () => {
    if (!process_.running()) throw new Error(`${process_.role} exited`);
    return probe();
  }).catch((error: unknown) => {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n--- ${process_.role} output ---\n${process_.tail(30)}`,
    );
  });
}

/** Renders the chart, applies it (workloads as local processes) and waits until every role is ready. */
export async function installRelease(world: DemoWorld, say: Say): Promise<DemoRelease> {
  const objects = KubernetesObjectApi.makeApiClient(world.bed.kubeConfig);
  const dir = await world.tempDir('release');
  const namespace = await world.bed.newNamespace('smk-system');

  say('helm: built from the Go module proxy on the first run (minutes, progress below), then cached…');
  const buildStarted = performance.now();
  const heartbeat = setInterval(() => {
    say(`  still preparing helm (${Math.round((performance.now() - buildStarted) / 1000)} s)…`);
  }, 30_000);
  try {
    await helm();
  } finally {
    clearInterval(heartbeat);
  }
  const values = {
    'aws.region': world.region,
    // The chart's own value for a test endpoint: every role's AWS_ENDPOINT_URL.
    'aws.endpointUrl': world.awsEndpoint,
    'csiProvider.enabled': true,
    'webhook.writeThrough.enabled': true,
    'controller.rotation.queueUrl': demoQueueUrl,
  };
  say(
    `$ helm template ${releaseName} deploy/helm/smk --namespace ${namespace} ${Object.entries(values)
      .map(([key, value]) => `--set ${key}=${String(value)}`)
      .join(' ')}`,
  );
  const { objects: rendered } = await renderChart({ release: releaseName, namespace, setJson: values });
  say(`  ${rendered.length} objects: ${[...new Set(rendered.map((object) => object.kind))].join(', ')}`);

  // The rotation queue deploy/aws/rotation.yaml would create (moto cannot run CloudFormation's rules).
  await world.sqs.send(
    new CreateQueueCommand({ QueueName: demoQueueUrl.slice(demoQueueUrl.lastIndexOf('/') + 1) }),
  );
  // The Secrets Store CSI driver's CRD (seeds 001/004 need the driver installed first).
  const spc = loadYaml<RenderedObject>(await readFile(spcCrd, 'utf8'));
  await apply(world, spc);
  await waitEstablished(world, spc.metadata.name);
  // A Node for the CSI provider's --node-name (its region label is the provider's fallback region).
  await objects
    .patch(
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: demoNodeName, labels: { 'topology.kubernetes.io/region': world.region } },
      },
      undefined,
      undefined,
      'smk-demo',
      true,
      'application/apply-patch+yaml',
    )
    .catch((error: unknown) => {
      throw new Error(`creating Node ${demoNodeName}: ${String(error)}`);
    });

  const workloadKinds = new Set(['Deployment', 'DaemonSet']);
  const webhookDeployment = find(rendered, 'Deployment', `${releaseName}-webhook`);
  const controllerDeployment = find(rendered, 'Deployment', `${releaseName}-controller`);
  const csiDaemonSet = find(rendered, 'DaemonSet', `${releaseName}-csi-provider`);
  const configuration = find(rendered, 'MutatingWebhookConfiguration');
  const [webhookPort, controllerPort, csiHealthPort] = await freePorts(3);
  const webhookUrl = `https://127.0.0.1:${webhookPort}`;

  const applied: RenderedObject[] = [];
  const crds = rendered.filter((object) => object.kind === 'CustomResourceDefinition');
  for (const crd of crds) await apply(world, crd);
  for (const crd of crds) await waitEstablished(world, crd.metadata.name);
  for (const object of rendered) {
    if (workloadKinds.has(object.kind) || object.kind === 'CustomResourceDefinition') continue;
    let toApply = object;
    if (object === configuration) {
      toApply = structuredClone(object);
      for (const webhook of toApply.webhooks as {
        clientConfig: { service?: { path: string }; url?: string };
      }[]) {
        const path = webhook.clientConfig.service?.path ?? '';
        webhook.clientConfig = { url: `${webhookUrl}${path}` };
      }
    }
    await apply(world, toApply);
    applied.push(toApply);
  }
  say(
    `  applied ${applied.length + crds.length} objects for real (CRDs, ServiceAccounts, RBAC, Services, the TLS Secret,\n` +
      `  the MutatingWebhookConfiguration with clientConfig.url ${webhookUrl}/…); the Deployments and the\n` +
      '  DaemonSet run below as local processes of dist/smk.mjs with their rendered args and env.',
  );

  const processes: RoleProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(processes.map((role) => role.stop()));
    // Cluster-wide objects of this release: a webhook configuration left behind would refuse pods later.
    for (const object of applied) {
      if (object.metadata.namespace) continue;
      await objects.delete(object).catch(() => undefined);
    }
    await objects
      .delete({ apiVersion: 'v1', kind: 'Node', metadata: { name: demoNodeName } })
      .catch(() => undefined);
  };
  const awsCredentials = {
    AWS_ACCESS_KEY_ID: world.env.AWS_ACCESS_KEY_ID ?? 'testing',
    AWS_SECRET_ACCESS_KEY: world.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
  };
  try {
    // Webhook: its TLS bootstrap (CA + serving certificate in the Secret, caBundle patched) runs first.
    {
      const container = mainContainer(webhookDeployment);
      const pod = { namespace, name: `${releaseName}-webhook-0`, nodeName: demoNodeName };
      const env = resolveEnv(container, pod);
      const args = replaceFlag(
        moveMountedPaths(expandArgs(container.args, env), container, dir),
        '--port',
        String(webhookPort),
      );
      const kubeconfig = await serviceAccountKubeConfig(
        world,
        dir,
        namespace,
        podSpec(webhookDeployment).serviceAccountName,
      );
      say(`$ smk ${[...args, '--host=127.0.0.1'].join(' ')}`);
      processes.push(
        startRole(
          world,
          'webhook',
          [...args, '--host=127.0.0.1'],
          { ...env, ...awsCredentials, KUBECONFIG: kubeconfig },
          join(dir, 'webhook.log'),
        ),
      );
    }
    // Controller: sync + rotation, leader elected (one replica here).
    {
      const container = mainContainer(controllerDeployment);
      const pod = { namespace, name: `${releaseName}-controller-0`, nodeName: demoNodeName };
      const env = resolveEnv(container, pod);
      const args = replaceFlag(expandArgs(container.args, env), '--health-port', String(controllerPort));
      const kubeconfig = await serviceAccountKubeConfig(
        world,
        dir,
        namespace,
        podSpec(controllerDeployment).serviceAccountName,
      );
      say(`$ smk ${args.join(' ')}`);
      processes.push(
        startRole(
          world,
          'controller',
          args,
          { ...env, ...awsCredentials, KUBECONFIG: kubeconfig },
          join(dir, 'controller.log'),
        ),
      );
    }
    // CSI provider: the socket the driver dials, on "the node".
    let csiSocket: string;
    {
      const container = mainContainer(csiDaemonSet);
      const pod = { namespace, name: `${releaseName}-csi-provider-0`, nodeName: demoNodeName };
      const env = resolveEnv(container, pod);
      const args = replaceFlag(
        moveMountedPaths(expandArgs(container.args, env), container, dir),
        '--health-port',
        String(csiHealthPort),
      );
      const volume = args.find((arg) => arg.startsWith('--provider-volume='))?.split('=')[1] ?? '';
      const providerName = args.find((arg) => arg.startsWith('--provider-name='))?.split('=')[1] ?? 'aws';
      csiSocket = join(volume, `${providerName}.sock`);
      const kubeconfig = await serviceAccountKubeConfig(
        world,
        dir,
        namespace,
        podSpec(csiDaemonSet).serviceAccountName,
      );
      say(`$ smk ${args.join(' ')}`);
      processes.push(
        startRole(
          world,
          'csi-provider',
          args,
          { ...env, ...awsCredentials, KUBECONFIG: kubeconfig },
          join(dir, 'csi-provider.log'),
        ),
      );
    }
    const [webhook, controller, csi] = processes as [RoleProcess, RoleProcess, RoleProcess];

    const admission = world.bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    let caPem = '';
    await untilReady(webhook, 'the webhook to patch its caBundle and answer /readyz', async () => {
      const current = await admission.readMutatingWebhookConfiguration({ name: configuration.metadata.name });
      const bundle = current.webhooks?.[0]?.clientConfig.caBundle;
      if (!bundle) return false;
      caPem = Buffer.from(bundle, 'base64').toString('utf8');
      return (await httpStatus(`${webhookUrl}/readyz`, caPem)) === 200;
    });
    say(
      `  webhook ready on ${webhookUrl} (CA and serving certificate in Secret ${namespace}/${releaseName}-webhook-tls, caBundle patched)`,
    );
    await untilReady(
      controller,
      'the controller to answer /readyz',
      async () => (await httpStatus(`http://127.0.0.1:${controllerPort}/readyz`)) === 200,
    );
    say(`  controller ready (caches synced; leader of Lease ${releaseName}-controller)`);
    await untilReady(csi, 'the CSI provider socket to answer Version', async () => {
      const client = connectProvider(csiSocket);
      try {
        return (await client.version()).runtime_name !== undefined;
      } finally {
        client.close();
      }
    });
    say(`  CSI provider ready on ${csiSocket}`);
    return {
      name: releaseName,
      namespace,
      rendered,
      webhookConfigurationName: configuration.metadata.name,
      webhookUrl,
      csiSocket,
      controllerServiceAccount: podSpec(controllerDeployment).serviceAccountName,
      processes,
      logs: (lines = 20) =>
        processes.map((role) => `--- ${role.role} (last lines) ---\n${role.tail(lines)}`).join('\n'),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
