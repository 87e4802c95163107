/**
 * Webhook replicas are stateless: two `smk webhook` processes behind one balancer (as behind a
 * Service) registered with the API server. Pods are injected whichever replica answers, with the
 * same result; when the replica serving the API server is killed, the next pod goes to the other
 * and is injected the same way — nothing was held by the dead one.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdmissionregistrationV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { webhookConfiguration } from '../../src/webhook/configuration.ts';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/tls/pki.ts';
import { delay, uniqueName, waitFor } from '../faults/controller-world.ts';
import { freePort } from '../harness/ports.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { type Balancer, startBalancer } from './balancer.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Replica {
  readonly port: number;
  readonly child: ChildProcess;
  log(): string;
}

describe('HA: two webhook replicas behind one balancer', () => {
  let bed: TestBed;
  let work: string;
  let balancer: Balancer;
  let namespace: string;
  const replicas: Replica[] = [];
  const configName = uniqueName('smk-ha-webhook');

  async function startReplica(certFile: string, keyFile: string): Promise<Replica> {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        cli,
        'webhook',
        '--tls-cert',
        certFile,
        '--tls-key',
        keyFile,
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--agent-image',
        'registry.invalid/smk:test',
        '--shutdown-delay',
        '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
    });
    await waitFor(`webhook replica on ${port}`, 30_000, async () => log.includes('injector ready'));
    const replica = { port, child, log: () => log };
    replicas.push(replica);
    return replica;
  }

  before(async () => {
    bed = await connectTestBed();
    work = await mkdtemp(join(tmpdir(), 'smk-ha-webhook-'));
    namespace = await bed.newNamespace('ha-webhook');
    const ca = await createCertificateAuthority({ commonName: 'smk-ha-webhook-ca', validForDays: 1 });
    const serving = await issueServingCertificate(ca, {
      commonName: 'smk-webhook',
      ipAddresses: ['127.0.0.1'],
    });
    const certFile = join(work, 'tls.crt');
    const keyFile = join(work, 'tls.key');
    await writeFile(certFile, serving.certPem);
    await writeFile(keyFile, serving.keyPem, { mode: 0o600 });
    const [a, b] = [await startReplica(certFile, keyFile), await startReplica(certFile, keyFile)];
    balancer = await startBalancer([a.port, b.port]);
    await bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: webhookConfiguration({
        name: configName,
        caBundlePem: ca.certPem,
        target: { url: `https://127.0.0.1:${balancer.port}` },
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
      }),
    });
    // The API server picks up a new webhook configuration a moment later.
    await delay(2_000);
  });

  after(async () => {
    await bed?.kubeConfig
      .makeApiClient(AdmissionregistrationV1Api)
      .deleteMutatingWebhookConfiguration({ name: configName })
      .catch(() => undefined);
    for (const replica of replicas) replica.child.kill('SIGKILL');
    await balancer?.stop();
    await bed?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const createPod = async (name: string): Promise<V1Pod> =>
    bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name,
          annotations: {
            'smk.dev/inject': 'true',
            'smk.dev/objects': JSON.stringify([{ objectName: 'prod/db', objectType: 'secretsmanager' }]),
            'smk.dev/region': 'us-east-1',
          },
        },
        spec: { containers: [{ name: 'app', image: 'example/app:1' }] },
      },
    });

  /** The pod as injected, without what differs between two pods by name (the API access volume). */
  const injected = (pod: V1Pod): unknown =>
    JSON.parse(
      JSON.stringify({
        initContainers: pod.spec?.initContainers,
        containers: pod.spec?.containers,
        volumes: pod.spec?.volumes,
      }).replace(/kube-api-access-[a-z0-9]+/g, 'kube-api-access'),
    );

  it('pods are injected the same way by either replica, also after the serving one is killed', async (t) => {
    const first = await createPod('first');
    assert.ok(
      first.spec?.initContainers?.some((container) => container.name === 'smk-agent-init'),
      'injected',
    );
    const served = balancer.connectionsByBackend();
    const serving = replicas.find((replica) => (served[replica.port] ?? 0) > 0);
    assert.ok(serving, `a replica served the first pod: ${JSON.stringify(served)}`);
    const other = replicas.find((replica) => replica !== serving);
    assert.ok(other);

    serving.child.kill('SIGKILL');
    await once(serving.child, 'exit');
    const pods: V1Pod[] = [];
    for (let i = 0; i < 5; i += 1) pods.push(await createPod(`after-kill-${i}`));
    const after = balancer.connectionsByBackend();
    assert.ok((after[other.port] ?? 0) > 0, `the other replica took over: ${JSON.stringify(after)}`);
    for (const pod of pods) assert.deepEqual(injected(pod), injected(first), `${pod.metadata?.name} differs`);
    t.diagnostic(`connections per replica port: ${JSON.stringify(after)}; 6 pods injected identically`);
  });
});
