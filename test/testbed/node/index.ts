/**
 * The node bed: the test bed's control plane made reachable from a pod network, plus one real
 * node — containerd + runc, CNI bridge networking, the kubelet, kube-proxy — and the EKS pod
 * identity webhook stand-in, so pods really run. Root, Linux, one per machine (lock.ts).
 *
 * Order matters: lock → containment (bridge, Service route, FORWARD drop) → control plane on the
 * bridge gateway → containerd + images → kubelet (node Ready) → kube-proxy (then the drop is made
 * first again) → pod identity webhook. Stop undoes it all (host.ts) and fails when anything is left.
 * `startNodeBed()` starts one; test processes attach with `connectNodeBed()` through SMK_NODE_BED.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { z } from 'zod';
import { issueClientCertificate } from '../../../src/webhook/tls/pki.ts';
import { connectTestBed, startTestBed, type TestBed } from '../index.ts';
import { renderKubeConfig } from '../kubeconfig.ts';
import { type ManagedProcess, startProcess, tailFile } from '../processes.ts';
import { checkNodeArtifacts, type NodeArtifacts } from './artifacts.ts';
import {
  cniConfig,
  containerdConfig,
  containerdEnv,
  kubeletArgs,
  kubeletConfig,
  kubeProxyArgs,
  kubeProxyConfig,
  type NodeLayout,
  nodeLayout,
  nodeName,
  nodeNetwork,
  podResolvConf,
} from './config.ts';
import {
  applyContainment,
  assertContained,
  cleanHost,
  ensureContainmentFirst,
  hostLeftovers,
  recordHostBefore,
} from './host.ts';
import { acquireLock, type HeldLock } from './lock.ts';
import { type PodIdentityWebhook, startPodIdentityWebhook } from './pod-identity-webhook.ts';
import { resolveSmkImage, type SmkImage } from './smk-image.ts';

const exec = promisify(execFile);

export { nodeName, nodeNetwork };

export interface NodeBed {
  /** The control plane (the plain bed's API, listening on the bridge gateway). */
  readonly bed: TestBed;
  readonly nodeName: string;
  /** The bridge gateway: the node's IP, where pods reach the API server and host services. */
  readonly gateway: string;
  /** The smk image imported into the node (chart values image.repository / image.tag). */
  readonly smkImage: SmkImage;
  /** The JSON file `connectNodeBed()` reads; export it as SMK_NODE_BED. */
  readonly infoPath: string;
  /** kubectl built with the node binaries (for people and failure reports). */
  readonly kubectl: string;
  /** The node's containerd socket (`ctr --address`; `npm run image` imports there via SMK_CONTAINERD_ADDRESS). */
  readonly containerdSocket: string;
  /** Imports a docker-archive or OCI archive into the node's containerd. */
  importImage(archive: string): Promise<void>;
  /** The last lines of every process's log (control plane and node), for failure reports. */
  logs(linesPerProcess?: number): string;
  /** The owner stops everything and cleans the machine; an attached bed only lets go of its namespaces. */
  stop(): Promise<void>;
}

export interface NodeBedOptions {
  readonly progress?: (line: string) => void;
  /** Keep the temp dirs after stop() (also SMK_TEST_BED_KEEP=1). */
  readonly keepDir?: boolean;
  /** AWS region the pod identity webhook gives pods (as EKS gives its cluster's). */
  readonly region?: string;
}

const infoSchema = z.object({
  version: z.literal(1),
  dir: z.string(),
  bedInfoPath: z.string(),
  kubectl: z.string(),
  containerdSocket: z.string(),
  smkImage: z.object({ archive: z.string(), repository: z.string(), tag: z.string() }),
  processes: z.array(z.object({ name: z.string(), pid: z.number().int(), logPath: z.string() })),
});
type NodeBedInfo = z.infer<typeof infoSchema>;

