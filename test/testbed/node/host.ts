/**
 * What the node bed does to the machine outside its temp dir, and how it is undone: the pod
 * bridge, the containment rules, sysctls, mounts, cgroups and host paths. Every change has its
 * undo here, and `hostLeftovers()` lists whatever is still there after cleanup.
 *
 * Containment comes first, before any pod or Service exists: the Service range is routed to the
 * bridge (host traffic to a ClusterIP without endpoints would otherwise take the default route
 * out), and the first FORWARD rule drops anything arriving from the bridge that would leave by
 * another interface. It is checked by reading the rules, never by sending traffic out.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hostPaths, nodeNetwork } from './config.ts';

const exec = promisify(execFile);

interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(command: string, args: readonly string[]): Promise<RunResult> {
  try {
    const { stdout, stderr } = await exec(command, args, { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as NodeJS.ErrnoException & {
      code?: number | string;
      stdout?: string;
      stderr?: string;
    };
    if (typeof failed.code === 'string') throw new Error(`cannot run ${command}: ${failed.message}`);
    return { code: failed.code ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

async function mustRun(command: string, args: readonly string[]): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

const families = ['iptables', 'ip6tables'] as const;
type Family = (typeof families)[number];

/** The containment rule as `iptables -S` prints it. */
export const containmentRule = `-A FORWARD -i ${nodeNetwork.bridge} ! -o ${nodeNetwork.bridge} -j DROP`;
const containmentArgs = ['-i', nodeNetwork.bridge, '!', '-o', nodeNetwork.bridge, '-j', 'DROP'];

/** The machine's state before the bed changed it, kept in the lock file so a later run can restore it. */
export interface HostBefore {
  readonly ipForward: string;
  readonly bridgeNfCallIptables?: string;
  /** Host paths the bed may create, and whether each existed before. */
  readonly existed: Readonly<Record<string, boolean>>;
}

/** Paths the bed's processes create besides `hostPaths`: containerd's shim sockets, netns mounts, the CSI driver's second providers dir. */
const incidentalPaths = ['/run/containerd', '/run/netns', '/etc/kubernetes'] as const;

const ipForwardPath = '/proc/sys/net/ipv4/ip_forward';
const bridgeNfPath = '/proc/sys/net/bridge/bridge-nf-call-iptables';

export async function recordHostBefore(): Promise<HostBefore> {
  const existed: Record<string, boolean> = {};
  for (const path of [...Object.values(hostPaths), ...incidentalPaths]) existed[path] = existsSync(path);
  return {
    ipForward: (await readFile(ipForwardPath, 'utf8')).trim(),
    bridgeNfCallIptables: existsSync(bridgeNfPath)
      ? (await readFile(bridgeNfPath, 'utf8')).trim()
      : undefined,
    existed,
  };
}

/**
 * The bridge with the gateway address (the kubelet's node IP and the API server's address must
 * exist before they start), the Service range routed to it, the FORWARD drop first in both IP
 * families, and forwarding on (pods reach the node's ClusterIP translations through it).
 */
export async function applyContainment(): Promise<void> {
  const { bridge, gateway, prefixLength, serviceCidr } = nodeNetwork;
  if ((await run('ip', ['link', 'show', bridge])).code !== 0) {
    await mustRun('ip', ['link', 'add', bridge, 'type', 'bridge']);
  }
  await mustRun('ip', ['addr', 'replace', `${gateway}/${prefixLength}`, 'dev', bridge]);
  await mustRun('ip', ['link', 'set', bridge, 'up']);
  await mustRun('ip', ['route', 'replace', serviceCidr, 'dev', bridge]);
  for (const family of families) await ensureContainmentFirst(family);
  await writeFile(ipForwardPath, '1\n');
  if (existsSync(bridgeNfPath)) await writeFile(bridgeNfPath, '1\n');
}

/**
 * Keeps the drop as FORWARD's first rule: kube-proxy and the kubelet insert their own jumps at the
 * top, and one of those (KUBE-FORWARD) accepts marked traffic before a later drop would see it.
 */
