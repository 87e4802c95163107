/**
 * `smk webhook --tls-secret --write-through` in a pod's shape (KUBERNETES_SERVICE_HOST/PORT, the
 * ServiceAccount's token and CA at the in-cluster paths, no kubeconfig) against the real API
 * server: the TLS bootstrap fills the Secret and patches the caBundle as the ServiceAccount, the
 * write-through Secret cache lists and watches, and the process never loads
 * @kubernetes/client-node (its modules are ~40 MiB of the webhook's RSS). The in-cluster paths
 * are given in a private mount namespace (unshare), as a pod's are.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AdmissionregistrationV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { bundledSmk } from '../harness/bundle.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';

const sources = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const recorder = new URL('../harness/record-modules.ts', import.meta.url).pathname;

/**
 * The source files behind the loaded modules: a bundle chunk (file:///…/chunk-X.mjs) stands for
 * the sources its linked source map lists, so the image's code splitting is checked too.
 */
async function loadedSources(urls: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const url of urls) {
    if (!url.startsWith('file://')) continue;
    const path = fileURLToPath(url);
    if (!path.endsWith('.mjs') || path.includes('/node_modules/')) {
      files.push(path);
      continue;
    }
    const map = JSON.parse(await readFile(`${path}.map`, 'utf8')) as { sources: string[] };
    files.push(...map.sources.map((source) => new URL(source, url).pathname));
  }
  return files;
}

