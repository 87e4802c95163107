/**
 * Consuming write-through Secrets on the real API server: a Deployment's pod (made by the
 * ReplicaSet controller) that mounts one gets the agent-filled memory volume in its place, and
 * the stored pod's agent, run here against moto, writes the files a secret volume would hold; a
 * pod that reads one through env is refused with the message; other pods pass untouched.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiException, AppsV1Api, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { connectMoto } from '../harness/moto.ts';
import {
  agentImage,
  eventually,
  refusal,
  secretBody,
  settled,
  startWriteThroughWorld,
  type WriteThroughWorld,
} from './support.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const value = (label: string): string => `${label}-${randomBytes(6).toString('hex')}-Wq`;

/** Runs an agent container here: this checkout's CLI, its env as given, absolute paths moved under `root`. */
function runLocally(
  container: V1Container,
  root: string,
  endpoint: string,
): Promise<{ code: number; stderr: string }> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
  for (const variable of container.env ?? []) {
    assert.equal(variable.valueFrom, undefined, `${variable.name} comes from a reference`);
    const text = variable.value ?? '';
    env[variable.name] = text.startsWith('/') ? join(root, text) : text;
  }
  const [program, ...args] = container.command ?? [];
  assert.equal(program, 'smk');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

describe('pods using write-through Secrets on the test bed', () => {
  let world: WriteThroughWorld;
  let a: string;
  let work: string;
  const password = value('Pod');
  const apiKey = value('Key');

  before(async () => {
    world = await startWriteThroughWorld('wt-pods');
    [a] = world.namespaces;
    work = await mkdtemp(join(tmpdir(), 'smk-write-through-pods-'));
    await world.core.createNamespacedSecret({
      namespace: a,
      body: secretBody('db', { password, username: 'app' }),
    });
    await world.core.createNamespacedSecret({
      namespace: a,
      body: secretBody('api', { key: apiKey, other: 'x' }),
    });
    await world.core.createNamespacedSecret({
      namespace: a,
      body: { metadata: { name: 'plain' }, data: { cfg: Buffer.from('plain').toString('base64') } },
    });
    // The agents read Secrets Manager: wait until the controller has written both values there.
    await settled(world, a, 'db');
    await settled(world, a, 'api');
    await eventually('the webhook cache to see both write-through Secrets', async () =>
      world.cache.lookup(a, 'db') && world.cache.lookup(a, 'api') ? true : undefined,
    );
  });
  after(async () => {
    await world?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("a Deployment's pod mounting write-through Secrets gets memory volumes its agents fill from Secrets Manager", async () => {
    const apps = world.bed.kubeConfig.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace: a,
      body: {
        metadata: { name: 'shop' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'shop' } },
          template: {
            metadata: { labels: { app: 'shop' } },
            spec: {
              securityContext: { runAsUser: 1000 },
              containers: [
                {
                  name: 'app',
                  image: 'registry.invalid/shop:1',
                  volumeMounts: [
                    { name: 'db', mountPath: '/etc/db', readOnly: true },
                    { name: 'api', mountPath: '/etc/api', readOnly: true },
                    { name: 'plain', mountPath: '/etc/plain' },
                  ],
                },
              ],
              volumes: [
                { name: 'db', secret: { secretName: 'db' } },
                {
                  name: 'api',
                  secret: { secretName: 'api', defaultMode: 0o440, items: [{ key: 'key', path: 'api.key' }] },
                },
                { name: 'plain', secret: { secretName: 'plain' } },
              ],
            },
          },
        },
      },
    });
    const pod = await eventually<V1Pod>('the ReplicaSet controller to create the pod', async () => {
      const pods = await world.core.listNamespacedPod({ namespace: a, labelSelector: 'app=shop' });
      return pods.items[0];
    });
    const volumes = Object.fromEntries((pod.spec?.volumes ?? []).map((volume) => [volume.name, volume]));
    assert.deepEqual(JSON.parse(JSON.stringify(volumes.db)), {
      name: 'db',
      emptyDir: { medium: 'Memory', sizeLimit: '4Mi' },
    });
    assert.equal(volumes.api?.emptyDir?.medium, 'Memory');
    assert.equal(volumes.plain?.secret?.secretName, 'plain', 'a plain Secret volume stays');
    const agents = (pod.spec?.initContainers ?? []).filter((container) =>
      container.name.startsWith('smk-write-through-'),
    );
    assert.equal(agents.length, 2);
    assert.equal(agents[0]?.image, agentImage);
    assert.deepEqual(
      JSON.parse(JSON.stringify(pod.spec?.containers[0]?.volumeMounts?.slice(0, 3))),
      [
        { name: 'db', mountPath: '/etc/db', readOnly: true },
        { name: 'api', mountPath: '/etc/api', readOnly: true },
        { name: 'plain', mountPath: '/etc/plain' },
      ],
      "the app's mounts are as it wrote them",
    );

    const moto = connectMoto();
    for (const agent of agents) {
      const result = await runLocally(agent, work, moto.endpoint);
      assert.equal(result.code, 0, `${agent.name} exits 0 (stderr: ${result.stderr.slice(-400)})`);
    }
    const dir = (volume: string) => join(work, 'var/run/secrets/smk-write-through', volume);
    const visible = async (volume: string) =>
      (await readdir(dir(volume))).filter((name) => !name.startsWith('..')).sort();
    assert.deepEqual(await visible('db'), ['.write-through.json', 'password', 'username']);
    assert.deepEqual(await visible('api'), ['.write-through.json', 'api.key']);
    assert.ok(
      (await readFile(join(dir('db'), 'password'), 'utf8')) === password,
      'password file holds the value',
    );
    assert.equal(await readFile(join(dir('db'), 'username'), 'utf8'), 'app');
    assert.ok((await readFile(join(dir('api'), 'api.key'), 'utf8')) === apiKey, 'api.key holds the value');
  });

  test('a pod reading a write-through Secret through env is refused with how to consume it', async () => {
    let message = '';
    try {
      await world.core.createNamespacedPod({
        namespace: a,
        body: {
          metadata: { name: 'env-user' },
          spec: {
            containers: [
              {
                name: 'app',
                image: 'registry.invalid/app:1',
                env: [{ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
              },
            ],
          },
        },
      });
    } catch (error) {
      assert.ok(error instanceof ApiException);
      message = refusal(error);
    }
    assert.ok(
      message.includes(
        'container "app" env DB_PASSWORD: Secret "db" is write-through (its value lives in Secrets Manager, not in the Secret); mount it as a secret volume (smk fills the volume from Secrets Manager) or sync it into a plain Secret with a SecretSync',
      ),
      message,
    );
  });

  test('pods using only plain Secrets, or none, are stored as they were sent', async () => {
    const pod = await world.core.createNamespacedPod({
      namespace: a,
      body: {
        metadata: { name: 'plain-user' },
        spec: {
          containers: [
            { name: 'app', image: 'registry.invalid/app:1', envFrom: [{ secretRef: { name: 'plain' } }] },
          ],
          volumes: [{ name: 'cfg', secret: { secretName: 'plain' } }],
        },
      },
    });
    assert.equal(pod.spec?.initContainers, undefined);
    assert.equal(pod.spec?.volumes?.find((volume) => volume.name === 'cfg')?.secret?.secretName, 'plain');
  });
});
