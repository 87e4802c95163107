/**
 * The real Kubernetes test bed: etcd + kube-apiserver + kube-controller-manager built from source
 * (build.sh), started on free loopback ports in a temp dir. `startTestBed()` starts one (once per
 * integration run) and writes an info file; test processes re-attach with `connectTestBed()`
 * through the `SMK_TEST_BED` variable that names it. Each test works in its own namespace.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  generateKeyPair,
  issueClientCertificate,
  issueServingCertificate,
} from '../../src/webhook/tls/pki.ts';
import { resolveBinaries } from './binaries.ts';
import {
  auditPaths,
  auditPolicy,
  type ControlPlaneLayout,
  etcdArgs,
  kubeApiserverArgs,
  kubeControllerManagerArgs,
  kubernetesServiceIp,
  kubeSchedulerArgs,
  type NodeControlPlaneLayout,
  serviceAccountIssuer,
} from './control-plane.ts';
import { kubeConfigFromText, renderKubeConfig } from './kubeconfig.ts';
import { freePorts, type ManagedProcess, startProcess, tailFile } from './processes.ts';

export { serviceAccountIssuer };

export interface TestBed {
  /** https://127.0.0.1:PORT (a node bed: https://GATEWAY:PORT, where pods reach it too) */
  readonly serverUrl: string;
  readonly caPem: string;
  /** The bed's CA (certificate and key): the node bed issues its kubelet's and kube-proxy's certificates with it. */
  readonly ca: CertificateAuthority;
  /** Admin (system:masters) kubeconfig file, for child processes and people. */
  readonly kubeConfigPath: string;
  /** Admin client. */
  readonly kubeConfig: KubeConfig;
  /** The JSON file `connectTestBed()` reads; export it as SMK_TEST_BED. */
  readonly infoPath: string;
  /** The bed's temp dir (data, certificates, logs). */
  readonly dir: string;
  /** The control plane's processes (those the starting bed owns). */
  readonly processes: readonly { readonly name: string; readonly pid: number; readonly logPath: string }[];
  /** Creates `<prefix>-<random>` and waits until its `default` ServiceAccount exists (Pods need it). */
  newNamespace(prefix: string): Promise<string>;
  /** A client that authenticates with a client certificate as `user` in `groups`. */
  kubeConfigFor(user: string, groups?: readonly string[]): Promise<KubeConfig>;
  /** A TokenRequest token for an existing ServiceAccount; audience defaults to the API server's. */
  serviceAccountToken(namespace: string, name: string, audience?: string): Promise<string>;
  /** A client that authenticates as an existing ServiceAccount (bearer token). */
  kubeConfigForServiceAccount(namespace: string, name: string): Promise<KubeConfig>;
  /** The last lines of every process's log, headed by its name: print it when a test fails. */
  logs(linesPerProcess?: number): string;
  /**
   * The bed that started the processes stops them (only those) and removes its temp dir. A bed
   * from connectTestBed() deletes the namespaces it created and leaves the processes running.
   */
  stop(): Promise<void>;
}

export interface TestBedOptions {
  /** Build and startup progress; default: stderr lines prefixed with `[testbed]`. */
  readonly progress?: (line: string) => void;
  /** Keep the temp dir after stop() for inspection (also `SMK_TEST_BED_KEEP=1`). */
  readonly keepDir?: boolean;
  /** Dir holding etcd, kube-apiserver, kube-controller-manager; default `SMK_TESTBED_BIN`, else build.sh's cache. */
  readonly binDir?: string;
  /** Limit for the control plane to become ready once the binaries are there. */
  readonly readyTimeoutMs?: number;
  /**
   * The control plane of a node bed (test/testbed/node): the API server on `address` (the bridge
   * gateway pods reach) with kubelet client credentials, every controller, and kube-scheduler.
   */
  readonly node?: { readonly address: string; readonly kubeScheduler: string };
}

const infoSchema = z.object({
  version: z.literal(1),
  dir: z.string(),
  serverUrl: z.string().startsWith('https://'),
  caCertPath: z.string(),
  caKeyPath: z.string(),
  kubeConfigPath: z.string(),
  processes: z.array(z.object({ name: z.string(), pid: z.number().int(), logPath: z.string() })),
});
type BedInfo = z.infer<typeof infoSchema>;

const adminUser = 'smk-testbed-admin';
const defaultReadyTimeoutMs = 120_000;

function defaultProgress(line: string): void {
  process.stderr.write(`[testbed] ${line}\n`);
}