export async function ensureContainmentFirst(family: Family): Promise<void> {
  const rules = forwardRules(await mustRun(family, ['-S', 'FORWARD']));
  if (rules[0] === containmentRule && rules.filter((rule) => rule === containmentRule).length === 1) return;
  // Insert the new first rule before removing others, so there is no moment without one.
  await mustRun(family, ['-I', 'FORWARD', '1', ...containmentArgs]);
  const numbered = forwardRules(await mustRun(family, ['-S', 'FORWARD']));
  const extra = numbered
    .map((rule, index) => ({ rule, number: index + 1 }))
    .filter(({ rule, number }) => rule === containmentRule && number > 1)
    .reverse();
  for (const { number } of extra) await mustRun(family, ['-D', 'FORWARD', String(number)]);
}

/** The `-A FORWARD …` lines of `iptables -S FORWARD`, in order (the policy line dropped). */
export function forwardRules(listing: string): string[] {
  return listing
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('-A FORWARD'));
}

/** What containment looks like now, read from the machine. */
export interface ContainmentState {
  readonly forward: Readonly<Record<Family, readonly string[]>>;
  /** `ip route show <service range>`. */
  readonly serviceRoute: string;
  readonly ipForward: string;
}

export async function readContainment(): Promise<ContainmentState> {
  const [ipv4, ipv6, route, ipForward] = await Promise.all([
    mustRun('iptables', ['-S', 'FORWARD']),
    mustRun('ip6tables', ['-S', 'FORWARD']),
    mustRun('ip', ['route', 'show', nodeNetwork.serviceCidr]),
    readFile(ipForwardPath, 'utf8'),
  ]);
  return {
    forward: { iptables: forwardRules(ipv4), ip6tables: forwardRules(ipv6) },
    serviceRoute: route.trim(),
    ipForward: ipForward.trim(),
  };
}

/** Why pod traffic could leave the machine, or nothing when it cannot. */
export function containmentProblems(state: ContainmentState): string[] {
  const problems: string[] = [];
  for (const family of families) {
    const first = state.forward[family][0];
    if (first !== containmentRule) {
      problems.push(`${family} FORWARD's first rule is ${first ?? '(none)'}, not ${containmentRule}`);
    }
  }
  const routeDevice = /\bdev (\S+)/.exec(state.serviceRoute)?.[1];
  if (!state.serviceRoute.startsWith(nodeNetwork.serviceCidr) || routeDevice !== nodeNetwork.bridge) {
    problems.push(
      `the Service range ${nodeNetwork.serviceCidr} is not routed to ${nodeNetwork.bridge} (ip route: ${state.serviceRoute || 'none'})`,
    );
  }
  return problems;
}

export async function assertContained(): Promise<void> {
  const problems = containmentProblems(await readContainment());
  if (problems.length > 0) throw new Error(`node bed containment is not in place: ${problems.join('; ')}`);
}

/** Names the bed's components give their iptables chains. */
const ownChainPattern = /^(KUBE-|CNI-)/;

/**
 * An `iptables-restore --noflush` script that removes the containment rule, every rule jumping to
 * a KUBE-/CNI- chain (kube-proxy's and the kubelet's), and those chains, from every table.
 */
export function iptablesCleanupScript(save: string): string {
  const tables = new Map<string, { chains: string[]; rules: string[] }>();
  let table: { chains: string[]; rules: string[] } | undefined;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      table = { chains: [], rules: [] };
      tables.set(line.slice(1).trim(), table);
    } else if (table && line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0] ?? '';
      if (ownChainPattern.test(chain)) table.chains.push(chain);
    } else if (table && line.startsWith('-A ')) {
      const [, chain = ''] = line.split(' ');
      const target = /(?:^| )-[jg] (\S+)/.exec(line)?.[1] ?? '';
      if (line === containmentRule || (!ownChainPattern.test(chain) && ownChainPattern.test(target))) {
        table.rules.push(`-D ${line.slice(3)}`);
      }
    }
  }
  const script: string[] = [];
  for (const [name, { chains, rules }] of tables) {
    if (chains.length === 0 && rules.length === 0) continue;
    script.push(
      `*${name}`,
      ...rules,
      ...chains.map((chain) => `-F ${chain}`),
      ...chains.map((chain) => `-X ${chain}`),
      'COMMIT',
    );
  }
  return script.length === 0 ? '' : `${script.join('\n')}\n`;
}

