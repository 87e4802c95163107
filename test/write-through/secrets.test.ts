/**
 * Write-through on the real API server + moto: Secrets created, updated, dry-run, refused and
 * deleted the way kubectl sends them, with smk's webhook and controller in the loop. What is
 * checked is what lands in Secrets Manager (values, versions, stages, tags) and in etcd (no data,
 * references only), and which AWS calls each identity made (the proxy counts them).
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
} from '@kubernetes/client-node';
import {
  absent,
  controllerKey,
  describe as describeSecret,
  eventually,
  refusal,
  secretBody,
  startWriteThroughWorld,
  storedValue,
  versionsOf,
  type WriteThroughWorld,
  webhookKey,
} from './support.ts';

/** A value that cannot appear anywhere by chance (the leak scan registers it from moto). */
const value = (label: string): string => `${label}-${randomBytes(6).toString('hex')}-Vq`;

function annotation(secret: V1Secret, name: string): string | undefined {
  return secret.metadata?.annotations?.[name];
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
  const committed = (namespace: string, name: string, versionId: string) =>
    eventually(`the controller to commit ${namespace}/${name} at ${versionId}`, async () => {
      const tags = Object.fromEntries(
        ((await describeSecret(world.admin, world.secretName(namespace, name))).Tags ?? []).map((tag) => [
          tag.Key,
          tag.Value,
        ]),
      );
      return tags['smk.dev/committed-version'] === versionId ? tags : undefined;
    });

  test('create: the value is in Secrets Manager; etcd keeps no data, only where the value lives', async () => {
    const password = value('Pw');
    const created = await world.core.createNamespacedSecret({
      namespace: a,
      body: secretBody('db', { password, username: 'app' }),
    });
    assert.equal(created.data, undefined, 'the answer to the create shows no data');
    const stored = await read(a, 'db');
    assert.equal(stored.data, undefined);
    const arn = annotation(stored, 'smk.dev/aws-secret-arn') ?? '';
    const versionId = annotation(stored, 'smk.dev/aws-version-id') ?? '';
    assert.match(arn, new RegExp(`:secret:${world.secretName(a, 'db')}-[A-Za-z0-9]{6}$`));
    assert.equal(annotation(stored, 'smk.dev/aws-secret-name'), world.secretName(a, 'db'));
    assert.equal(annotation(stored, 'smk.dev/keys'), 'password,username');
    assert.deepEqual(stored.metadata?.finalizers, ['smk.dev/write-through']);
    const everything = JSON.stringify(stored);
    assert.ok(
      !everything.includes(password) && !everything.includes(Buffer.from(password).toString('base64')),
    );

    await holds(world.admin, arn, { password, username: 'app' });
    const tags = await committed(a, 'db', versionId);
    assert.equal(tags['smk.dev/cluster'], world.cluster);
    assert.equal(tags['smk.dev/namespace'], a);
    assert.equal(tags['smk.dev/name'], 'db');
    assert.equal(tags['smk.dev/uid'], stored.metadata?.uid, 'the uid is tagged once Kubernetes assigned it');
    assert.equal((await versionsOf(world.admin, arn)).size, 1);
    assert.equal(world.proxy.count({ api: 'CreateSecret', accessKeyId: webhookKey }), 1);
    assert.equal(world.proxy.count({ accessKeyId: controllerKey, api: 'UpdateSecretVersionStage' }), 0);
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
    await holds(world.admin, annotation(created, 'smk.dev/aws-secret-arn') ?? '', { 'api-key': key });
  });

  test('update: one new version, current once Kubernetes stored it; the same content again: no new version', async () => {
    const first = value('First');
    await world.core.createNamespacedSecret({ namespace: a, body: secretBody('api', { token: first }) });
    const before = await read(a, 'api');
    const arn = annotation(before, 'smk.dev/aws-secret-arn') ?? '';
    await committed(a, 'api', annotation(before, 'smk.dev/aws-version-id') ?? '');

    const second = value('Second');
    const updated = await world.core.replaceNamespacedSecret({
      namespace: a,
      name: 'api',
      body: { ...before, data: { token: Buffer.from(second).toString('base64') } },
    });
    const secondVersion = annotation(updated, 'smk.dev/aws-version-id') ?? '';
    assert.notEqual(secondVersion, annotation(before, 'smk.dev/aws-version-id'));
    assert.equal(updated.data, undefined);
    assert.equal((await versionsOf(world.admin, arn)).size, 2, 'one new version');
    await committed(a, 'api', secondVersion);
    await holds(world.admin, arn, { token: second });
    const stages = await versionsOf(world.admin, arn);
    assert.deepEqual(stages.get(secondVersion), ['AWSCURRENT'], 'made current, pending label gone');

    const puts = world.proxy.count({ api: 'PutSecretValue', accessKeyId: webhookKey });
    const again = await world.core.replaceNamespacedSecret({
      namespace: a,
      name: 'api',
      body: { ...updated, data: { token: Buffer.from(second).toString('base64') } },
    });
    assert.equal(annotation(again, 'smk.dev/aws-version-id'), secondVersion);
    assert.equal((await versionsOf(world.admin, arn)).size, 2, 'no new version');
    assert.equal(
      world.proxy.count({ api: 'PutSecretValue', accessKeyId: webhookKey }),
      puts,
      'no write at all',
    );

    // A metadata-only change (what kubectl label/annotate send) keeps the references.
    const labelled = await world.core.patchNamespacedSecret(
      { namespace: a, name: 'api', body: { metadata: { labels: { team: 'payments' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.equal(annotation(labelled, 'smk.dev/aws-secret-arn'), arn);
    assert.equal(annotation(labelled, 'smk.dev/aws-version-id'), secondVersion);
    assert.equal(world.proxy.count({ api: 'PutSecretValue', accessKeyId: webhookKey }), puts);
  });

  test('dry run writes nothing: create and update answer the stored form, Secrets Manager untouched', async () => {
    const answer = await world.core.createNamespacedSecret({
      namespace: a,
      dryRun: 'All',
      body: secretBody('dry', { key: value('Dry') }),
    });
    assert.equal(answer.data, undefined);
    assert.equal(annotation(answer, 'smk.dev/keys'), 'key');
    assert.ok(await absent(world.admin, world.secretName(a, 'dry')));

    await world.core.createNamespacedSecret({
      namespace: a,
      body: secretBody('dry2', { key: value('Kept') }),
    });
    const stored = await read(a, 'dry2');
    const arn = annotation(stored, 'smk.dev/aws-secret-arn') ?? '';
    const writes = world.proxy.count({ accessKeyId: webhookKey });
    await world.core.replaceNamespacedSecret({
      namespace: a,
      name: 'dry2',
      dryRun: 'All',
      body: { ...stored, data: { key: Buffer.from(value('Other')).toString('base64') } },
    });
    assert.equal(world.proxy.count({ accessKeyId: webhookKey }), writes);
    assert.equal((await versionsOf(world.admin, arn)).size, 1);
    assert.equal(
      annotation(await read(a, 'dry2'), 'smk.dev/aws-version-id'),
      annotation(stored, 'smk.dev/aws-version-id'),
    );
  });

  test('Secrets Manager refusing: the request is denied and nothing is half done', async () => {
    world.proxy.addFault({
      fault: { kind: 'deny', xml: true },
      api: 'CreateSecret',
      accessKeyId: webhookKey,
    });
    try {
      const message = await rejected(
        world.core.createNamespacedSecret({
          namespace: a,
          body: secretBody('refused', { key: value('No') }),
        }),
      );
      assert.match(
        message,
        new RegExp(
          `Secret ${a}/refused: not stored, the value could not be written to Secrets Manager: CreateSecret .* access denied`,
        ),
      );
      assert.equal(
        await read(a, 'refused').catch((error: unknown) => (error as ApiException<unknown>).code),
        404,
      );
      assert.ok(await absent(world.admin, world.secretName(a, 'refused')));
    } finally {
      world.proxy.clearFaults();
    }

    const original = value('Orig');
    await world.core.createNamespacedSecret({ namespace: a, body: secretBody('steady', { key: original }) });
    const stored = await read(a, 'steady');
    const arn = annotation(stored, 'smk.dev/aws-secret-arn') ?? '';
    await committed(a, 'steady', annotation(stored, 'smk.dev/aws-version-id') ?? '');
    world.proxy.addFault({
      fault: { kind: 'status', status: 503 },
      api: 'PutSecretValue',
      accessKeyId: webhookKey,
    });
    try {
      const message = await rejected(
        world.core.replaceNamespacedSecret({
          namespace: a,
          name: 'steady',
          body: { ...stored, data: { key: Buffer.from(value('Lost')).toString('base64') } },
        }),
      );
      assert.match(message, /not stored, .*PutSecretValue .*AWS unavailable or unreachable/);
    } finally {
      world.proxy.clearFaults();
    }
    const after = await read(a, 'steady');
    assert.equal(
      after.metadata?.resourceVersion,
      stored.metadata?.resourceVersion,
      'the Secret did not change',
    );
    assert.equal((await versionsOf(world.admin, arn)).size, 1, 'no new version');
    await holds(world.admin, arn, { key: original });
  });

  test('Kubernetes refusing after the write: no refused value becomes current; the sweep removes a never-stored secret', async () => {
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

      // CREATE: the webhook wrote, the API server then refused; the sweep takes the secret away.
      const message = await rejected(
        world.core.createNamespacedSecret({
          namespace: a,
          body: secretBody('late', { key: value('Late') }, refuse),
        }),
      );
      assert.match(message, /refused by the test policy/);
      const name = world.secretName(a, 'late');
      const left = await describeSecret(world.admin, name);
      assert.equal(
        (left.Tags ?? []).some((tag) => tag.Key === 'smk.dev/committed-version'),
        false,
        'never committed',
      );
      assert.ok((await world.controller.sweep()) >= 1);
      assert.ok(await absent(world.admin, name), 'swept without a recovery window');

      // UPDATE: the refused version exists but never becomes AWSCURRENT.
      const kept = value('Kept');
      await world.core.createNamespacedSecret({ namespace: a, body: secretBody('held', { key: kept }) });
      const stored = await read(a, 'held');
      const arn = annotation(stored, 'smk.dev/aws-secret-arn') ?? '';
      await committed(a, 'held', annotation(stored, 'smk.dev/aws-version-id') ?? '');
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
      const versions = await versionsOf(world.admin, arn);
      assert.equal(versions.size, 2, 'the webhook wrote before the refusal');
      const stray = [...versions].find(([id]) => id !== annotation(stored, 'smk.dev/aws-version-id'));
      assert.deepEqual(stray?.[1], ['smk-pending'], 'staged, never current');
      await world.controller.sweep();
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
      await committed(b, name, annotation(await read(b, name), 'smk.dev/aws-version-id') ?? '');
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
    const stored = await read(b, 'gone');
    await committed(b, 'gone', annotation(stored, 'smk.dev/aws-version-id') ?? '');
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
    const own = await world.core.createNamespacedSecret({
      namespace: b,
      body: secretBody(
        'named',
        { key: value('Own') },
        {
          annotations: { 'smk.dev/aws-secret-name': `${world.prefix}${b}/payments/api` },
        },
      ),
    });
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