export async function startTestBed(options: TestBedOptions = {}): Promise<TestBed> {
  const progress = options.progress ?? defaultProgress;
  const keepDir = options.keepDir ?? process.env.SMK_TEST_BED_KEEP === '1';
  const began = performance.now();
  const binaries = await resolveBinaries(progress, options.binDir ?? process.env.SMK_TESTBED_BIN);
  const [[etcdClientPort, etcdPeerPort, apiserverPort], dir] = await Promise.all([
    freePorts(3),
    mkdtemp(join(tmpdir(), 'smk-testbed-')),
  ]);
  const startedAt = performance.now();
  if (etcdClientPort === undefined || etcdPeerPort === undefined || apiserverPort === undefined) {
    throw new Error('could not allocate loopback ports');
  }
  const pkiDir = join(dir, 'pki');
  const logsDir = join(dir, 'logs');
  await Promise.all([mkdir(pkiDir), mkdir(logsDir)]);
  let layout: ControlPlaneLayout = {
    dataDir: join(dir, 'etcd'),
    etcdClientPort,
    etcdPeerPort,
    apiserverPort,
    caCertPath: join(pkiDir, 'ca.crt'),
    servingCertPath: join(pkiDir, 'apiserver.crt'),
    servingKeyPath: join(pkiDir, 'apiserver.key'),
    serviceAccountKeyPath: join(pkiDir, 'sa.key'),
    serviceAccountPublicKeyPath: join(pkiDir, 'sa.pub'),
    controllerManagerKubeConfigPath: join(dir, 'kube-controller-manager.kubeconfig'),
    auditPolicyPath: auditPaths(dir).policy,
    auditLogPath: auditPaths(dir).log,
  };
  const caKeyPath = join(pkiDir, 'ca.key');
  const node: NodeControlPlaneLayout | undefined = options.node && {
    address: options.node.address,
    kubeletClientCertPath: join(pkiDir, 'apiserver-kubelet-client.crt'),
    kubeletClientKeyPath: join(pkiDir, 'apiserver-kubelet-client.key'),
    caKeyPath,
    schedulerKubeConfigPath: join(dir, 'kube-scheduler.kubeconfig'),
  };
  if (node) layout = { ...layout, node };
  const serverUrl = `https://${node?.address ?? '127.0.0.1'}:${apiserverPort}`;
  const ca = await createCertificateAuthority({ commonName: 'smk-testbed-ca' });
  const [serving, admin, controllerManager, serviceAccountKeys] = await Promise.all([
    issueServingCertificate(ca, {
      commonName: 'kube-apiserver',
      dnsNames: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
      ipAddresses: ['127.0.0.1', kubernetesServiceIp, ...(node ? [node.address] : [])],
    }),
    issueClientCertificate(ca, { user: adminUser, groups: ['system:masters'] }),
    issueClientCertificate(ca, { user: 'system:kube-controller-manager' }),
    generateKeyPair(),
  ]);
  const kubeConfigPath = join(dir, 'admin.kubeconfig');
  await Promise.all([
    writeFile(auditPaths(dir).policy, auditPolicy),
    writeFile(layout.caCertPath, ca.certPem),
    writeSecretFile(caKeyPath, ca.keyPem),
    writeFile(layout.servingCertPath, serving.certPem),
    writeSecretFile(layout.servingKeyPath, serving.keyPem),
    writeSecretFile(layout.serviceAccountKeyPath, serviceAccountKeys.privateKeyPem),
    writeFile(layout.serviceAccountPublicKeyPath, serviceAccountKeys.publicKeyPem),
    writeSecretFile(
      kubeConfigPath,
      renderKubeConfig({ server: serverUrl, caPem: ca.certPem, credentials: { name: adminUser, ...admin } }),
    ),
    writeSecretFile(
      layout.controllerManagerKubeConfigPath,
      renderKubeConfig({
        server: serverUrl,
        caPem: ca.certPem,
        credentials: { name: 'system:kube-controller-manager', ...controllerManager },
      }),
    ),
    node && writeNodeControlPlaneCredentials(ca, serverUrl, node),
  ]);

  const processes: ManagedProcess[] = [];
  const stopAll = async (): Promise<void> => {
    const [etcd, ...rest] = processes;
    await Promise.all(rest.map((child) => child.stop()));
    await etcd?.stop();
  };
  const readyBy = Date.now() + (options.readyTimeoutMs ?? defaultReadyTimeoutMs);
  const adminTls = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
  const kubeConfig = kubeConfigFromText(await readFile(kubeConfigPath, 'utf8'));
  try {
    // The API server waits for etcd by itself; starting both at once saves a round of polling.
    processes.push(startProcess('etcd', binaries.etcd, etcdArgs(layout), join(logsDir, 'etcd.log')));
    processes.push(
      startProcess(
        'kube-apiserver',
        binaries.kubeApiserver,
        kubeApiserverArgs(layout),
        join(logsDir, 'kube-apiserver.log'),
      ),
    );
    progress(`starting etcd and kube-apiserver on ${serverUrl} (dir ${dir})`);
    await untilExit(processes, (signal) => waitForReadyz(serverUrl, adminTls, readyBy, signal));
    progress(`kube-apiserver ready after ${seconds(startedAt)}; starting kube-controller-manager`);
    // The controller manager gives up if the API server is not healthy within 10s, so it starts now.
    processes.push(
      startProcess(
        'kube-controller-manager',
        binaries.kubeControllerManager,
        kubeControllerManagerArgs(layout),
        join(logsDir, 'kube-controller-manager.log'),
      ),
    );
    if (node && options.node) {
      processes.push(
        startProcess(
          'kube-scheduler',
          options.node.kubeScheduler,
          kubeSchedulerArgs(node),
          join(logsDir, 'kube-scheduler.log'),
        ),
      );
    }
    await untilExit(processes, (signal) =>
      waitForServiceAccount(kubeConfig, 'default', 'default', readyBy, signal),
    );
  } catch (error) {
    await stopAll();
    const logs = processes.map(
      (child) => `==> ${child.name} (${child.logPath}) <==\n${tailFile(child.logPath, 60)}`,
    );
    throw new Error(
      `test bed failed to start: ${error instanceof Error ? error.message : String(error)}\n` +
        `${logs.join('\n')}\n(temp dir kept: ${dir})`,
      { cause: error },
    );
  }

  const info: BedInfo = {
    version: 1,
    dir,
    serverUrl,
    caCertPath: layout.caCertPath,
    caKeyPath,
    kubeConfigPath,
    processes: processes.map(({ name, pid, logPath }) => ({ name, pid, logPath })),
  };
  const infoPath = join(dir, 'testbed.json');
  await writeFile(infoPath, `${JSON.stringify(info, null, 2)}\n`);
  progress(`ready in ${seconds(startedAt)} (${seconds(began)} including the binaries check)`);

  let stopped = false;
  return createBed(info, infoPath, ca, kubeConfig, async () => {
    if (stopped) return;
    stopped = true;
    await stopAll();
    if (!keepDir) await rm(dir, { recursive: true, force: true });
  });
}