async function cleanIptables(): Promise<void> {
  for (const family of families) {
    const script = iptablesCleanupScript(await mustRun(`${family}-save`, []));
    if (script === '') continue;
    await new Promise<void>((resolve, reject) => {
      const child = execFile(`${family}-restore`, ['--noflush'], (error, _stdout, stderr) => {
        if (error)
          reject(new Error(`${family}-restore failed: ${stderr.trim() || error.message}\n${script}`));
        else resolve();
      });
      child.stdin?.end(script);
    });
  }
}

/** `/var/run/…` as the mount table names it (`/var/run` is a link to `/run`). */
function mountTablePath(path: string): string {
  return path.startsWith('/var/run/') ? path.slice('/var'.length) : path;
}

/** Mount points under these prefixes (a prefix ending in `-` matches names), deepest first. */
async function mountsUnder(prefixes: readonly string[]): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const matches = (target: string, prefix: string): boolean =>
    prefix.endsWith('-') ? target.startsWith(prefix) : target === prefix || target.startsWith(`${prefix}/`);
  const targets = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((target): target is string => target !== undefined)
    .map((target) => target.replace(/\\040/g, ' '))
    .filter((target) => prefixes.some((prefix) => matches(target, prefix)));
  return [...new Set(targets)].sort((a, b) => b.length - a.length);
}

/**
 * Where the bed's mounts are: its own dir and host paths, the netns files containerd made, and
 * the whole of /run/netns or /run/containerd only when the bed created them.
 */
function mountPrefixes(dir: string, before: HostBefore): string[] {
  const prefixes = [hostPaths.kubeletRoot, hostPaths.csiProviders, dir, '/run/netns/cni-'];
  for (const path of incidentalPaths) if (before.existed[path] === false) prefixes.push(path);
  return prefixes.map(mountTablePath);
}

const cgroupRoot = '/sys/fs/cgroup';

/** Every `kubepods` cgroup directory (cgroup v1: one tree per controller), deepest first. */
async function podCgroups(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string): Promise<void> => {
    found.push(path);
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(join(path, entry.name));
    }
  };
  for (const controller of await readdir(cgroupRoot).catch(() => [] as string[])) {
    for (const name of ['kubepods', 'kubepods.slice']) {
      const path = join(cgroupRoot, controller, name);
      if (existsSync(path)) await walk(path);
    }
  }
  return found.sort((a, b) => b.length - a.length);
}

async function podProcessIds(): Promise<number[]> {
  const pids = new Set<number>();
  for (const cgroup of await podCgroups()) {
    const text = await readFile(join(cgroup, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line.trim() !== '') pids.add(Number(line));
  }
  return [...pids];
}

/**
 * The pods' processes (every process in the kubelet's `kubepods` cgroups: sandboxes and
 * containers, nothing else), killed; then the empty cgroups removed.
 */
async function killPodProcesses(): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = await podProcessIds();
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const cgroup of await podCgroups()) await rmdir(cgroup).catch(() => undefined);
}

/**
 * containerd's shims outlive it (they are daemons, re-parented to init). Each names the bed's own
 * containerd socket — a path under the bed's temp dir — in its command line: that is how they are
 * found, and only they.
 */
async function processesNaming(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(text)) pids.push(Number(entry));
  }
  return pids;
}

