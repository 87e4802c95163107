/**
 * The per-object writes (src/kube/apply.ts over src/kube/http.ts) against the real API server:
 * what each call sends is what the API server stores, refusals become our sentinel errors naming
 * the object, and no refusal carries what the request body held.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, RbacAuthorizationV1Api, type V1Deployment, type V1Secret } from '@kubernetes/client-node';
import { AccessDeniedError, InvalidInputError, NotFoundError } from '../../src/core/errors.ts';
import { createObjects, type Objects } from '../../src/kube/apply.ts';
import { withConnectionReuse } from '../../src/kube/client.ts';
import { createEventRecorder } from '../../src/kube/events.ts';
import { eventually } from '../harness/wait.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { kubeConfigFromText, renderKubeConfig } from '../testbed/kubeconfig.ts';

let bed: TestBed;
let objects: Objects;
let namespace: string;
let core: CoreV1Api;

before(async () => {
  bed = await connectTestBed();
  objects = createObjects(bed.kubeConfig);
  core = bed.kubeConfig.makeApiClient(CoreV1Api);
  namespace = await bed.newNamespace('objects');
});

after(async () => {
  await bed?.stop();
});

function secret(name: string, data: Record<string, string>): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'Opaque',
    data: Object.fromEntries(
      Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
    ),
  };
}

const ref = (name: string) => ({ apiVersion: 'v1', kind: 'Secret', namespace, name });

describe('Objects against the API server', () => {
  it('creates with the given field manager, and says undefined when the name is taken', async () => {
    const created = await objects.create(secret('created', { a: 'one' }), 'smk-create');
    assert.ok(created?.metadata?.resourceVersion);
    assert.deepEqual(
      created?.metadata?.managedFields?.map((entry) => [entry.manager, entry.operation]),
      [['smk-create', 'Update']],
    );
    assert.equal(await objects.create(secret('created', { a: 'two' }), 'smk-create'), undefined);
    const stored = await core.readNamespacedSecret({ namespace, name: 'created' });
    assert.equal(Buffer.from(stored.data?.a ?? '', 'base64').toString(), 'one');
  });

  it('reads an object, and undefined for one that does not exist', async () => {
    await objects.create(secret('readable', { k: 'v' }), 'smk-create');
    const read = await objects.read<V1Secret>(ref('readable'));
    assert.equal(Buffer.from(read?.data?.k ?? '', 'base64').toString(), 'v');
    assert.equal(await objects.read(ref('absent')), undefined);
  });

  it('applies with the smk field manager, forcing only when asked', async () => {
    await objects.create(secret('applied', { a: 'one' }), 'someone-else');
    await assert.rejects(objects.apply(secret('applied', { a: 'two' })), (error) => {
      assert.ok(
        error instanceof Error && error.message.includes(`Secret ${namespace}/applied`),
        String(error),
      );
      return true;
    });
    const applied = await objects.apply(secret('applied', { a: 'two' }), { force: true });
    assert.equal(Buffer.from(applied.data?.a ?? '', 'base64').toString(), 'two');
    assert.ok(
      applied.metadata?.managedFields?.some(
        (entry) => entry.manager === 'smk' && entry.operation === 'Apply',
      ),
    );
  });

  it('merge-patches a kind of another group, found by discovery', async () => {
    const apps = { apiVersion: 'apps/v1', kind: 'Deployment', namespace, name: 'web' };
    const deployment: V1Deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] },
        },
      },
    };
    assert.ok(await objects.create(deployment, 'test'));
    const patched = await objects.mergePatch<V1Deployment>(apps, {
      spec: { template: { metadata: { annotations: { 'smk.dev/restartedAt': 'now' } } } },
    });
    assert.equal(patched.spec?.template.metadata?.annotations?.['smk.dev/restartedAt'], 'now');
  });

  it('deletes only the object with the given uid', async () => {
    const created = await objects.create(secret('deleted', { a: 'one' }), 'smk-create');
    await assert.rejects(objects.delete(ref('deleted'), 'not-its-uid'));
    assert.ok(await objects.read(ref('deleted')), 'still there after a refused delete');
    assert.equal(await objects.delete(ref('deleted'), created?.metadata?.uid), true);
    await eventually('the Secret gone', async () =>
      (await objects.read(ref('deleted'))) ? undefined : true,
    );
    assert.equal(await objects.delete(ref('deleted')), false);
  });

  it('refuses a reference without a name instead of addressing the whole collection', async () => {
    await assert.rejects(objects.read(ref('')), InvalidInputError);
    await assert.rejects(objects.delete(ref('')), InvalidInputError);
  });

  it('names a kind the API server does not serve', async () => {
    await assert.rejects(
      objects.read({ apiVersion: 'v1', kind: 'NoSuchKind', namespace, name: 'x' }),
      (error) => error instanceof NotFoundError && error.message.includes('NoSuchKind'),
    );
  });

  it('maps a refusal to a sentinel error whose text never holds what the body carried', async () => {
    const value = 'objects-test-value-7f3a9c';
    await assert.rejects(objects.create(secret('Invalid_Name', { a: value }), 'smk-create'), (error) => {
      assert.ok(error instanceof InvalidInputError, String(error));
      assert.ok(error.message.includes(`Secret ${namespace}/Invalid_Name`));
      const cause = (error as Error & { cause?: unknown }).cause;
      for (const text of [error.message, String(cause), JSON.stringify(cause)])
        assert.ok(!text.includes(value));
      return true;
    });
  });

  it('says forbidden for an identity without the right, naming the object', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } });
    const rbac = bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'reader' },
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
      },
    });
    const token = await bed.serviceAccountToken(namespace, 'reader');
    const limited = createObjects(
      withConnectionReuse(
        kubeConfigFromText(
          renderKubeConfig({
            server: bed.serverUrl,
            caPem: bed.caPem,
            credentials: { name: 'reader', token },
          }),
        ),
      ),
    );
    await objects.create(secret('guarded', { a: 'one' }), 'smk-create');
    assert.ok(await limited.read(ref('guarded')), 'get is allowed');
    await assert.rejects(
      limited.apply(secret('guarded', { a: 'two' }), { force: true }),
      (error) => error instanceof AccessDeniedError && error.message.includes(`Secret ${namespace}/guarded`),
    );
  });
});

describe('the event recorder against the API server', () => {
  it('writes an Event the API server accepts, with its timestamps', async () => {
    const recorder = createEventRecorder(bed.kubeConfig, { component: 'smk-test' });
    await recorder.record(
      { apiVersion: 'v1', kind: 'Secret', namespace, name: 'created' },
      'Normal',
      'Tested',
      'a message',
    );
    const events = await core.listNamespacedEvent({ namespace });
    const event = events.items.find((item) => item.reason === 'Tested');
    assert.equal(event?.message, 'a message');
    assert.equal(event?.source?.component, 'smk-test');
    assert.ok(event?.firstTimestamp instanceof Date && !Number.isNaN(event.firstTimestamp.getTime()));
  });
});