function defaultProgress(line: string): void {
  process.stderr.write(`[node-bed] ${line}\n`);
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)}s`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function startNodeBed(options: NodeBedOptions = {}): Promise<NodeBed> {
  const progress = options.progress ?? defaultProgress;
  const keepDir = options.keepDir ?? process.env.SMK_TEST_BED_KEEP === '1';
  const began = performance.now();
  const artifacts = checkNodeArtifacts();
  const smkImage = await resolveSmkImage();
  progress(
    `smk image ${smkImage.repository}:${smkImage.tag} (${smkImage.archive}) ready after ${seconds(began)}`,
  );

  const dir = await mkdtemp(join(tmpdir(), 'smk-node-bed-'));
  const layout = nodeLayout(dir, '');
  const lock = await takeLock(dir, layout, progress).catch(async (error: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw error;
  });

  const processes: ManagedProcess[] = [];
  let bed: TestBed | undefined;
  let webhook: PodIdentityWebhook | undefined;
  const teardown = async (): Promise<string[]> => {
    await webhook?.stop().catch(() => undefined);
    // The kubelet first (it would restart what is stopped), containerd last; then the machine.
    for (const name of ['kubelet', 'kube-proxy', 'containerd']) {
      await processes.find((child) => child.name === name)?.stop();
    }
    const errors = await cleanHost({
      dir,
      containerdSocket: layout.containerdSocket,
      before: lock.lock.before,
    });
    await bed?.stop().catch((error: unknown) => errors.push(`control plane: ${String(error)}`));
    const left = await hostLeftovers({
      dir,
      containerdSocket: layout.containerdSocket,
      before: lock.lock.before,
    });
    return [...errors, ...left.map((what) => `left on the machine: ${what}`)];
  };
  const record = async (child: ManagedProcess, command: string): Promise<ManagedProcess> => {
    processes.push(child);
    if (child.pid > 0) await lock.addProcess({ pid: child.pid, command });
    return child;
  };

  try {
    await mkdir(join(dir, 'logs'));
    // Containment before anything that could create a pod or a Service.
    await applyContainment();
    await assertContained();
    progress(
      `containment in place (${nodeNetwork.bridge} ${nodeNetwork.gateway}, Service range routed to it, FORWARD drop first)`,
    );

    const startedControlPlane = performance.now();
    bed = await startTestBed({
      progress,
      keepDir,
      node: { address: nodeNetwork.gateway, kubeScheduler: artifacts.kubeScheduler },
    });
    await lock.addDir(bed.dir);
    for (const child of bed.processes) {
      const cmdline = await readFile(`/proc/${child.pid}/cmdline`, 'utf8').catch(() => '');
      await lock.addProcess({ pid: child.pid, command: cmdline.split('\0')[0] ?? '' });
    }
    progress(`control plane up in ${seconds(startedControlPlane)} at ${bed.serverUrl}`);
    const running = bed;
    const fullLayout: NodeLayout = nodeLayout(dir, join(bed.dir, 'pki', 'ca.crt'));

    const startedContainerd = performance.now();
    await startContainerd(fullLayout, record, processes);
    for (const archive of [...artifacts.images, smkImage.archive]) await importImage(fullLayout, archive);
    progress(
      `containerd up, ${artifacts.images.length + 1} images imported in ${seconds(startedContainerd)}`,
    );

    const startedKubelet = performance.now();
    await startKubelet(fullLayout, running, artifacts, record);
    await untilExit(processes, () => waitForNodeReady(running, Date.now() + 120_000));
    progress(`kubelet up, node ${nodeName} Ready in ${seconds(startedKubelet)}`);

    const startedProxy = performance.now();
    await startKubeProxy(fullLayout, running, artifacts, record);
    await untilExit(processes, () => waitForProxyRules(Date.now() + 60_000));
    // kube-proxy puts its FORWARD jumps at the top: the drop goes back to first place.
    await ensureContainmentFirst('iptables');
    await ensureContainmentFirst('ip6tables');
    await assertContained();
    progress(`kube-proxy rules in place in ${seconds(startedProxy)}; containment re-checked`);

    webhook = await startPodIdentityWebhook({
      kubeConfig: running.kubeConfig,
      ca: running.ca,
      region: options.region ?? 'us-east-1',
    });

    const info: NodeBedInfo = {
      version: 1,
      dir,
      bedInfoPath: running.infoPath,
      kubectl: artifacts.kubectl,
      containerdSocket: fullLayout.containerdSocket,
      smkImage,
      processes: processes.map(({ name, pid, logPath }) => ({ name, pid, logPath })),
    };
    const infoPath = join(dir, 'node-bed.json');
    await writeFile(infoPath, `${JSON.stringify(info, null, 2)}\n`);
    progress(`node bed ready in ${seconds(began)}`);

    let stopped = false;
    return nodeBedFrom(info, infoPath, running, async () => {
      if (stopped) return;
      stopped = true;
      const problems = await teardown();
      await lock.release();
      if (!keepDir) await rm(dir, { recursive: true, force: true });
      if (problems.length > 0) throw new Error(`node bed cleanup was incomplete: ${problems.join('; ')}`);
    });
  } catch (error) {
    const logs = [
      ...(bed ? [bed.logs(40)] : []),
      ...processes.map((child) => `==> ${child.name} (${child.logPath}) <==\n${tailFile(child.logPath, 40)}`),
    ].join('\n');
    const problems = await teardown();
    await lock.release();
    throw new Error(
      `node bed failed to start: ${error instanceof Error ? error.message : String(error)}\n${logs}` +
        (problems.length > 0 ? `\ncleanup after the failure was incomplete: ${problems.join('; ')}` : '') +
        `\n(temp dir kept: ${dir})`,
      { cause: error },
    );
  }
}

/** The machine's one node bed lock; a dead owner's leftovers are cleaned up first. */
async function takeLock(
  dir: string,
  layout: NodeLayout,
  progress: (line: string) => void,
): Promise<HeldLock> {
  return acquireLock(
    async () => ({
      command: process.argv.slice(1).join(' '),
      startedAt: new Date().toISOString(),
      dir,
      containerdSocket: layout.containerdSocket,
      before: await recordHostBefore(),
    }),
    async (stale) => {
      progress(
        `the node bed of pid ${stale.pid} (dir ${stale.dir}) died without cleaning up: cleaning up after it`,
      );
      const errors = await cleanHost({
        dir: stale.dir,
        containerdSocket: stale.containerdSocket,
        before: stale.before,
        orphans: stale.processes,
      });
      const left = await hostLeftovers({
        dir: stale.dir,
        containerdSocket: stale.containerdSocket,
        before: stale.before,
      });
      if (errors.length > 0 || left.length > 0) {
        throw new Error(
          `could not clean up after the dead node bed of pid ${stale.pid}: ${[...errors, ...left].join('; ')}`,
        );
      }
      for (const dir of [stale.dir, ...stale.dirs]) await rm(dir, { recursive: true, force: true });
    },
  );
}

/** Re-attaches to the node bed named by SMK_NODE_BED (and its control plane by SMK_TEST_BED). */
export async function connectNodeBed(): Promise<NodeBed> {
  const infoPath = process.env.SMK_NODE_BED;
  if (infoPath === undefined || infoPath === '') {
    throw new Error(
      'SMK_NODE_BED is not set: node tests need the node bed. Run them with `npm test -- --node` ' +
        '(which starts one), or start one with `npm run testbed -- --node` and export the variables it prints.',
    );
  }
  const info = infoSchema.parse(JSON.parse(await readFile(infoPath, 'utf8')));
  const bed = await connectTestBed();
  return nodeBedFrom(info, infoPath, bed, () => bed.stop());
}

function nodeBedFrom(info: NodeBedInfo, infoPath: string, bed: TestBed, stop: () => Promise<void>): NodeBed {
  return {
    bed,
    nodeName,
    gateway: nodeNetwork.gateway,
    smkImage: info.smkImage,
    infoPath,
    kubectl: info.kubectl,
    containerdSocket: info.containerdSocket,
    importImage: (archive) => ctrImport(info.containerdSocket, archive),
    logs(linesPerProcess = 60) {
      return [
        bed.logs(linesPerProcess),
        ...info.processes.map(
          (child) => `==> ${child.name} (${child.logPath}) <==\n${tailFile(child.logPath, linesPerProcess)}`,
        ),
      ].join('\n');
    },
    stop,
  };
}

type RecordProcess = (child: ManagedProcess, command: string) => Promise<ManagedProcess>;

async function startContainerd(
  layout: NodeLayout,
  record: RecordProcess,
  processes: readonly ManagedProcess[],
): Promise<void> {
  await mkdir(layout.cniConfDir, { recursive: true });
  await mkdir(layout.cniIpamDir, { recursive: true });
  const configPath = join(layout.dir, 'containerd.toml');
  await writeFile(configPath, containerdConfig(layout));
  await writeFile(join(layout.cniConfDir, '10-smk-node-bed.conflist'), cniConfig(layout));
  const command = await commandPath('containerd');
  await record(
    startProcess(
      'containerd',
      command,
      ['--config', configPath],
      join(layout.dir, 'logs', 'containerd.log'),
      containerdEnv,
    ),
    command,
  );
  await untilExit(processes, async () => {
    const readyBy = Date.now() + 30_000;
    let last = '';
    while (Date.now() < readyBy) {
      try {
        await exec('ctr', ['--address', layout.containerdSocket, 'version']);
        return;
      } catch (error) {
        last = (error as { stderr?: string }).stderr ?? String(error);
      }
      await sleep(100);
    }
    throw new Error(`containerd did not answer on ${layout.containerdSocket}: ${last.trim()}`);
  });
}

async function importImage(layout: NodeLayout, archive: string): Promise<void> {
  await ctrImport(layout.containerdSocket, archive);
}

async function ctrImport(socket: string, archive: string): Promise<void> {
  try {
    await exec('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'import', archive], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    throw new Error(
      `ctr images import ${archive} failed: ${((error as { stderr?: string }).stderr ?? String(error)).trim()}`,
    );
  }
}

async function startKubelet(
  layout: NodeLayout,
  bed: TestBed,
  artifacts: NodeArtifacts,
  record: RecordProcess,
): Promise<void> {
  const credentials = await issueClientCertificate(bed.ca, {
    user: `system:node:${nodeName}`,
    groups: ['system:nodes'],
  });
  await Promise.all([
    writeFile(layout.resolvConfPath, podResolvConf),
    writeFile(layout.kubeletConfigPath, kubeletConfig(layout)),
    writeFile(
      layout.kubeletKubeConfigPath,
      renderKubeConfig({
        server: bed.serverUrl,
        caPem: bed.caPem,
        credentials: { name: `system:node:${nodeName}`, ...credentials },
      }),
      { mode: 0o600 },
    ),
    mkdir(layout.volumePluginDir, { recursive: true }),
  ]);
  await record(
    startProcess('kubelet', artifacts.kubelet, kubeletArgs(layout), join(layout.dir, 'logs', 'kubelet.log')),
    artifacts.kubelet,
  );
}

async function startKubeProxy(
  layout: NodeLayout,
  bed: TestBed,
  artifacts: NodeArtifacts,
  record: RecordProcess,
): Promise<void> {
  // system:kube-proxy is bound to system:node-proxier by the API server's bootstrap RBAC.
  const credentials = await issueClientCertificate(bed.ca, { user: 'system:kube-proxy' });
  await Promise.all([
    writeFile(layout.kubeProxyConfigPath, kubeProxyConfig(layout)),
    writeFile(
      layout.kubeProxyKubeConfigPath,
      renderKubeConfig({
        server: bed.serverUrl,
        caPem: bed.caPem,
        credentials: { name: 'system:kube-proxy', ...credentials },
      }),
      { mode: 0o600 },
    ),
  ]);
  await record(
    startProcess(
      'kube-proxy',
      artifacts.kubeProxy,
      kubeProxyArgs(layout),
      join(layout.dir, 'logs', 'kube-proxy.log'),
    ),
    artifacts.kubeProxy,
  );
}

async function waitForNodeReady(bed: TestBed, readyBy: number): Promise<void> {
  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  let last = 'not registered';
  while (Date.now() < readyBy) {
    try {
      const node = await core.readNode({ name: nodeName });
      const ready = node.status?.conditions?.find((condition) => condition.type === 'Ready');
      if (ready?.status === 'True') return;
      last = `Ready=${ready?.status ?? 'unknown'}: ${ready?.message ?? ''}`;
    } catch {
      // not registered yet
    }
    await sleep(200);
  }
  throw new Error(`node ${nodeName} did not become Ready (last: ${last})`);
}

/** kube-proxy has synced once when the `kubernetes` Service's rule is in the nat table. */
async function waitForProxyRules(readyBy: number): Promise<void> {
  while (Date.now() < readyBy) {
    const { stdout } = await exec('iptables', ['-t', 'nat', '-S']).catch(() => ({ stdout: '' }));
    if (stdout.includes('default/kubernetes:https')) return;
    await sleep(200);
  }
  throw new Error('kube-proxy did not write the rules of the `kubernetes` Service in time');
}

/** Resolves with the wait, or rejects as soon as one of the processes exits. */
async function untilExit<T>(processes: readonly ManagedProcess[], wait: () => Promise<T>): Promise<T> {
  const exits = processes.map((child) =>
    child.exited.then((how) => {
      throw new Error(`${child.name} exited (${how}); its log:\n${tailFile(child.logPath, 30)}`);
    }),
  );
  return Promise.race([wait(), ...exits]);
}

async function commandPath(command: string): Promise<string> {
  const { stdout } = await exec('sh', ['-c', `command -v ${command}`]);
  return stdout.trim();
}