async function killShims(containerdSocket: string): Promise<void> {
  for (const pid of await processesNaming(containerdSocket)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Processes the bed started, by pid, checked against their command so a reused pid is left alone. */
export interface RecordedProcess {
  readonly pid: number;
  readonly command: string;
}

async function killRecorded(processes: readonly RecordedProcess[]): Promise<void> {
  for (const { pid, command } of processes) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0')[0] !== command) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export interface CleanupInput {
  readonly dir: string;
  readonly containerdSocket: string;
  readonly before: HostBefore;
  /** A crashed owner's processes (from its lock file); a live bed stops its own first. */
  readonly orphans?: readonly RecordedProcess[];
}

/**
 * Undoes everything: processes, mounts, the bridge, rules and chains, sysctls, cgroups and host
 * paths. Best effort per step (each failure is collected); `hostLeftovers()` then says what stayed.
 */
export async function cleanHost(input: CleanupInput): Promise<string[]> {
  const errors: string[] = [];
  const step = async (what: string, action: () => Promise<unknown>): Promise<void> => {
    try {
      await action();
    } catch (error) {
      errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  if (input.orphans) await step('stop the crashed bed’s processes', () => killRecorded(input.orphans ?? []));
  await step('kill pod processes', killPodProcesses);
  await step('kill containerd shims', () => killShims(input.containerdSocket));
  await step('unmount', async () => {
    for (const target of await mountsUnder(mountPrefixes(input.dir, input.before))) {
      const result = await run('umount', ['--lazy', target]);
      if (result.code !== 0 && existsSync(target))
        throw new Error(`umount ${target}: ${result.stderr.trim()}`);
    }
  });
  await step('delete the bridge', async () => {
    if ((await run('ip', ['link', 'show', nodeNetwork.bridge])).code === 0) {
      await mustRun('ip', ['link', 'delete', nodeNetwork.bridge]);
    }
    if ((await run('ip', ['route', 'show', nodeNetwork.serviceCidr])).stdout.trim() !== '') {
      await mustRun('ip', ['route', 'delete', nodeNetwork.serviceCidr]);
    }
  });
  await step('remove iptables rules and chains', cleanIptables);
  await step('restore sysctls', async () => {
    await writeFile(ipForwardPath, `${input.before.ipForward}\n`);
    if (input.before.bridgeNfCallIptables !== undefined && existsSync(bridgeNfPath)) {
      await writeFile(bridgeNfPath, `${input.before.bridgeNfCallIptables}\n`);
    }
  });
  await step('remove host paths', async () => {
    for (const [path, existed] of Object.entries(input.before.existed)) {
      if (!existed) await rm(path, { recursive: true, force: true });
    }
  });
  return errors;
}

/** What the node bed left on the machine: empty after a clean stop. */
export async function hostLeftovers(input: {
  readonly dir: string;
  readonly containerdSocket: string;
  readonly before: HostBefore;
}): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await processesNaming(input.containerdSocket))
    found.push(`process ${pid} (a containerd shim)`);
  if ((await run('ip', ['link', 'show', nodeNetwork.bridge])).code === 0)
    found.push(`link ${nodeNetwork.bridge}`);
  const route = (await run('ip', ['route', 'show', nodeNetwork.serviceCidr])).stdout.trim();
  if (route !== '') found.push(`route ${route}`);
  for (const family of families) {
    const script = iptablesCleanupScript((await run(`${family}-save`, [])).stdout);
    if (script !== '')
      found.push(
        `${family} rules/chains: ${script
          .split('\n')
          .filter((line) => line.startsWith('-'))
          .join(' | ')}`,
      );
  }
  for (const target of await mountsUnder(mountPrefixes(input.dir, input.before)))
    found.push(`mount ${target}`);
  for (const cgroup of await podCgroups()) found.push(`cgroup ${cgroup}`);
  for (const [path, existed] of Object.entries(input.before.existed)) {
    if (!existed && existsSync(path)) found.push(`path ${path}`);
  }
  const ipForward = (await readFile(ipForwardPath, 'utf8')).trim();
  if (ipForward !== input.before.ipForward)
    found.push(`net.ipv4.ip_forward=${ipForward} (was ${input.before.ipForward})`);
  return found;
}
