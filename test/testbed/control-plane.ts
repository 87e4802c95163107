/**
 * Command lines of the bed's etcd, kube-apiserver and kube-controller-manager. Pure: paths and
 * ports in, argv out, so what a real cluster would run is readable in one place.
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
export const controllers = [
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
  return [
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
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
    // The `kubernetes` Service would point at 127.0.0.1, which Endpoints validation refuses.
    '--endpoint-reconciler-type=none',
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
  return [
    `--kubeconfig=${layout.controllerManagerKubeConfigPath}`,
    `--controllers=${controllers.join(',')}`,
    // As kubeadm does: each controller acts as its own ServiceAccount, so RBAC is exercised as in production.
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${layout.serviceAccountKeyPath}`,
    `--root-ca-file=${layout.caCertPath}`,
    '--cluster-name=smk-testbed',
    '--leader-elect=false',
    '--secure-port=0',
  ];
}
