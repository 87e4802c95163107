/**
 * The node bed's configuration files and command lines: containerd, the CNI network, kubelet and
 * kube-proxy. Pure (paths in, text or argv out), so what the node runs is readable in one place;
 * the why of each setting is beside it. test/testbed/node/README.md tells the story.
 */
import { serviceClusterIpRange } from '../control-plane.ts';

/** The pod network: one Linux bridge whose gateway address is also where the node (and its control plane) listens. */
export const nodeNetwork = {
  bridge: 'cni0',
  podCidr: '10.88.0.0/24',
  gateway: '10.88.0.1',
  prefixLength: 24,
  serviceCidr: serviceClusterIpRange,
} as const;

export const nodeName = 'smk-node';
/** kubelet 1.35's default sandbox image; built from pause.c and imported under this name. */
export const pauseImage = 'registry.k8s.io/pause:3.10.1';
/** The kubelet API port (the API server's logs/exec go here), on the gateway address only. */
export const kubeletPort = 10250;

/**
 * Host paths the node bed writes outside its temp dir: the kubelet's root (the CSI driver and the
 * chart's hostPaths name it), the pod logs the kubelet keeps, the CNI cache containerd keeps, the
 * CSI providers' socket dir. All are removed on stop.
 */
export const hostPaths = {
  kubeletRoot: '/var/lib/kubelet',
  podLogs: '/var/log/pods',
  containerLogs: '/var/log/containers',
  cniState: '/var/lib/cni',
  csiProviders: '/var/run/secrets-store-csi-providers',
} as const;

export interface NodeLayout {
  /** The node bed's temp dir (beside the control plane's). */
  readonly dir: string;
  readonly containerdSocket: string;
  readonly containerdRoot: string;
  readonly containerdState: string;
  readonly cniConfDir: string;
  readonly cniIpamDir: string;
  readonly kubeletConfigPath: string;
  readonly kubeletKubeConfigPath: string;
  readonly kubeProxyConfigPath: string;
  readonly kubeProxyKubeConfigPath: string;
  readonly resolvConfPath: string;
  readonly volumePluginDir: string;
  readonly caCertPath: string;
}

export function nodeLayout(dir: string, caCertPath: string): NodeLayout {
  return {
    dir,
    containerdSocket: `${dir}/containerd/containerd.sock`,
    containerdRoot: `${dir}/containerd/root`,
    containerdState: `${dir}/containerd/state`,
    cniConfDir: `${dir}/cni/net.d`,
    cniIpamDir: `${dir}/cni/ipam`,
    kubeletConfigPath: `${dir}/kubelet-config.yaml`,
    kubeletKubeConfigPath: `${dir}/kubelet.kubeconfig`,
    kubeProxyConfigPath: `${dir}/kube-proxy-config.yaml`,
    kubeProxyKubeConfigPath: `${dir}/kube-proxy.kubeconfig`,
    resolvConfPath: `${dir}/resolv.conf`,
    volumePluginDir: `${dir}/volume-plugins`,
    caCertPath,
  };
}

/** containerd 1.6 (Debian 12) with CRI: every path of its own under the bed's dir. */
export function containerdConfig(layout: NodeLayout): string {
  return `version = 2
root = "${layout.containerdRoot}"
state = "${layout.containerdState}"

[grpc]
  address = "${layout.containerdSocket}"
[ttrpc]
  address = "${layout.containerdSocket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${layout.dir}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  # This VM lacks CAP_SYS_RESOURCE: a sandbox's oom_score_adj (-998) cannot be set below ours, and
  # without this every sandbox fails in runc with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        # runc's state, which defaults to /run/containerd/runc.
        Root = "${layout.containerdState}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${layout.cniConfDir}"
    max_conf_num = 1
`;
}

/**
 * Pulls cannot leave the machine: every image the bed uses is imported, and a pull of anything
 * else goes to a closed loopback port (no DNS lookup, no connection out) and fails at once.
 */
export const containerdEnv: Readonly<Record<string, string>> = {
  HTTPS_PROXY: 'http://127.0.0.1:9',
  HTTP_PROXY: 'http://127.0.0.1:9',
  NO_PROXY: '',
};

/**
 * One bridge, the gateway on the node, host-local addresses. No IP masquerade and no portmap: pod
 * traffic has nowhere to go but the node and other pods (the containment rules drop the rest).
 */
export function cniConfig(layout: NodeLayout): string {
  return `${JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'smk-node-bed',
      plugins: [
        {
          type: 'bridge',
          bridge: nodeNetwork.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: layout.cniIpamDir,
            ranges: [[{ subnet: nodeNetwork.podCidr, gateway: nodeNetwork.gateway }]],
            // ClusterIPs are translated on the node, so pods send everything to the gateway.
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
      ],
    },
    null,
    2,
  )}\n`;
}

/** No name server: pods address everything by IP here, and a lookup must not leave the machine. */
export const podResolvConf = '# smk node bed: no name server (pods use IP addresses)\noptions ndots:1\n';

export function kubeletConfig(layout: NodeLayout): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1, which kubelet 1.35 refuses unless told otherwise; no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://${layout.containerdSocket}
address: ${nodeNetwork.gateway}
port: ${kubeletPort}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${layout.caCertPath}}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: ${layout.resolvConfPath}
volumePluginDir: ${layout.volumePluginDir}
# Secret, ConfigMap and CSI volumes are refreshed (CSI: republished, for the driver's rotation) at this pace.
syncFrequency: 10s
# Imported images cannot be pulled again: never collect them; disk pressure is not what is tested.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
registerNode: true
`;
}

export function kubeletArgs(layout: NodeLayout): string[] {
  return [
    `--config=${layout.kubeletConfigPath}`,
    `--kubeconfig=${layout.kubeletKubeConfigPath}`,
    `--hostname-override=${nodeName}`,
    `--node-ip=${nodeNetwork.gateway}`,
    '--v=2',
  ];
}

export function kubeProxyConfig(layout: NodeLayout): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${layout.kubeProxyKubeConfigPath}}
mode: iptables
clusterCIDR: ${nodeNetwork.podCidr}
hostnameOverride: ${nodeName}
# NodePorts only on the bridge gateway, never on the machine's other addresses.
nodePortAddresses: ["${nodeNetwork.gateway}/32"]
iptables: {localhostNodePorts: false}
# Zero: leave the machine's conntrack limits and timeouts as they are.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
`;
}

export function kubeProxyArgs(layout: NodeLayout): string[] {
  return [`--config=${layout.kubeProxyConfigPath}`, '--v=1'];
}
