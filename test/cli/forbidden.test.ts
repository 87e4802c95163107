/**
 * Roles started with an identity the API server refuses (RBAC missing): a start-up dependency that
 * is an informer is supervised like any other informer failure — the process keeps running with
 * /readyz failing, says what it may not do (verb, resource, scope), retries with backoff, and
 * becomes ready once the permission is granted. It never dies of an unsettled start-up wait.
 * The controller gates each of its controllers on its own caches: a list refused to rotation
 * holds rotation only, while sync syncs.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, RbacAuthorizationV1Api, type V1PolicyRule } from '@kubernetes/client-node';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import {
  createAwsSecret,
  createServiceAccount,
  decode,
  readSecret,
  ready,
  secretSyncApi,
  secretsManager,
} from '../controller/harness.ts';
import { installCrds } from '../harness/crds.ts';
import { connectMoto } from '../harness/moto.ts';
import { waitFor } from '../harness/wait.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { renderKubeConfig } from '../testbed/kubeconfig.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

let bed: TestBed;
let work: string;
const moto = connectMoto();
const aws = secretsManager(moto.endpoint);
const clusterObjects: { kind: 'ClusterRole' | 'ClusterRoleBinding'; name: string }[] = [];

before(async () => {
  bed = await connectTestBed();
  work = await mkdtemp(join(tmpdir(), 'smk-forbidden-'));
  await installCrds(bed.kubeConfig);
});

after(async () => {
  const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  for (const { kind, name } of clusterObjects) {
    if (kind === 'ClusterRole') await rbac.deleteClusterRole({ name }).catch(() => undefined);
    else await rbac.deleteClusterRoleBinding({ name }).catch(() => undefined);
  }
  await rm(work, { recursive: true, force: true });
  await bed?.stop();
});

/** A ServiceAccount with no RBAC at all, and a kubeconfig file that authenticates as it. */
async function identityWithoutRbac(namespace: string, name: string): Promise<string> {
  await bed.kubeConfig
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  const token = await bed.serviceAccountToken(namespace, name);
  const path = join(work, `${namespace}-${name}.kubeconfig`);
  await writeFile(
    path,
    renderKubeConfig({
      server: bed.serverUrl,
      caPem: bed.caPem,
      credentials: { name: `system:serviceaccount:${namespace}:${name}`, token },
      namespace,
    }),
    { mode: 0o600 },
  );
  return path;
}

/** Grants ServiceAccount `name` the `rules` cluster-wide (a ClusterRole `role` and its binding). */
async function grant(namespace: string, name: string, role: string, rules: V1PolicyRule[]): Promise<void> {
  const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const roleName = `smk-forbidden-${namespace}-${role}`;
  await rbac.createClusterRole({ body: { metadata: { name: roleName }, rules } });
  clusterObjects.push({ kind: 'ClusterRole', name: roleName });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: roleName },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  });
  clusterObjects.push({ kind: 'ClusterRoleBinding', name: roleName });
}

interface Role {
  readonly child: ChildProcess;
  output(): string;
  exited(): Promise<number | null>;
  stop(): Promise<number | null>;
}

function startRole(args: readonly string[], kubeconfig: string, env: NodeJS.ProcessEnv = {}): Role {
  const child = spawn(process.execPath, [cli, ...args], {
    env: {
      PATH: process.env.PATH,
      KUBECONFIG: kubeconfig,
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      SMK_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => text,
    exited: () => exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await Promise.race([
        exit,
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000)),
      ]);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        throw new Error(`did not stop on SIGTERM:\n${text.slice(-2000)}`);
      }
      return code;
    },
  };
}

