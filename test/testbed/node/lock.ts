/**
 * One node bed per machine: it owns host-wide paths (/var/lib/kubelet, /var/lib/cni), the cni0
 * bridge, iptables chains and fixed ports (the kubelet's 10250). The lock is a file in /run naming
 * its owner; it also records what the owner changed and started, so that when the owner died
 * without cleaning up, the next bed undoes it before taking over.
 */
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import type { RecordedProcess } from './host.ts';

export const lockPath = process.env.SMK_NODE_BED_LOCK ?? '/run/smk-node-bed.lock';

const lockSchema = z.object({
  pid: z.number().int(),
  command: z.string(),
  startedAt: z.string(),
  dir: z.string(),
  containerdSocket: z.string(),
  before: z.object({
    ipForward: z.string(),
    bridgeNfCallIptables: z.string().optional(),
    existed: z.record(z.string(), z.boolean()),
  }),
  processes: z.array(z.object({ pid: z.number().int(), command: z.string() })),
  /** Other temp dirs the owner made (the control plane's), removed with it. */
  dirs: z.array(z.string()),
});
export type NodeBedLock = z.infer<typeof lockSchema>;

export class NodeBedBusyError extends Error {
  readonly owner: NodeBedLock;
  constructor(owner: NodeBedLock) {
    super(
      `another node bed is running on this machine: pid ${owner.pid} (${owner.command}), started ${owner.startedAt}, ` +
        `dir ${owner.dir}. One node bed per machine (it owns /var/lib/kubelet, cni0 and iptables chains): ` +
        `stop that one first (Ctrl-C where it runs, or kill -TERM ${owner.pid}), then start again.`,
    );
    this.name = 'NodeBedBusyError';
    this.owner = owner;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readLock(): Promise<NodeBedLock | undefined> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = lockSchema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new Error(`${lockPath} is not a node bed lock (${parsed.error.message}); remove it by hand`);
  return parsed.data;
}

export interface HeldLock {
  readonly lock: NodeBedLock;
  /** Records a started process, so a later bed can stop it if this one dies. */
  addProcess(process: RecordedProcess): Promise<void>;
  /** Records a temp dir, so a later bed can remove it if this one dies. */
  addDir(dir: string): Promise<void>;
  release(): Promise<void>;
}

/**
 * Takes the lock, or throws NodeBedBusyError naming the live owner. A dead owner's lock is handed
 * to `recoverStale` (which cleans up after it) and then replaced.
 */
export async function acquireLock(
  /** Called once no other owner is left (the machine's state is recorded after a stale bed's cleanup). */
  mine: () => Promise<Omit<NodeBedLock, 'pid' | 'processes' | 'dirs'>>,
  recoverStale: (stale: NodeBedLock) => Promise<void>,
): Promise<HeldLock> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const owner = await readLock();
    if (owner !== undefined) {
      if (isAlive(owner.pid)) throw new NodeBedBusyError(owner);
      await recoverStale(owner);
      await rm(lockPath, { force: true });
    }
    const lock: NodeBedLock = { ...(await mine()), pid: process.pid, processes: [], dirs: [] };
    try {
      const handle = await open(lockPath, 'wx', 0o644);
      await handle.writeFile(`${JSON.stringify(lock, null, 2)}\n`);
      await handle.close();
      return held(lock);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  throw new Error(`could not take ${lockPath}: it keeps changing hands`);
}

function held(lock: NodeBedLock): HeldLock {
  let current = lock;
  let writing = Promise.resolve();
  const save = (next: NodeBedLock): Promise<void> => {
    current = next;
    writing = writing.then(() => writeFile(lockPath, `${JSON.stringify(next, null, 2)}\n`));
    return writing;
  };
  return {
    get lock() {
      return current;
    },
    addProcess(recorded) {
      return save({ ...current, processes: [...current.processes, recorded] });
    },
    addDir(dir) {
      return save({ ...current, dirs: [...current.dirs, dir] });
    },
    async release() {
      await writing;
      const onDisk = await readLock().catch(() => undefined);
      if (onDisk?.pid === current.pid) await rm(lockPath, { force: true });
    },
  };
}
