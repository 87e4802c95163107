/**
 * Write-through on the real API server + moto: Secrets created, updated, dry-run, refused and
 * deleted the way kubectl sends them, with smk's webhook and controller in the loop. What is
 * checked is what lands in Secrets Manager (values, versions, stages, tags), what etcd holds at
 * every step a client can watch (no value in clear: the webhook seals it for the controller),
 * and which AWS calls were made (only the controller has an AWS identity).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  AdmissionregistrationV1Api,
  ApiException,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
  Watch,
} from '@kubernetes/client-node';
import {
  absent,
  controllerKey,
  describe as describeSecret,
  eventually,
  refusal,
  secretBody,
  settled,
  startWriteThroughWorld,
  storedValue,
  versionsOf,
  type WriteThroughWorld,
} from './support.ts';

/** A value that cannot appear anywhere by chance (the leak scan registers it from moto). */
const value = (label: string): string => `${label}-${randomBytes(6).toString('hex')}-Vq`;

function annotation(secret: V1Secret, name: string): string | undefined {
  return secret.metadata?.annotations?.[name];
}

/** True when `object` shows `secret` in clear or base64 (without printing either). */
function shows(object: unknown, secret: string): boolean {
  const text = JSON.stringify(object);
  return text.includes(secret) || text.includes(Buffer.from(secret).toString('base64'));
}

/** The stored document equals `expected`; a mismatch is reported without the values (the leak scan reads test output). */
async function holds(
  admin: WriteThroughWorld['admin'],
  id: string,
  expected: Record<string, string>,
): Promise<void> {
  const actual = await storedValue(admin, id);
  assert.ok(
    JSON.stringify(actual) === JSON.stringify(expected),
    `${id}: AWSCURRENT holds other content (keys ${Object.keys(actual).join(',')})`,
  );
}

async function rejected(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApiException, `expected an API refusal, got ${String(error)}`);
    return refusal(error);
  }
  assert.fail('expected the API server to refuse the request');
}

