/**
 * `npm run bench:csi`: CSI Mount of 5 objects (9 files) over the provider socket, smk beside ASCP
 * (aws/secrets-store-csi-driver-provider-aws, built from ../shared/third-party by
 * bench/tools/build-peers.sh), the same Mount requests against the same moto (through a counting
 * proxy) and the same kube-apiserver (the ServiceAccount's IRSA annotation).
 *
 * smk runs as shipped (dist/smk.mjs). Each round starts both providers afresh (their own processes on core 0; this process, the load,
 * on core 1), times the first Mount once the socket answers, then re-mounts with the versions the
 * first reply gave back (what the driver does on each rotation poll). Every reply must carry the
 * 9 files with the same contents from both providers. ASCP reads Kubernetes credentials from the
 * in-cluster paths: it runs in a private mount namespace (unshare -m) where
 * /var/run/secrets/kubernetes.io/serviceaccount holds a token of its own ServiceAccount (get
 * serviceaccounts, pods, nodes: its chart's rights) and the bed's CA.
 * Goals: issue 7 (re-mount p99 ≤ 20 ms, 0 value reads after the first mount), issue 19 (first
 * Mount after the provider starts ≤ ASCP's).
 *   node bench/csi.ts [--rounds N] [--mounts N] [--profile DIR] [--bundle FILE]
 * --bundle FILE: run that build of smk (e.g. a copy of another commit's dist/smk.mjs) instead of
 * bundling this tree, to compare two builds on the same machine.
 * --profile DIR: smk runs with --cpu-prof into DIR and logs at info to DIR/smk-<round>.log
 * (its start's steps with their times), to see where a start and a first mount go.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { connectProvider, type ProviderClient } from '../src/csi/client.ts';
import type { MountRequest, MountResponse } from '../src/csi/protocol.ts';
import { startAwsProxy } from '../test/harness/aws-proxy.ts';
import { startWorld } from '../test/harness/world.ts';
import { connectTestBed } from '../test/testbed/index.ts';
import {
  buildPeers,
  buildSmk,
  machineLoad,
  onServerCore,
  type PeerFigure,
  pinSelfToLoadCore,
  printPeerTable,
  spreadOf,
} from './peers.ts';
import { percentile, printTable } from './table.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    mounts: { type: 'string', default: '40' },
    profile: { type: 'string' },
    bundle: { type: 'string' },
  },
});
const profileDir = values.profile;
if (profileDir !== undefined) await mkdir(profileDir, { recursive: true });
const rounds = Number(values.rounds);
const mounts = Number(values.mounts);
const region = 'us-east-1';
const objectCount = 5;
const fileCount = objectCount + 4;

const [peers, smkBundle] = await Promise.all([buildPeers(), values.bundle ?? buildSmk()]);
process.stderr.write('starting moto and the Kubernetes test bed…\n');
const world = await startWorld();
Object.assign(process.env, world.env);
const work = await mkdtemp(join(tmpdir(), 'smk-bench-csi-'));
const proxy = await startAwsProxy({ target: world.env.AWS_ENDPOINT_URL });
const closers: Array<() => Promise<void> | void> = [];

interface Provider {
  readonly child: ChildProcess;
  /** Everything the provider wrote to stderr (its log), kept only with --profile. */
  readonly fullLog: () => string;
  readonly client: ProviderClient;
  /** From spawn to the socket answering Version: what a readiness probe waits for. */
  readonly startMs: number;
  /** Wall-clock times (epoch ms) of the spawn and of the socket's first answer, for --profile's log. */
  readonly spawnedAt: number;
  readonly answeredAt: number;
  /** The last lines the provider logged (for a failure report). */
  log(): string;
}