/** The first output line matching `pattern`; fails at once if the process exits first. */
async function logLine(role: Role, pattern: RegExp, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = role
      .output()
      .split('\n')
      .find((candidate) => pattern.test(candidate));
    if (line) return line;
    const { exitCode, signalCode } = role.child;
    if (exitCode !== null || signalCode !== null || Date.now() > deadline) {
      throw new Error(
        `${exitCode !== null || signalCode !== null ? `exited (${exitCode ?? signalCode})` : 'timed out'} before a line matching ${pattern}:\n${role.output().slice(-3000)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function https(
  port: number,
  caPem: string,
  path: string,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', ca: caPem, agent: false },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function podReview(uid: string, spec: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'apps',
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'apps' }, spec },
    },
  });
}

describe('smk webhook --write-through without RBAC to list Secrets', () => {
  it('keeps serving with /readyz failing, names the forbidden list, and is ready once granted', async () => {
    const ns = await bed.newNamespace('forbid-hook');
    const kubeconfig = await identityWithoutRbac(ns, 'webhook');
    const ca = await createCertificateAuthority({ commonName: 'forbidden test CA', validForDays: 1 });
    const serving = await issueServingCertificate(ca, { commonName: 'webhook', ipAddresses: ['127.0.0.1'] });
    await writeFile(join(work, 'tls.crt'), serving.certPem);
    await writeFile(join(work, 'tls.key'), serving.keyPem, { mode: 0o600 });
    const webhook = startRole(
      [
        'webhook',
        '--write-through',
        '--tls-cert',
        join(work, 'tls.crt'),
        '--tls-key',
        join(work, 'tls.key'),
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--agent-image',
        'registry.invalid/smk:forbidden',
        '--shutdown-delay',
        '0',
      ],
      kubeconfig,
    );
    try {
      const listening = await logLine(webhook, /"msg":"webhook listening"/);
      const port = Number(/"port":(\d+)/.exec(listening)?.[1]);
      const forbidden = await logLine(webhook, /"msg":"forbidden: /);
      assert.match(forbidden, /list/, 'names the verb');
      assert.match(forbidden, /secrets/, 'names the resource');
      assert.match(forbidden, /smk\.dev\/write-through=true/, 'names the selector');
      assert.equal((await https(port, ca.certPem, '/healthz')).status, 200, 'alive');
      assert.equal((await https(port, ca.certPem, '/readyz')).status, 503, 'not ready');
      // A pod naming no Secret needs no cache: injection is answered.
      const plain = await https(
        port,
        ca.certPem,
        '/mutate/pods',
        podReview('plain', { containers: [{ name: 'a', image: 'x' }] }),
      );
      assert.equal(plain.status, 200);
      // A pod naming a Secret might name a write-through one: no answer that may be wrong.
      const naming = await https(
        port,
        ca.certPem,
        '/mutate/pods',
        podReview('naming', {
          containers: [{ name: 'a', image: 'x' }],
          volumes: [{ name: 'v', secret: { secretName: 'db' } }],
        }),
      );
      assert.equal(naming.status, 503, naming.body);

      await grant(ns, 'webhook', 'secrets', [
        { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
      ]);
      await waitFor('/readyz 200 once granted', 45_000, async () =>
        (await https(port, ca.certPem, '/readyz')).status === 200 ? true : undefined,
      );
      const granted = await https(
        port,
        ca.certPem,
        '/mutate/pods',
        podReview('after', {
          containers: [{ name: 'a', image: 'x' }],
          volumes: [{ name: 'v', secret: { secretName: 'db' } }],
        }),
      );
      assert.equal(granted.status, 200, granted.body);
      assert.equal(await webhook.stop(), 0, webhook.output().slice(-2000));
      assert.doesNotMatch(webhook.output(), /unsettled top-level await/);
    } finally {
      webhook.child.kill('SIGKILL');
    }
  });
});

describe('smk controller without the RBAC it needs', () => {
  it("syncs a SecretSync while rotation waits for its refused lists, /readyz naming what rotation waits for; ready once rotation's RBAC is granted too", async () => {
    const ns = await bed.newNamespace('forbid-ctl');
    const kubeconfig = await identityWithoutRbac(ns, 'controller');
    const controller = startRole(
      ['controller', '--health-port', '0', '--namespaces', ns, '--leader-elect', 'false'],
      kubeconfig,
    );
    try {
      const port = Number(/"healthPort":(\d+)/.exec(await logLine(controller, /"healthPort"/))?.[1]);
      const health = (path: string) => fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.status);
      const readyz = () => fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.text());
      await logLine(
        controller,
        new RegExp(
          `"msg":"forbidden: this identity may not list secrets in namespace ${ns} \\(label selector app.kubernetes.io/managed-by=smk\\)`,
        ),
      );
      assert.equal(await health('/healthz'), 200, 'alive');
      assert.equal(await health('/readyz'), 503, 'not ready');
      assert.match(
        await readyz(),
        /^\[-\]sync waiting .*forbidden: this identity may not list secrets in namespace/m,
      );

      // What the sync needs, and nothing of rotation's (a platform team that left rotation's
      // ClusterRole out): the sync controller starts on its own caches and syncs.
      await grant(ns, 'controller', 'sync', [
        {
          apiGroups: [''],
          resources: ['secrets'],
          verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
        },
        { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get'] },
        { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        { apiGroups: ['smk.dev'], resources: ['secretsyncs'], verbs: ['get', 'list', 'watch', 'patch'] },
        { apiGroups: ['smk.dev'], resources: ['secretsyncs/status'], verbs: ['patch'] },
        {
          apiGroups: ['secrets-store.csi.x-k8s.io'],
          resources: ['secretproviderclasses'],
          verbs: ['get', 'list', 'watch', 'patch'],
        },
      ]);
      await logLine(controller, /"msg":"sync controller started"/, 45_000);
      await createServiceAccount(bed.kubeConfig, ns, 'app', 'forbid-ctl-role');
      // Letters and digits: the leak scan registers it and looks for it in every log.
      const value = `synced-${randomUUID()}`;
      await createAwsSecret(aws, `${ns}/db`, value);
      await secretSyncApi(bed.kubeConfig).create(ns, 'db', {
        serviceAccountName: 'app',
        objects: [{ objectName: `${ns}/db`, objectType: 'secretsmanager', objectAlias: 'V' }],
      });
      await waitFor(`SecretSync ${ns}/db Ready while rotation waits`, 45_000, async () =>
        ready(await secretSyncApi(bed.kubeConfig).get(ns, 'db'))?.status === 'True' ? true : undefined,
      );
      assert.equal(decode((await readSecret(bed.kubeConfig, ns, 'db'))?.data?.V), value);

      // Rotation waits: /readyz fails, names rotation, the resource and the verb it is refused.
      const report = await waitFor('/readyz to name the list rotation is refused', 30_000, async () => {
        const text = await readyz();
        return /\[-\]rotation .*forbidden: this identity may not list/.test(text) ? text : undefined;
      });
      assert.match(report, /^\[\+\]sync ok$/m, report);
      assert.match(
        report,
        new RegExp(
          `^\\[-\\]rotation waiting .*forbidden: this identity may not list (secretsrotationmappings\\.awssecretsoperator\\.secretoperator|deployments\\.apps|statefulsets\\.apps|daemonsets\\.apps|configmaps) in namespace ${ns}`,
          'm',
        ),
        report,
      );
      assert.match(report, /^not ready$/m);
      assert.equal(await health('/readyz'), 503, 'not ready while rotation cannot start');
      assert.equal(await health('/readyz/sync'), 200, 'the sync controller alone is ready');
      assert.equal(await health('/readyz/rotation'), 503);
      assert.equal(await health('/readyz/nothing'), 404);
      assert.doesNotMatch(controller.output(), /"msg":"rotation controller started"/);
      assert.equal(controller.child.exitCode, null, 'still running');

      await grant(ns, 'controller', 'rotation', [
        {
          apiGroups: ['apps'],
          resources: ['deployments', 'statefulsets', 'daemonsets'],
          verbs: ['get', 'list', 'watch', 'patch'],
        },
        // The optional rollout kinds and Reloader-style sources, as the chart grants them (the
        // bed may serve Argo Rollouts: another test installs its CRD).
        { apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['get', 'list', 'watch', 'patch'] },
        { apiGroups: ['argoproj.io'], resources: ['rollouts'], verbs: ['get', 'list', 'watch', 'patch'] },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
        {
          apiGroups: ['awssecretsoperator.secretoperator'],
          resources: ['secretsrotationmappings'],
          verbs: ['get', 'list', 'watch'],
        },
        {
          apiGroups: ['awssecretsoperator.secretoperator'],
          resources: ['secretsrotationmappings/status'],
          verbs: ['patch'],
        },
      ]);
      await logLine(controller, /"msg":"rotation controller started"/, 60_000);
      await waitFor('/readyz 200 once granted', 30_000, async () =>
        (await health('/readyz')) === 200 ? true : undefined,
      );
      assert.match(await readyz(), /^\[\+\]rotation ok$/m);
      assert.equal(await controller.stop(), 0, controller.output().slice(-2000));
      assert.doesNotMatch(controller.output(), /unsettled top-level await|unexpected error/);
      assert.doesNotMatch(controller.output(), new RegExp(value), 'no secret value in any log line');
    } finally {
      controller.child.kill('SIGKILL');
    }
  });

  it('stops cleanly (exit 0) on SIGTERM while a start-up list is still refused', async () => {
    const ns = await bed.newNamespace('forbid-stop');
    const kubeconfig = await identityWithoutRbac(ns, 'controller');
    const controller = startRole(
      ['controller', '--health-port', '0', '--namespaces', ns, '--leader-elect', 'false'],
      kubeconfig,
    );
    try {
      await logLine(controller, /"msg":"forbidden: /);
      assert.equal(await controller.stop(), 0, controller.output().slice(-2000));
      assert.doesNotMatch(controller.output(), /unsettled top-level await|unexpected error/);
    } finally {
      controller.child.kill('SIGKILL');
    }
  });
});

describe('smk csi-provider without RBAC', () => {
  it('makes no API call to start: it serves its socket (a mount then reports the refusal itself)', async () => {
    const ns = await bed.newNamespace('forbid-csi');
    const kubeconfig = await identityWithoutRbac(ns, 'csi');
    const volume = await mkdtemp(join(tmpdir(), 'smk-csi-'));
    const provider = startRole(
      ['csi-provider', '--provider-volume', volume, '--health-port', '0', '--node-name', 'node-a'],
      kubeconfig,
    );
    try {
      await waitFor('the socket to answer Version (smk csi-provider --probe)', 20_000, async () => {
        const probe = startRole(['csi-provider', '--provider-volume', volume, '--probe'], kubeconfig);
        return (await probe.exited()) === 0 ? true : undefined;
      });
      assert.equal(provider.child.exitCode, null, 'still running');
      assert.equal(await provider.stop(), 0, provider.output().slice(-2000));
    } finally {
      provider.child.kill('SIGKILL');
      await rm(volume, { recursive: true, force: true });
    }
  });
});