describe('write-through Secrets on the test bed', () => {
  let world: WriteThroughWorld;
  let a: string;
  let b: string;

  before(async () => {
    world = await startWriteThroughWorld('wt-secrets');
    [a, b] = world.namespaces;
  });
  after(async () => {
    await world?.stop();
  });

  const read = (namespace: string, name: string) => world.core.readNamespacedSecret({ namespace, name });
  const tagsOf = async (id: string): Promise<Record<string, string>> =>
    Object.fromEntries(
      ((await describeSecret(world.admin, id)).Tags ?? []).map((tag) => [tag.Key, tag.Value]),
    );
  const warning = (namespace: string, name: string, reason: string) =>
    eventually(`a ${reason} Warning on Secret ${namespace}/${name}`, async () => {
      const events = await world.core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=${name},reason=${reason}`,
      });
      return events.items[0];
    });

  /** Every state of the namespace's Secrets a client could watch, from now on. */
  async function watchSecrets(namespace: string) {
    const seen: V1Secret[] = [];
    const list = await world.core.listNamespacedSecret({ namespace });
    const abort = await new Watch(world.bed.kubeConfig).watch(
      `/api/v1/namespaces/${namespace}/secrets`,
      { resourceVersion: list.metadata?.resourceVersion },
      (_phase: string, secret: V1Secret) => {
        seen.push(secret);
      },
      () => undefined,
    );
    return { seen, stop: () => abort.abort() };
  }

  test('create: the value is in Secrets Manager; no state etcd ever held shows it, only sealed or where it lives', async () => {
    const password = value('Pw');
    const watch = await watchSecrets(a);
    try {
      const created = await world.core.createNamespacedSecret({
        namespace: a,
        body: secretBody('db', { password, username: 'app' }),
      });
      assert.equal(created.data, undefined, 'the answer to the create shows no data');
      assert.match(
        annotation(created, 'smk.dev/sealed') ?? '',
        /^smk-sealed\.v1\./,
        'sealed for the controller',
      );
      assert.ok(!shows(created, password), 'the answer to the create does not show the value');
      const right = await read(a, 'db');
      assert.equal(right.data, undefined);
      assert.ok(!shows(right, password), 'the Secret read right after the create does not show the value');

      const stored = await settled(world, a, 'db');
      const arn = annotation(stored, 'smk.dev/aws-secret-arn') ?? '';
      const versionId = annotation(stored, 'smk.dev/aws-version-id') ?? '';
      assert.match(arn, new RegExp(`:secret:${world.secretName(a, 'db')}-[A-Za-z0-9]{6}$`));
      assert.equal(annotation(stored, 'smk.dev/aws-secret-name'), world.secretName(a, 'db'));
      assert.equal(annotation(stored, 'smk.dev/keys'), 'password,username');
      assert.equal(annotation(stored, 'smk.dev/sealed'), undefined, 'the sealed value is gone once written');
      assert.deepEqual(stored.metadata?.finalizers, ['smk.dev/write-through']);
      assert.ok(!shows(stored, password));

      await holds(world.admin, arn, { password, username: 'app' });
      const tags = await tagsOf(arn);
      assert.equal(tags['smk.dev/cluster'], world.cluster);
      assert.equal(tags['smk.dev/namespace'], a);
      assert.equal(tags['smk.dev/name'], 'db');
      assert.equal(tags['smk.dev/committed-version'], versionId);
      assert.equal(tags['smk.dev/uid'], stored.metadata?.uid);
      assert.deepEqual([...(await versionsOf(world.admin, arn))], [[versionId, ['AWSCURRENT']]]);
      assert.equal(world.proxy.count({ api: 'CreateSecret', accessKeyId: controllerKey }), 1);
      assert.equal(
        world.proxy.count(),
        world.proxy.count({ accessKeyId: controllerKey }),
        'only the controller calls AWS',
      );

      const states = watch.seen.filter((secret) => secret.metadata?.name === 'db');
      assert.ok(
        states.some((secret) => annotation(secret, 'smk.dev/sealed') !== undefined),
        'the watch saw the sealed state',
      );
      assert.ok(
        states.some((secret) => annotation(secret, 'smk.dev/aws-secret-arn') === arn),
        'and the written one',
      );
      assert.ok(!states.some((secret) => shows(secret, password)), 'no watched state shows the value');
    } finally {
      watch.stop();
    }
  });

  test('stringData (as kubectl create --from-literal or a manifest sends it) is written through too', async () => {
    const key = value('Str');
    const created = await world.core.createNamespacedSecret({
      namespace: a,
      body: {
        metadata: { name: 'from-string', labels: { 'smk.dev/write-through': 'true' } },
        type: 'Opaque',
        stringData: { 'api-key': key },
      },
    });
    assert.equal(created.data, undefined);
    assert.equal(created.stringData, undefined);
    const stored = await settled(world, a, 'from-string');
    await holds(world.admin, annotation(stored, 'smk.dev/aws-secret-arn') ?? '', { 'api-key': key });
  });

  test('update: one new AWSCURRENT version; the same content again: no new version, no write', async () => {
    const first = value('First');
    await world.core.createNamespacedSecret({ namespace: a, body: secretBody('api', { token: first }) });
    const before = await settled(world, a, 'api');
    const arn = annotation(before, 'smk.dev/aws-secret-arn') ?? '';

    const second = value('Second');
    const updated = await world.core.replaceNamespacedSecret({
      namespace: a,
      name: 'api',
      body: { ...before, data: { token: Buffer.from(second).toString('base64') } },
    });
    assert.equal(updated.data, undefined);
    assert.ok(!shows(updated, second));
    const after = await settled(world, a, 'api');
    const secondVersion = annotation(after, 'smk.dev/aws-version-id') ?? '';
    assert.notEqual(secondVersion, annotation(before, 'smk.dev/aws-version-id'));
    await holds(world.admin, arn, { token: second });
    const stages = await versionsOf(world.admin, arn);
    assert.equal(stages.size, 2, 'one new version');
    assert.deepEqual(stages.get(secondVersion), ['AWSCURRENT']);

    const puts = world.proxy.count({ api: 'PutSecretValue' });
    await world.core.replaceNamespacedSecret({
      namespace: a,
      name: 'api',
      body: { ...after, data: { token: Buffer.from(second).toString('base64') } },
    });
    const again = await settled(world, a, 'api');
    assert.equal(annotation(again, 'smk.dev/aws-version-id'), secondVersion);
    assert.equal((await versionsOf(world.admin, arn)).size, 2, 'no new version');
    assert.equal(world.proxy.count({ api: 'PutSecretValue' }), puts, 'no write at all');

    // A metadata-only change (what kubectl label/annotate send) keeps the references.
    const labelled = await world.core.patchNamespacedSecret(
      { namespace: a, name: 'api', body: { metadata: { labels: { team: 'payments' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.equal(annotation(labelled, 'smk.dev/aws-secret-arn'), arn);
    assert.equal(annotation(labelled, 'smk.dev/aws-version-id'), secondVersion);
    assert.equal(annotation(labelled, 'smk.dev/sealed'), undefined);
    assert.equal(world.proxy.count({ api: 'PutSecretValue' }), puts);
  });

  test('dry run writes nothing: create and update answer the stored form, Secrets Manager untouched', async () => {
    const dry = value('Dry');
    const answer = await world.core.createNamespacedSecret({
      namespace: a,
      dryRun: 'All',
      body: secretBody('dry', { key: dry }),
    });
    assert.equal(answer.data, undefined);
    assert.equal(annotation(answer, 'smk.dev/keys'), 'key');
    assert.ok(!shows(answer, dry));

    await world.core.createNamespacedSecret({
      namespace: a,
      body: secretBody('dry2', { key: value('Kept') }),
    });
    const stored = await settled(world, a, 'dry2');
    const arn = annotation(stored, 'smk.dev/aws-secret-arn') ?? '';
    await world.core.replaceNamespacedSecret({
      namespace: a,
      name: 'dry2',
      dryRun: 'All',
      body: { ...stored, data: { key: Buffer.from(value('Other')).toString('base64') } },
    });
    assert.equal((await read(a, 'dry2')).metadata?.resourceVersion, stored.metadata?.resourceVersion);
    // Settled again after a create that went through: the dry runs never reached the controller.
    await world.core.createNamespacedSecret({
      namespace: a,
      body: secretBody('dry3', { key: value('Later') }),
    });
    await settled(world, a, 'dry3');
    assert.ok(await absent(world.admin, world.secretName(a, 'dry')));
    assert.equal((await versionsOf(world.admin, arn)).size, 1);
  });

  test('Secrets Manager refusing: the value stays sealed in the Secret, a Warning says why, and it lands once AWS answers', async () => {
    const first = value('Late');
    world.proxy.addFault({
      fault: { kind: 'deny', xml: true },
      api: 'CreateSecret',
      accessKeyId: controllerKey,
    });
    try {
      await world.core.createNamespacedSecret({ namespace: a, body: secretBody('refused', { key: first }) });
      const event = await warning(a, 'refused', 'WriteFailed');
      assert.match(event.message ?? '', /not written yet: CreateSecret .* access denied/);
      assert.ok(!shows(event, first));
      assert.ok(await absent(world.admin, world.secretName(a, 'refused')));
      assert.notEqual(
        annotation(await read(a, 'refused'), 'smk.dev/sealed'),
        undefined,
        'still sealed, not lost',
      );
    } finally {
      world.proxy.clearFaults();
    }
    const landed = await settled(world, a, 'refused');
    await holds(world.admin, annotation(landed, 'smk.dev/aws-secret-arn') ?? '', { key: first });

    const later = value('Lost');
    world.proxy.addFault({
      fault: { kind: 'status', status: 503 },
      api: 'PutSecretValue',
      accessKeyId: controllerKey,
    });
    try {
      await world.core.replaceNamespacedSecret({
        namespace: a,
        name: 'refused',
        body: { ...landed, data: { key: Buffer.from(later).toString('base64') } },
      });
      const event = await eventually('a second WriteFailed', async () => {
        const events = await world.core.listNamespacedEvent({
          namespace: a,
          fieldSelector: 'involvedObject.name=refused,reason=WriteFailed',
        });
        return events.items.find((item) => /PutSecretValue/.test(item.message ?? ''));
      });
      assert.match(event.message ?? '', /AWS unavailable or unreachable/);
    } finally {
      world.proxy.clearFaults();
    }
    const after = await settled(world, a, 'refused');
    await holds(world.admin, annotation(after, 'smk.dev/aws-secret-arn') ?? '', { key: later });
  });

  test('Kubernetes refusing after admission: nothing was written, so nothing is left behind', async () => {
    const admission = world.bed.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const policy = `smk-wt-refuse-${a}`;
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: policy },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: [''],
                apiVersions: ['v1'],
                operations: ['CREATE', 'UPDATE'],
                resources: ['secrets'],
              },
            ],
          },
          validations: [
            {
              expression:
                "!has(object.metadata.labels) || !('test.smk.dev/refuse' in object.metadata.labels)",
              message: 'refused by the test policy',
            },
          ],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: policy },
        spec: {
          policyName: policy,
          validationActions: ['Deny'],
          matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': a } } },
        },
      },
    });
    try {
      const refuse = { labels: { 'test.smk.dev/refuse': 'yes' } };
      await eventually('the test policy to take effect', async () => {
        const message = await world.core
          .createNamespacedSecret({
            namespace: a,
            dryRun: 'All',
            body: secretBody('probe', { k: 'v' }, refuse),
          })
          .then(
            () => '',
            (error: unknown) => refusal(error),
          );
        return message.includes('refused by the test policy') ? true : undefined;
      });

      const message = await rejected(
        world.core.createNamespacedSecret({
          namespace: a,
          body: secretBody('late', { key: value('Late') }, refuse),
        }),
      );
      assert.match(message, /refused by the test policy/);

      const kept = value('Kept');
      await world.core.createNamespacedSecret({ namespace: a, body: secretBody('held', { key: kept }) });
      const stored = await settled(world, a, 'held');
      const arn = annotation(stored, 'smk.dev/aws-secret-arn') ?? '';
      await rejected(
        world.core.replaceNamespacedSecret({
          namespace: a,
          name: 'held',
          body: {
            ...stored,
            metadata: { ...stored.metadata, labels: { ...stored.metadata?.labels, ...refuse.labels } },
            data: { key: Buffer.from(value('Refused')).toString('base64') },
          },
        }),
      );
      // A Secret written after the refusals settles: the controller has seen everything stored since.
      await world.core.createNamespacedSecret({
        namespace: a,
        body: secretBody('after', { key: value('After') }),
      });
      await settled(world, a, 'after');
      assert.ok(await absent(world.admin, world.secretName(a, 'late')), 'the refused create wrote nothing');
      assert.equal((await versionsOf(world.admin, arn)).size, 1, 'the refused update wrote nothing');
      await holds(world.admin, arn, { key: kept });
      assert.equal(
        annotation(await read(a, 'held'), 'smk.dev/aws-version-id'),
        annotation(stored, 'smk.dev/aws-version-id'),
      );
    } finally {
      await admission.deleteValidatingAdmissionPolicyBinding({ name: policy }).catch(() => undefined);
      await admission.deleteValidatingAdmissionPolicy({ name: policy }).catch(() => undefined);
    }
  });

  test('delete: policy Delete schedules deletion with the recovery window, Retain keeps the secret', async () => {
    await world.core.createNamespacedSecret({
      namespace: b,
      body: secretBody(
        'gone',
        { key: value('Gone') },
        { annotations: { 'smk.dev/recovery-window-days': '7' } },
      ),
    });
    await world.core.createNamespacedSecret({
      namespace: b,
      body: secretBody(
        'kept',
        { key: value('Retained') },
        { annotations: { 'smk.dev/deletion-policy': 'Retain' } },
      ),
    });
    for (const name of ['gone', 'kept']) {
      await settled(world, b, name);
      await world.core.deleteNamespacedSecret({ namespace: b, name });
    }
    for (const name of ['gone', 'kept']) {
      await eventually(`Secret ${b}/${name} to be gone (finalizer removed)`, async () =>
        read(b, name).then(
          () => undefined,
          (error: unknown) => ((error as ApiException<unknown>).code === 404 ? true : undefined),
        ),
      );
    }
    const gone = await describeSecret(world.admin, world.secretName(b, 'gone'));
    assert.ok(gone.DeletedDate, 'scheduled for deletion');
    const days = ((gone.DeletedDate?.getTime() ?? 0) - Date.now()) / 86_400_000;
    assert.ok(days > 6.9 && days <= 7.01, `recovery window of 7 days (got ${days.toFixed(2)})`);
    const kept = await describeSecret(world.admin, world.secretName(b, 'kept'));
    assert.equal(kept.DeletedDate, undefined);
    assert.ok((kept.Tags ?? []).some((tag) => tag.Key === 'smk.dev/retained' && tag.Value === 'true'));
    await world.controller.sweep();
    assert.equal((await describeSecret(world.admin, world.secretName(b, 'kept'))).DeletedDate, undefined);

    // Made again while its secret waits out the recovery window: restored and written anew.
    const again = value('Again');
    await world.core.createNamespacedSecret({ namespace: b, body: secretBody('gone', { key: again }) });
    const stored = await settled(world, b, 'gone');
    assert.equal((await describeSecret(world.admin, world.secretName(b, 'gone'))).DeletedDate, undefined);
    await holds(world.admin, annotation(stored, 'smk.dev/aws-secret-arn') ?? '', {
      key: again,
    });
  });

  test('Secrets without the label are never sent to the webhook and are stored as they are', async () => {
    const kept = value('Plain');
    await world.core.createNamespacedSecret({
      namespace: a,
      body: { metadata: { name: 'plain' }, data: { key: Buffer.from(kept).toString('base64') } },
    });
    await world.core.createNamespacedSecret({
      namespace: a,
      body: secretBody('off', { key: kept }, { labels: { 'smk.dev/write-through': 'false' } }),
    });
    assert.equal(Buffer.from((await read(a, 'plain')).data?.key ?? '', 'base64').toString(), kept);
    assert.equal(Buffer.from((await read(a, 'off')).data?.key ?? '', 'base64').toString(), kept);
    assert.ok(
      !world.reviewed.includes(`${a}/plain`) && !world.reviewed.includes(`${a}/off`),
      'never reviewed',
    );
    assert.ok(await absent(world.admin, world.secretName(a, 'plain')));
  });

  test('tenancy: a namespace writes only under its own prefix', async () => {
    const message = await rejected(
      world.core.createNamespacedSecret({
        namespace: a,
        body: secretBody(
          'steal',
          { key: value('Steal') },
          {
            annotations: { 'smk.dev/aws-secret-name': world.secretName(b, 'db') },
          },
        ),
      }),
    );
    assert.ok(message.includes(`is outside this namespace's prefix "${world.prefix}${a}/"`), message);
    assert.ok(await absent(world.admin, world.secretName(b, 'db')));
    await world.core.createNamespacedSecret({
      namespace: b,
      body: secretBody(
        'named',
        { key: value('Own') },
        {
          annotations: { 'smk.dev/aws-secret-name': `${world.prefix}${b}/payments/api` },
        },
      ),
    });
    const own = await settled(world, b, 'named');
    assert.match(
      annotation(own, 'smk.dev/aws-secret-arn') ?? '',
      new RegExp(`:secret:${world.prefix}${b}/payments/api-`),
    );
  });

  test('kubectl apply and label removal: the applied copy keeps no data; the label cannot be taken off', async () => {
    // A short value: the request itself carries it in the annotation, which the leak scan would report.
    const applied = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'applied', namespace: a, labels: { 'smk.dev/write-through': 'true' } },
      data: { key: Buffer.from('tiny-Pw').toString('base64') },
    });
    const stored = await world.core.createNamespacedSecret({
      namespace: a,
      body: secretBody(
        'applied',
        { key: 'tiny-Pw' },
        {
          annotations: { 'kubectl.kubernetes.io/last-applied-configuration': `${applied}\n` },
        },
      ),
    });
    const copy = JSON.parse(
      annotation(stored, 'kubectl.kubernetes.io/last-applied-configuration') ?? '{}',
    ) as Record<string, unknown>;
    assert.equal(copy.data, undefined);
    assert.equal((copy.metadata as { name?: string }).name, 'applied');

    const message = await rejected(
      world.core.patchNamespacedSecret(
        { namespace: a, name: 'applied', body: { metadata: { labels: { 'smk.dev/write-through': null } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    assert.match(message, /label smk\.dev\/write-through cannot be removed/);
  });
});