/** Re-attaches to the bed named by `SMK_TEST_BED`. Throws when there is none: integration tests never skip. */
export async function connectTestBed(): Promise<TestBed> {
  const infoPath = process.env.SMK_TEST_BED;
  if (infoPath === undefined || infoPath === '') {
    throw new Error(
      'SMK_TEST_BED is not set: integration tests need the Kubernetes test bed. Run them with `npm test` ' +
        '(which starts one), or start one with `npm run testbed` and export the variables it prints.',
    );
  }
  let info: BedInfo;
  try {
    info = infoSchema.parse(JSON.parse(await readFile(infoPath, 'utf8')));
  } catch (error) {
    throw new Error(
      `SMK_TEST_BED=${infoPath} does not name a readable test bed info file: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  for (const child of info.processes) {
    if (!isAlive(child.pid)) {
      throw new Error(
        `the test bed in ${info.dir} is not running: ${child.name} (pid ${child.pid}) is gone; its log:\n` +
          tailFile(child.logPath, 40),
      );
    }
  }
  const [caPem, caKeyPem, kubeConfigText] = await Promise.all([
    readFile(info.caCertPath, 'utf8'),
    readFile(info.caKeyPath, 'utf8'),
    readFile(info.kubeConfigPath, 'utf8'),
  ]);
  const ca: CertificateAuthority = {
    certPem: caPem,
    keyPem: caKeyPem,
    notAfter: new Date(new X509Certificate(caPem).validTo),
  };
  const kubeConfig = kubeConfigFromText(kubeConfigText);
  let created: string[] = [];
  const bed = createBed(info, infoPath, ca, kubeConfig, async () => {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const names = created;
    created = [];
    await Promise.all(
      names.map((name) =>
        core.deleteNamespace({ name }).catch((error: unknown) => {
          if (!(error instanceof ApiException && error.code === 404)) throw error;
        }),
      ),
    );
  });
  return {
    ...bed,
    async newNamespace(prefix: string): Promise<string> {
      const name = await bed.newNamespace(prefix);
      created.push(name);
      return name;
    },
  };
}

function createBed(
  info: BedInfo,
  infoPath: string,
  ca: CertificateAuthority,
  kubeConfig: KubeConfig,
  stop: () => Promise<void>,
): TestBed {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const caPem = ca.certPem;
  const serverUrl = info.serverUrl;
  const serviceAccountToken = async (namespace: string, name: string, audience?: string): Promise<string> => {
    const response = await core.createNamespacedServiceAccountToken({
      namespace,
      name,
      body: { spec: { audiences: audience === undefined ? [] : [audience], expirationSeconds: 3600 } },
    });
    const token = response.status?.token;
    if (token === undefined || token === '')
      throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
    return token;
  };
  return {
    serverUrl,
    caPem,
    ca,
    kubeConfigPath: info.kubeConfigPath,
    kubeConfig,
    infoPath,
    dir: info.dir,
    processes: info.processes,
    async newNamespace(prefix: string): Promise<string> {
      const base = prefix
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 50);
      const name = `${base || 'test'}-${randomBytes(3).toString('hex')}`;
      await core.createNamespace({ body: { metadata: { name, labels: { 'smk.dev/test-bed': 'true' } } } });
      await waitForServiceAccount(kubeConfig, name, 'default', Date.now() + 30_000);
      return name;
    },
    async kubeConfigFor(user: string, groups: readonly string[] = []): Promise<KubeConfig> {
      const cert = await issueClientCertificate(ca, { user, groups, validForDays: 1 });
      return kubeConfigFromText(
        renderKubeConfig({ server: serverUrl, caPem, credentials: { name: user, ...cert } }),
      );
    },
    serviceAccountToken,
    async kubeConfigForServiceAccount(namespace: string, name: string): Promise<KubeConfig> {
      const token = await serviceAccountToken(namespace, name);
      return kubeConfigFromText(
        renderKubeConfig({
          server: serverUrl,
          caPem,
          credentials: { name: `system:serviceaccount:${namespace}:${name}`, token },
          namespace,
        }),
      );
    },
    logs(linesPerProcess = 80): string {
      return info.processes
        .map(
          (child) => `==> ${child.name} (${child.logPath}) <==\n${tailFile(child.logPath, linesPerProcess)}`,
        )
        .join('\n');
    },
    stop,
  };
}

/** Resolves with the wait, or rejects as soon as one of the processes exits; either way the wait stops. */
async function untilExit<T>(
  processes: readonly ManagedProcess[],
  wait: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const waiting = wait(abort.signal);
  const exits = processes.map((child) =>
    child.exited.then((how) => {
      throw new Error(`${child.name} exited (${how})`);
    }),
  );
  try {
    return await Promise.race([waiting, ...exits]);
  } finally {
    abort.abort();
  }
}

interface ClientTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

async function waitForReadyz(
  serverUrl: string,
  tls: ClientTls,
  readyBy: number,
  signal: AbortSignal,
): Promise<void> {
  let last = 'no answer yet';
  while (Date.now() < readyBy && !signal.aborted) {
    try {
      const { status, body } = await httpsGet(`${serverUrl}/readyz?verbose`, tls);
      if (status === 200) return;
      last = `HTTP ${status}: ${body
        .split('\n')
        .filter((line) => line.includes('failed'))
        .join('; ')}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(250);
  }
  throw new Error(`kube-apiserver /readyz did not turn ready in time (last: ${last})`);
}

async function waitForServiceAccount(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  readyBy: number,
  signal?: AbortSignal,
): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  let last = 'not found';
  while (Date.now() < readyBy && signal?.aborted !== true) {
    try {
      await core.readNamespacedServiceAccount({ namespace, name });
      return;
    } catch (error) {
      last = error instanceof ApiException ? `HTTP ${error.code}` : String(error);
    }
    await sleep(100);
  }
  throw new Error(`ServiceAccount ${namespace}/${name} was not created in time (last: ${last})`);
}

async function httpsGet(url: string, tls: ClientTls): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The API server's client certificate towards kubelets, and kube-scheduler's kubeconfig. */
async function writeNodeControlPlaneCredentials(
  ca: CertificateAuthority,
  serverUrl: string,
  node: NodeControlPlaneLayout,
): Promise<void> {
  const [kubeletClient, scheduler] = await Promise.all([
    // As kubeadm's apiserver-kubelet-client: the kubelet authorizes it through the API server.
    issueClientCertificate(ca, { user: 'kube-apiserver-kubelet-client', groups: ['system:masters'] }),
    issueClientCertificate(ca, { user: 'system:kube-scheduler' }),
  ]);
  await Promise.all([
    writeFile(node.kubeletClientCertPath, kubeletClient.certPem),
    writeSecretFile(node.kubeletClientKeyPath, kubeletClient.keyPem),
    writeSecretFile(
      node.schedulerKubeConfigPath,
      renderKubeConfig({
        server: serverUrl,
        caPem: ca.certPem,
        credentials: { name: 'system:kube-scheduler', ...scheduler },
      }),
    ),
  ]);
}

async function writeSecretFile(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)}s`;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}
