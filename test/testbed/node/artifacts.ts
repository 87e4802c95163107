/**
 * What the node bed runs, checked before anything starts: the node binaries and images
 * (test/testbed/node/build.sh), the Debian packages (packages.sh), and root. A missing piece fails
 * with the command that provides it; nothing is built implicitly, because the first build takes
 * minutes and needs root's apt.
 */
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NodeArtifacts {
  readonly kubelet: string;
  readonly kubeScheduler: string;
  readonly kubeProxy: string;
  readonly kubectl: string;
  /** docker-archive tars to import into containerd (pause, busybox, nginx, the CSI driver and registrar). */
  readonly images: readonly string[];
}

const buildScript = fileURLToPath(new URL('./build.sh', import.meta.url));
const packagesScript = fileURLToPath(new URL('./packages.sh', import.meta.url));

export function nodeCacheDir(): string {
  const root = process.env.SMK_NODE_BED_CACHE ?? join(homedir(), '.cache', 'smk-node-bed');
  return join(root, process.env.SMK_K8S_VERSION ?? 'v1.35.4');
}

/** Commands the node runs or the bed calls, from the Debian packages. */
const systemCommands = [
  'containerd',
  'containerd-shim-runc-v2',
  'ctr',
  'runc',
  'iptables',
  'ip6tables',
  'iptables-save',
  'iptables-restore',
  'ip',
  'mount',
  'umount',
];
const cniPlugins = ['/usr/lib/cni/bridge', '/usr/lib/cni/host-local', '/usr/lib/cni/loopback'];

function onPath(command: string): boolean {
  return (process.env.PATH ?? '')
    .split(':')
    .filter((dir) => dir !== '')
    .some((dir) => {
      try {
        accessSync(join(dir, command), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

export function checkNodeArtifacts(): NodeArtifacts {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) {
    problems.push('the node bed needs root (containerd, the kubelet, iptables and mounts)');
  }
  const missingCommands = [
    ...systemCommands.filter((command) => !onPath(command)),
    ...cniPlugins.filter((path) => !existsSync(path)),
  ];
  if (missingCommands.length > 0) {
    problems.push(`missing ${missingCommands.join(', ')}: run bash ${packagesScript}`);
  }
  const dir = nodeCacheDir();
  const binDir = join(dir, 'bin');
  const imageDir = join(dir, 'images');
  const artifacts: NodeArtifacts = {
    kubelet: join(binDir, 'kubelet'),
    kubeScheduler: join(binDir, 'kube-scheduler'),
    kubeProxy: join(binDir, 'kube-proxy'),
    kubectl: join(binDir, 'kubectl'),
    images: existsSync(imageDir)
      ? readdirSync(imageDir)
          .filter((name) => name.endsWith('.tar'))
          .sort()
          .map((name) => join(imageDir, name))
      : [],
  };
  const wantedImages = ['pause', 'busybox', 'nginx', 'secrets-store-csi-driver', 'csi-node-driver-registrar'];
  const missingFiles = [
    ...[artifacts.kubelet, artifacts.kubeScheduler, artifacts.kubeProxy, artifacts.kubectl].filter((path) => {
      try {
        accessSync(path, constants.X_OK);
        return false;
      } catch {
        return true;
      }
    }),
    ...wantedImages.map((name) => join(imageDir, `${name}.tar`)).filter((path) => !existsSync(path)),
  ];
  if (missingFiles.length > 0 || !existsSync(join(imageDir, '.complete'))) {
    problems.push(
      `node bed binaries/images missing in ${dir} (${missingFiles.join(', ') || 'images incomplete'}): run bash ${buildScript}`,
    );
  }
  if (problems.length > 0) throw new Error(`the node bed cannot start: ${problems.join('; ')}`);
  return artifacts;
}
