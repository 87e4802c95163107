/**
 * The client-node pitfall (its issues 596 and 958): a watch whose connection stays open but
 * carries nothing more — a half-dead load balancer, a frozen NAT entry — looks healthy forever
 * unless something notices the silence. The sync controller runs here in-process (so its
 * watchdog can be set to seconds) against the API server through a TCP fault proxy that freezes
 * every open connection (a request written to a frozen connection is reset, as by a middlebox
 * that lost its state); a SecretSync created afterwards must still be synced, through a fresh
 * connection, within the watchdog's time — with no restart of anything.
 *
 * A second freeze swallows what is written instead of resetting it: the relist after the watchdog
 * then waits on a frozen pooled connection until the client's response deadline (headersTimeoutMs,
 * 3 s here, 60 s by default; undici's own default was 300 s) and is retried on a fresh one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AwsClients, createSecretReader, SecretCache } from '../../src/aws/index.ts';
import { coalescingReader } from '../../src/controller/coalesce.ts';
import { createIdentityResolver } from '../../src/controller/identity.ts';
import { createSyncController, type SyncController } from '../../src/controller/sync/controller.ts';
import { silentLogger } from '../../src/core/log.ts';
import { withConnectionReuse } from '../../src/kube/client.ts';
import { createServiceAccounts } from '../../src/kube/service-accounts.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { kubeConfigFromText, renderKubeConfig } from '../testbed/kubeconfig.ts';
import {
  createAwsSecrets,
  createSecretSync,
  createTenantServiceAccount,
  decode,
  installSecretSyncCrd,
  listSecrets,
  secretsManager,
  uniqueName,
  waitFor,
} from './controller-world.ts';
import { startTcpFaultProxy, type TcpFaultProxy } from './tcp-proxy.ts';

const silenceMs = 3_000;
const headersTimeoutMs = 3_000;

let bed: TestBed;
let aws: SecretsManagerClient;
let proxy: AwsProxy;
let kubeProxy: TcpFaultProxy;
let controller: SyncController;
let clients: AwsClients;
let namespace: string;

before(async () => {
  bed = await connectTestBed();
  await installSecretSyncCrd(bed.kubeConfig);
  const moto = connectMoto();
  aws = secretsManager(moto.endpoint);
  proxy = await startAwsProxy({ target: moto.endpoint });
  const server = new URL(bed.serverUrl);
  kubeProxy = await startTcpFaultProxy({ host: server.hostname, port: Number(server.port) });
  namespace = await bed.newNamespace('faults-watch');
  await createTenantServiceAccount(bed.kubeConfig, namespace, 'app');

  const user = bed.kubeConfig.getCurrentUser();
  const viaProxy = withConnectionReuse(
    kubeConfigFromText(
      renderKubeConfig({
        server: `https://${kubeProxy.address}`,
        caPem: bed.caPem,
        credentials: {
          name: 'smk-testbed-admin',
          certPem: Buffer.from(user?.certData ?? '', 'base64').toString('utf8'),
          keyPem: Buffer.from(user?.keyData ?? '', 'base64').toString('utf8'),
        },
      }),
    ),
    { headersTimeoutMs },
  );
  const cache = new SecretCache();
  clients = new AwsClients({ endpoint: proxy.endpoint, maxAttempts: 1, callTimeoutMs: 5_000 });
  controller = createSyncController({
    kubeConfig: viaProxy,
    identities: createIdentityResolver({
      serviceAccounts: createServiceAccounts(viaProxy),
      makeReader: (identity) => coalescingReader(createSecretReader(identity, { cache, clients })),
    }),
    defaultRegion: 'us-east-1',
    logger: silentLogger(),
    namespaces: [namespace],
    secretProviderClasses: false,
    silenceMs,
  });
  await controller.start();
  await waitFor('controller ready', 30_000, async () => controller.ready);
});

after(async () => {
  await controller?.stop(2_000);
  clients?.destroy();
  await kubeProxy?.stop();
  await proxy?.stop();
  aws?.destroy();
  await bed?.stop();
});

async function syncAndWait(name: string, timeoutMs: number): Promise<number> {
  await createAwsSecrets(aws, [name], () => `value-${name}`);
  const started = performance.now();
  // Created through the bed's own connection: only the controller's side is frozen.
  await createSecretSync(bed.kubeConfig, namespace, name, {
    serviceAccountName: 'app',
    region: 'us-east-1',
    objects: [{ objectName: name, objectType: 'secretsmanager', objectAlias: 'value' }],
  });
  await waitFor(`Secret ${name} synced`, timeoutMs, async () =>
    (await listSecrets(bed.kubeConfig, namespace)).some(
      (secret) => secret.metadata?.name === name && decode(secret.data?.value) === `value-${name}`,
    ),
  );
  return (performance.now() - started) / 1000;
}

test('a watch frozen without a close is noticed by the watchdog; a new SecretSync still syncs', async (t) => {
  const warm = await syncAndWait(uniqueName('watch-before'), 30_000);
  const frozen = kubeProxy.stats().open;
  assert.ok(frozen > 0, 'the controller holds open connections (its watches)');
  kubeProxy.stallOpenConnections({ resetOnClientWrite: true });
  const accepted = kubeProxy.stats().accepted;

  const seconds = await syncAndWait(uniqueName('watch-after'), 60_000);
  t.diagnostic(
    `synced ${warm.toFixed(1)} s after create while healthy; ${seconds.toFixed(1)} s with ${frozen} connections frozen (watchdog ${silenceMs / 1000} s)`,
  );
  assert.ok(kubeProxy.stats().accepted > accepted, 'the controller opened fresh connections');
  // Silence noticed after silenceMs (checked every silenceMs / 2), a relist, the sync itself.
  assert.ok(seconds <= silenceMs / 1000 + 10, `took ${seconds.toFixed(1)} s`);
  // Readiness tracks every informer; one still in its restart backoff (a loaded machine) may lag
  // the SecretSync informer that just synced, but all must come back without a restart.
  await waitFor('controller ready again', 30_000, async () => controller.ready);
});

test('a frozen connection that swallows requests (no reset) costs one response deadline, not 300 s', async (t) => {
  await syncAndWait(uniqueName('swallow-before'), 30_000);
  kubeProxy.stallOpenConnections({ resetOnClientWrite: false });
  const accepted = kubeProxy.stats().accepted;
  const seconds = await syncAndWait(uniqueName('swallow-after'), 60_000);
  t.diagnostic(`synced ${seconds.toFixed(1)} s after create with swallowing connections`);
  assert.ok(kubeProxy.stats().accepted > accepted, 'the controller opened fresh connections');
  // The watchdog notices the silence, the relist on the frozen connection hits the deadline and
  // is retried on a fresh one (after the informer's backoff), then the sync itself.
  assert.ok(seconds <= silenceMs / 1000 + headersTimeoutMs / 1000 + 15, `took ${seconds.toFixed(1)} s`);
  await waitFor('controller ready again', 30_000, async () => controller.ready);
});
