/**
 * Command lines of the bed's etcd, kube-apiserver, kube-controller-manager (and, for the node bed,
 * kube-scheduler). Pure: paths and ports in, argv out, so what a real cluster would run is readable
 * in one place.
 */

export interface ControlPlaneLayout {
  readonly dataDir: string;
  readonly etcdClientPort: number;
  readonly etcdPeerPort: number;
  readonly apiserverPort: number;
  readonly caCertPath: string;
  readonly servingCertPath: string;
  readonly servingKeyPath: string;
  readonly serviceAccountKeyPath: string;
  readonly serviceAccountPublicKeyPath: string;
  readonly controllerManagerKubeConfigPath: string;
  /** With both set, the API server writes an audit log (what the leak scan reads). */
  readonly auditPolicyPath?: string;
  readonly auditLogPath?: string;
  /** Set for the node bed (test/testbed/node): a control plane that kubelets and pods reach. */
  readonly node?: NodeControlPlaneLayout;
}

export interface NodeControlPlaneLayout {
  /** Where the API server listens and what it advertises: the node's bridge gateway, which pods reach. */
  readonly address: string;
  /** The API server's client certificate towards kubelets (logs, exec). */
  readonly kubeletClientCertPath: string;
  readonly kubeletClientKeyPath: string;
  /** The CA that signs kubelet client certificates asked for by CSRs. */
  readonly caKeyPath: string;
  readonly schedulerKubeConfigPath: string;
}

/** Where the bed keeps its audit policy and log, under its temp dir. */
export function auditPaths(dir: string): { readonly policy: string; readonly log: string } {
  return { policy: `${dir}/audit-policy.yaml`, log: `${dir}/logs/audit.log` };
}

/**
 * Every write with its request and response body (reads are left out: what smk puts into an
 * Event, annotation or status arrives as a write), so the leak scan sees all smk stored.
 */
export const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    verbs: [get, list, watch]
  - level: Metadata
    resources: [{ group: coordination.k8s.io, resources: [leases] }]
  - level: RequestResponse
`;

export const serviceAccountIssuer = 'https://kubernetes.default.svc.cluster.local';
export const serviceClusterIpRange = '10.0.0.0/24';
/** The first address of the service range: the `kubernetes` Service's ClusterIP. */
export const kubernetesServiceIp = '10.0.0.1';

/** The admission chain of a production cluster (the defaults plus the webhooks made explicit). */
export const admissionPlugins = [
  'NamespaceLifecycle',
  'LimitRanger',
  'ServiceAccount',
  'NodeRestriction',
  'PodSecurity',
  'Priority',
  'DefaultTolerationSeconds',
  'DefaultStorageClass',
  'RuntimeClass',
  'MutatingAdmissionWebhook',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionWebhook',
  'ResourceQuota',
];

/** What smk's roles need from a controller manager; there is no kubelet, so Pods stay Pending. */
export const plainBedControllers = [
  'deployment-controller',
  'replicaset-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'namespace-controller',
  'garbage-collector-controller',
  // Type-checks ValidatingAdmissionPolicies into their status (the chart ships some).
  'validatingadmissionpolicy-status-controller',
];

export function etcdArgs(layout: ControlPlaneLayout): string[] {
  const clientUrl = `http://127.0.0.1:${layout.etcdClientPort}`;
  const peerUrl = `http://127.0.0.1:${layout.etcdPeerPort}`;
  return [
    '--name=testbed',
    `--data-dir=${layout.dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=testbed=${peerUrl}`,
    // A throw-away store: durability costs startup and test time and buys nothing here.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

export function kubeApiserverArgs(layout: ControlPlaneLayout): string[] {
  const { node } = layout;
  const address = node?.address ?? '127.0.0.1';
  return [
    `--bind-address=${address}`,
    `--advertise-address=${address}`,
    `--secure-port=${layout.apiserverPort}`,
    `--tls-cert-file=${layout.servingCertPath}`,
    `--tls-private-key-file=${layout.servingKeyPath}`,
    `--client-ca-file=${layout.caCertPath}`,
    `--etcd-servers=http://127.0.0.1:${layout.etcdClientPort}`,
    `--service-cluster-ip-range=${serviceClusterIpRange}`,
    `--service-account-issuer=${serviceAccountIssuer}`,
    `--service-account-key-file=${layout.serviceAccountPublicKeyPath}`,
    `--service-account-signing-key-file=${layout.serviceAccountKeyPath}`,
    '--authorization-mode=Node,RBAC',
    `--enable-admission-plugins=${admissionPlugins.join(',')}`,
    '--allow-privileged=true',
    ...(node
      ? [
          // The `kubernetes` Service points at the advertised address, which pods reach through kube-proxy.
          `--kubelet-client-certificate=${node.kubeletClientCertPath}`,
          `--kubelet-client-key=${node.kubeletClientKeyPath}`,
          '--kubelet-preferred-address-types=InternalIP',
          // Webhook Services resolve to their pods' IPs, as on clusters whose control plane is on the pod network.
          '--enable-aggregator-routing=true',
        ]
      : // The `kubernetes` Service would point at 127.0.0.1, which Endpoints validation refuses.
        ['--endpoint-reconciler-type=none']),
    ...(layout.auditPolicyPath && layout.auditLogPath
      ? [
          `--audit-policy-file=${layout.auditPolicyPath}`,
          `--audit-log-path=${layout.auditLogPath}`,
          '--audit-log-format=json',
          '--audit-log-maxbackup=0',
        ]
      : []),
  ];
}

export function kubeControllerManagerArgs(layout: ControlPlaneLayout): string[] {
  const { node } = layout;
  return [
    `--kubeconfig=${layout.controllerManagerKubeConfigPath}`,
    // A node needs them all (node lifecycle, DaemonSets, endpoints, garbage collection of pods…).
    `--controllers=${node ? '*' : plainBedControllers.join(',')}`,
    ...(node
      ? [`--cluster-signing-cert-file=${layout.caCertPath}`, `--cluster-signing-key-file=${node.caKeyPath}`]
      : []),
    // As kubeadm does: each controller acts as its own ServiceAccount, so RBAC is exercised as in production.
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${layout.serviceAccountKeyPath}`,
    `--root-ca-file=${layout.caCertPath}`,
    '--cluster-name=smk-testbed',
    '--leader-elect=false',
    '--secure-port=0',
  ];
}

export function kubeSchedulerArgs(node: NodeControlPlaneLayout): string[] {
  return [`--kubeconfig=${node.schedulerKubeConfigPath}`, '--leader-elect=false', '--secure-port=0'];
}