describe('smk webhook in a pod', () => {
  let bed: TestBed;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    bed = await connectTestBed();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await bed?.stop();
  });

  for (const program of ['sources', 'bundle'] as const) {
    test(`--tls-secret bootstraps TLS as the in-cluster ServiceAccount, --write-through lists its Secrets, and never loads client-node (${program})`, async () => {
      const cli = program === 'sources' ? sources : await bundledSmk();
      const namespace = await bed.newNamespace(`webhook-in-cluster-${program}`);
      const admission = bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
      const core = bed.kubeConfig.makeApiClient(CoreV1Api);
      const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
      const configuration = `smk-in-cluster-${namespace}`;
      await admission.createMutatingWebhookConfiguration({
        body: {
          metadata: { name: configuration },
          webhooks: [
            {
              name: 'pods.smk.dev',
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Ignore',
              clientConfig: { service: { namespace, name: 'smk-webhook', path: '/mutate/pods' } },
              // Never called: only its caBundle matters here.
              objectSelector: { matchLabels: { 'never-set': 'x' } },
            },
          ],
        },
      });
      cleanups.push(() => admission.deleteMutatingWebhookConfiguration({ name: configuration }));
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'smk-webhook' } } });
      const subjects = [{ kind: 'ServiceAccount', name: 'smk-webhook', namespace }];
      await rbac.createNamespacedRole({
        namespace,
        body: {
          metadata: { name: 'smk-webhook-tls' },
          rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update'] }],
        },
      });
      await rbac.createNamespacedRoleBinding({
        namespace,
        body: {
          metadata: { name: 'smk-webhook-tls' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'smk-webhook-tls' },
          subjects,
        },
      });
      await rbac.createClusterRole({
        body: {
          metadata: { name: configuration },
          rules: [
            {
              apiGroups: ['admissionregistration.k8s.io'],
              resources: ['mutatingwebhookconfigurations'],
              resourceNames: [configuration],
              verbs: ['get', 'patch'],
            },
          ],
        },
      });
      cleanups.push(() => rbac.deleteClusterRole({ name: configuration }));
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: configuration },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: configuration },
          subjects,
        },
      });
      cleanups.push(() => rbac.deleteClusterRoleBinding({ name: configuration }));
      // --write-through: the labelled Secrets' list and watch (all namespaces), as the chart grants.
      const secretsReader = `${configuration}-secrets`;
      await rbac.createClusterRole({
        body: {
          metadata: { name: secretsReader },
          rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'] }],
        },
      });
      cleanups.push(() => rbac.deleteClusterRole({ name: secretsReader }));
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: secretsReader },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: secretsReader },
          subjects,
        },
      });
      cleanups.push(() => rbac.deleteClusterRoleBinding({ name: secretsReader }));

      // /run (where /var/run points) as the pod sees it: the ServiceAccount's token and the cluster CA.
      const work = await mkdtemp(join(tmpdir(), 'smk-in-cluster-'));
      cleanups.push(() => rm(work, { recursive: true, force: true }));
      const run = join(work, 'run');
      const accountDir = join(run, 'secrets', 'kubernetes.io', 'serviceaccount');
      await mkdir(accountDir, { recursive: true });
      await writeFile(join(accountDir, 'token'), await bed.serviceAccountToken(namespace, 'smk-webhook'));
      await writeFile(join(accountDir, 'ca.crt'), bed.caPem);
      const home = join(work, 'home');
      await mkdir(home);
      const moduleLog = join(work, 'modules.log');
      const server = new URL(bed.serverUrl);

      const child = spawn(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount --bind "$0" /run && exec "$@"',
          run,
          process.execPath,
          `--import=${recorder}`,
          cli,
          'webhook',
          '--tls-secret=smk-webhook-tls',
          '--tls-service=smk-webhook',
          `--tls-webhook-config=${configuration}`,
          '--port=0',
          '--host=127.0.0.1',
          '--shutdown-delay=0',
          '--write-through',
        ],
        {
          env: {
            PATH: process.env.PATH,
            HOME: home,
            POD_NAMESPACE: namespace,
            KUBERNETES_SERVICE_HOST: server.hostname,
            KUBERNETES_SERVICE_PORT: server.port,
            SMK_TEST_MODULE_LOG: moduleLog,
            AWS_REGION: 'us-east-1',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      // Resolves once the server is up (it starts after the bootstrap wrote the files and patched the
      // caBundle) and the write-through Secrets are listed, or when the process ends first.
      const ready = new Promise<boolean>((resolve) => {
        const collect = (chunk: Buffer): void => {
          output += chunk.toString();
          if (output.includes('injector ready') && output.includes('write-through Secrets listed')) {
            resolve(true);
          }
        };
        child.stdout.on('data', collect);
        child.stderr.on('data', collect);
        child.on('exit', () => resolve(false));
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      cleanups.push(async () => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      assert.ok(await ready, `the webhook did not start:\n${output}`);

      const secret = await core.readNamespacedSecret({ namespace, name: 'smk-webhook-tls' });
      assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
      const patched = await admission.readMutatingWebhookConfiguration({ name: configuration });
      const bundle = Buffer.from(patched.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString(
        'utf8',
      );
      const serving = new X509Certificate(Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64'));
      assert.ok(
        serving.checkIssued(new X509Certificate(bundle)),
        'the caBundle trusts the serving certificate',
      );

      child.kill('SIGTERM');
      assert.equal(await exited, 0, output);
      const modules = await loadedSources((await readFile(moduleLog, 'utf8')).split('\n'));
      // The recorder saw the bootstrap load, so an absence below means something.
      assert.ok(modules.some((file) => file.endsWith('/src/webhook/tls/bootstrap.ts')));
      assert.deepEqual(
        modules.filter((file) => file.includes('/@kubernetes/client-node/')),
        [],
        'client-node loaded',
      );
      assert.ok(modules.some((file) => file.endsWith('/src/kube/in-cluster.ts')));
      if (program === 'bundle') {
        // What the image's code splitting must keep out of the webhook (issue 19): zod's other
        // locales (a named `{ z }` import keeps all of zod), and the AWS SDK's client code beside
        // the partition data that region names are checked against (scripts/build.ts).
        assert.deepEqual(
          modules.filter((file) => /\/zod\/v4\/locales\/(?!en\.js)/.test(file)),
          [],
          'zod loaded whole',
        );
        assert.deepEqual(
          modules.filter((file) => file.includes('/@smithy/')),
          [],
          'AWS SDK client code loaded',
        );
      }
      assert.ok(
        modules.some((file) => file.endsWith('/src/kube/api-source.ts')),
        'the Secret cache ran',
      );
    });
  }
});