/** Spawns a provider and waits until its socket answers Version (the client is then connected). */
async function startProvider(
  name: string,
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  socketPath: string,
): Promise<Provider> {
  const started = performance.now();
  const spawnedAt = Date.now();
  let log = '';
  let fullLog = '';
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
    if (profileDir !== undefined) fullLog += chunk.toString();
  });
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${log}`);
    if (performance.now() - started > 60_000) throw new Error(`${name}: no answer on ${socketPath}: ${log}`);
    // A fresh client each try: one client whose first connect failed waits out gRPC's reconnect
    // backoff (1 s and more), which would be measured as the provider's start.
    const client = connectProvider(socketPath);
    const answered = await client.version().then(
      () => true,
      () => false,
    );
    if (answered) {
      return {
        child,
        client,
        startMs: performance.now() - started,
        spawnedAt,
        answeredAt: Date.now(),
        log: () => log,
        fullLog: () => fullLog,
      };
    }
    client.close();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * CPU time a process's threads have run so far, in ms (Linux schedstat, ns precision; NaN
 * elsewhere): what one mount costs the provider itself, whatever moto and the load do meanwhile.
 */
async function threadsCpuMs(pid: number | undefined): Promise<number> {
  try {
    const tasks = await readdir(`/proc/${pid}/task`);
    const runs = await Promise.all(
      tasks.map((task) =>
        readFile(`/proc/${pid}/task/${task}/schedstat`, 'utf8').then(
          (text) => Number(text.split(' ')[0]),
          // A thread that ended between the listing and the read ran nothing more.
          () => 0,
        ),
      ),
    );
    return runs.reduce((sum, ns) => sum + ns, 0) / 1e6;
  } catch {
    return Number.NaN;
  }
}

async function stopProvider(provider: Provider): Promise<void> {
  provider.client.close();
  if (provider.child.exitCode !== null) return;
  const exited = new Promise((resolve) => provider.child.once('exit', resolve));
  provider.child.kill('SIGTERM');
  await exited;
}

try {
  const bed = await connectTestBed();
  closers.push(() => bed.stop());
  const namespace = await bed.newNamespace('bench-csi');
  const core = bed.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({
    namespace,
    body: {
      metadata: {
        name: 'app',
        annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/bench' },
      },
    },
  });
  const token = await bed.serviceAccountToken(namespace, 'app', 'sts.amazonaws.com');

  // ASCP's own identity, with the rights its chart gives it.
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'ascp' } } });
  const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createClusterRole({
    body: {
      metadata: { name: `${namespace}-ascp` },
      rules: [{ apiGroups: [''], resources: ['serviceaccounts', 'pods', 'nodes'], verbs: ['get'] }],
    },
  });
  closers.push(() => rbac.deleteClusterRole({ name: `${namespace}-ascp` }).then(() => undefined));
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `${namespace}-ascp` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${namespace}-ascp` },
      subjects: [{ kind: 'ServiceAccount', name: 'ascp', namespace }],
    },
  });
  closers.push(() => rbac.deleteClusterRoleBinding({ name: `${namespace}-ascp` }).then(() => undefined));
  const inCluster = join(work, 'ascp-serviceaccount');
  await mkdir(inCluster);
  await writeFile(join(inCluster, 'token'), await bed.serviceAccountToken(namespace, 'ascp'));
  await writeFile(join(inCluster, 'ca.crt'), bed.caPem);
  await writeFile(join(inCluster, 'namespace'), namespace);
  const apiServer = new URL(bed.serverUrl);

  const seeder = new SecretsManagerClient({
    region,
    endpoint: world.env.AWS_ENDPOINT_URL,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const objectLines: string[] = [];
  for (let index = 0; index < objectCount; index += 1) {
    const name = `bench/csi/secret-${index}`;
    const value = {
      username: `user-${index}`,
      password: `p-${index}-${'x'.repeat(64)}`,
      pad: 'y'.repeat(400),
    };
    await seeder.send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }));
    // Two of the five also pick keys out with jmesPath, as seed 001 does.
    objectLines.push(
      index < 2
        ? `- {objectName: "${name}", objectType: secretsmanager, jmesPath: [{path: username, objectAlias: user-${index}}, {path: password, objectAlias: pass-${index}}]}`
        : `- {objectName: "${name}", objectType: secretsmanager}`,
    );
  }
  seeder.destroy();

  // The pod's volume: the bench writes each first mount's files there, as the driver does; ASCP
  // reads a file back from it when the version it was given is still current.
  const targetPath = join(work, 'target');
  await mkdir(targetPath);
  const request: Partial<MountRequest> = {
    attributes: JSON.stringify({
      objects: objectLines.join('\n'),
      region,
      secretProviderClass: 'bench',
      'csi.storage.k8s.io/pod.name': 'app-0',
      'csi.storage.k8s.io/pod.namespace': namespace,
      'csi.storage.k8s.io/serviceAccount.name': 'app',
      'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ 'sts.amazonaws.com': { token } }),
    }),
    permission: '420',
    target_path: targetPath,
  };

  const awsEnv = { AWS_ENDPOINT_URL: proxy.endpoint, AWS_REGION: region };
  const smkVolume = join(work, 'smk');
  const ascpVolume = join(work, 'ascp');
  await mkdir(smkVolume);
  await mkdir(ascpVolume);
  const providers = {
    smk: (): Promise<Provider> => {
      const profiling = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
      const [command, args] = onServerCore(process.execPath, [
        ...profiling,
        smkBundle,
        'csi-provider',
        '--provider-volume',
        smkVolume,
        '--health-port',
        '0',
      ]);
      return startProvider(
        'smk csi-provider',
        command,
        args,
        {
          ...awsEnv,
          KUBECONFIG: bed.kubeConfigPath,
          SMK_LOG_LEVEL: profileDir === undefined ? 'warn' : 'debug',
        },
        join(smkVolume, 'aws.sock'),
      );
    },
    ASCP: (): Promise<Provider> => {
      const [command, args] = onServerCore(peers.ascp, [
        `--provider-volume=${ascpVolume}`,
        '--driver-writes-secrets=true',
      ]);
      // A tmpfs over /run in this process's own mount namespace only: the host's /run is untouched.
      const inNamespace =
        'mount -t tmpfs smk-bench /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && ' +
        'cp "$0"/* /run/secrets/kubernetes.io/serviceaccount/ && exec "$@"';
      return startProvider(
        'ASCP',
        'unshare',
        ['-m', '--propagation', 'private', 'sh', '-c', inNamespace, inCluster, command, ...args],
        {
          ...awsEnv,
          KUBERNETES_SERVICE_HOST: apiServer.hostname,
          KUBERNETES_SERVICE_PORT: apiServer.port || '443',
        },
        join(ascpVolume, 'aws.sock'),
      );
    },
  } as const;
  type Name = keyof typeof providers;
  const names: readonly Name[] = ['smk', 'ASCP'];

  /** path → contents of a reply; throws unless it is a complete mount of the same files as `expected`. */
  let expected: Map<string, string> | undefined;
  function check(name: Name, response: MountResponse): void {
    if (response.error?.code) throw new Error(`${name}: the Mount answered error ${response.error.code}`);
    const files = new Map(
      response.files.map((file) => [file.path, Buffer.from(file.contents).toString('base64')]),
    );
    if (files.size !== fileCount || [...files.values()].some((contents) => contents === ''))
      throw new Error(`${name}: expected ${fileCount} non-empty files, got ${[...files.keys()].join(', ')}`);
    expected ??= files;
    for (const [path, contents] of expected)
      if (files.get(path) !== contents) throw new Error(`${name}: ${path} differs from the first mount's`);
  }

  interface Round {
    readonly startMs: number;
    readonly firstMs: number;
    /** The provider's own CPU time (all threads) during the first mount. */
    readonly firstCpuMs: number;
    /** Wall-clock times (epoch ms) the first mount was sent and answered, for --profile's log. */
    readonly firstAt: { readonly sent: number; readonly answered: number };
    /** The first mount in three parts (ms, from when the counting proxy saw AWS answer). */
    readonly timeline: { readonly toSts: number; readonly stsToLastAws: number; readonly afterAws: number };
    readonly firstCalls: Record<string, number>;
    readonly remounts: number[];
    readonly remountCalls: Record<string, number>;
  }
  const results: Record<Name, Round[]> = { smk: [], ASCP: [] };
  await pinSelfToLoadCore();
  const load = await machineLoad();
  process.stderr.write(
    `${rounds} rounds: each provider started afresh, 1 + ${mounts} mounts of ${objectCount} objects…\n`,
  );
  /** The first mount of a fresh provider, then re-mounts with the versions it gave back. */
  async function measureRound(name: Name, provider: Provider): Promise<Round> {
    proxy.resetCounts();
    const cpuBefore = await threadsCpuMs(provider.child.pid);
    const startedAt = Date.now();
    const started = performance.now();
    const first = await provider.client.mount(request);
    const firstMs = performance.now() - started;
    const firstCpuMs = (await threadsCpuMs(provider.child.pid)) - cpuBefore;
    const answeredAt = Date.now();
    const calls = proxy.calls();
    const stsAt = calls.find((call) => call.api === 'AssumeRoleWithWebIdentity')?.at ?? startedAt;
    const lastAwsAt = Math.max(stsAt, ...calls.map((call) => call.at));
    const timeline = {
      toSts: stsAt - startedAt,
      stsToLastAws: lastAwsAt - stsAt,
      afterAws: answeredAt - lastAwsAt,
    };
    check(name, first);
    const firstCalls = proxy.countsByApi();
    for (const file of first.files) await writeFile(join(targetPath, file.path), file.contents);
    proxy.resetCounts();
    const remounts: number[] = [];
    for (let index = 0; index < mounts; index += 1) {
      const again = performance.now();
      const response = await provider.client.mount({
        ...request,
        current_object_version: first.object_version,
      });
      remounts.push(performance.now() - again);
      check(name, response);
    }
    return {
      startMs: provider.startMs,
      firstMs,
      firstCpuMs,
      firstAt: { sent: startedAt, answered: answeredAt },
      timeline,
      firstCalls,
      remounts,
      remountCalls: proxy.countsByApi(),
    };
  }

  for (let round = 0; round < rounds; round += 1) {
    // Alternate who goes first, so neither always meets a warmer moto or API server.
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const provider = await providers[name]();
      try {
        results[name].push(await measureRound(name, provider));
      } catch (error) {
        throw new Error(
          `${name}: ${error instanceof Error ? error.message : String(error)}; its log:\n${provider.log()}`,
        );
      } finally {
        await stopProvider(provider);
        const firstAt = results[name][round]?.firstAt;
        if (profileDir !== undefined && name === 'smk') {
          const bench = { spawnedAt: provider.spawnedAt, socketAnsweredAt: provider.answeredAt, firstAt };
          await writeFile(
            join(profileDir, `smk-${round}.log`),
            `${provider.fullLog()}${JSON.stringify({ bench })}\n`,
          );
        }
      }
    }
  }

  const apis = ['GetSecretValue', 'BatchGetSecretValue', 'DescribeSecret', 'AssumeRoleWithWebIdentity'];
  const sumCalls = (runs: readonly Record<string, number>[], api: string): number =>
    runs.reduce((sum, calls) => sum + (calls[api] ?? 0), 0);
  const rows = names.flatMap((name) => {
    const runs = results[name];
    const remounts = runs.flatMap((run) => run.remounts);
    const firsts = runs.map((run) => run.firstMs);
    return [
      [
        `${name}: first mount after start`,
        runs.length,
        percentile(firsts, 50),
        Math.max(...firsts),
        ...apis.map(
          (api) =>
            sumCalls(
              runs.map((run) => run.firstCalls),
              api,
            ) / runs.length,
        ),
      ],
      [
        `${name}: mounts 2…N`,
        remounts.length,
        percentile(remounts, 50),
        percentile(remounts, 99),
        ...apis.map((api) =>
          sumCalls(
            runs.map((run) => run.remountCalls),
            api,
          ),
        ),
      ],
    ];
  });
  printTable(
    `CSI Mount of ${objectCount} objects (${fileCount} files), ${rounds} rounds of a fresh process + ${mounts} re-mounts with versions passed back ` +
      `(first-mount rows: calls per mount, p99 column = max; ${load})`,
    [
      'variant',
      'mounts',
      'p50 ms',
      'p99 ms',
      ...apis.map((api) => api.replace('AssumeRoleWithWebIdentity', 'AssumeRole…')),
    ],
    rows,
  );

  printTable(
    'CSI first Mount after a start, where the time goes (median ms over rounds)',
    [
      'provider',
      'request → STS answered',
      'STS → last AWS answer',
      'last AWS answer → reply',
      'whole mount',
      'provider CPU in it',
    ],
    names.map((name) => [
      name,
      percentile(
        results[name].map((run) => run.timeline.toSts),
        50,
      ),
      percentile(
        results[name].map((run) => run.timeline.stsToLastAws),
        50,
      ),
      percentile(
        results[name].map((run) => run.timeline.afterAws),
        50,
      ),
      percentile(
        results[name].map((run) => run.firstMs),
        50,
      ),
      percentile(
        results[name].map((run) => run.firstCpuMs),
        50,
      ),
    ]),
  );

  const perRound = (pick: (run: Round) => number): number[] =>
    results.smk.map((run, index) => pick(run) / pick(results.ASCP[index] ?? run));
  const median = (name: Name, pick: (run: Round) => number): number =>
    percentile(results[name].map(pick), 50);
  const firstRatios = perRound((run) => run.firstMs);
  const calls = (run: Round): number =>
    Object.values(run.remountCalls).reduce((sum, count) => sum + count, 0) / Math.max(1, run.remounts.length);
  const figures: PeerFigure[] = [
    {
      figure: `CSI first Mount after the provider starts (${objectCount} objects)`,
      unit: 'ms',
      smk: median('smk', (run) => run.firstMs),
      peer: median('ASCP', (run) => run.firstMs),
      peerName: 'ASCP',
      ratios: firstRatios,
      goal: '≤ 1× (issue 19)',
      met: spreadOf(firstRatios).median <= 1,
    },
    {
      figure: "CSI first Mount: the provider's own CPU time in it",
      unit: 'ms',
      smk: median('smk', (run) => run.firstCpuMs),
      peer: median('ASCP', (run) => run.firstCpuMs),
      peerName: 'ASCP',
      ratios: perRound((run) => run.firstCpuMs),
      goal: '(lower is better; less moved by load)',
    },
    {
      figure: 'CSI provider start until its socket answers',
      unit: 'ms',
      smk: median('smk', (run) => run.startMs),
      peer: median('ASCP', (run) => run.startMs),
      peerName: 'ASCP',
      ratios: perRound((run) => run.startMs),
      goal: '(readiness; lower is better)',
    },
    {
      figure: 'CSI re-mount, versions passed back, p50',
      unit: 'ms',
      smk: median('smk', (run) => percentile(run.remounts, 50)),
      peer: median('ASCP', (run) => percentile(run.remounts, 50)),
      peerName: 'ASCP',
      ratios: perRound((run) => percentile(run.remounts, 50)),
      goal: '(lower is better)',
    },
    {
      figure: 'CSI re-mount: AWS calls per mount',
      unit: 'calls',
      smk: median('smk', calls),
      peer: median('ASCP', calls),
      peerName: 'ASCP',
      ratios: perRound(calls),
      goal: '(lower is better)',
    },
  ];
  printPeerTable(`CSI; ratio = smk ÷ ASCP per round, ${rounds} rounds; ${load}`, figures);
} finally {
  for (const close of closers.reverse()) await close();
  await proxy.stop();
  await rm(work, { recursive: true, force: true });
  await world.stop();
}
