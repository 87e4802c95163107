/**
 * Write-through against a tenant who wants to write into another namespace's Secrets Manager
 * secret (issue 14, findings 3 and 4), on the real API server + moto:
 *  - anyone on the pod network POSTs an AdmissionReview to the webhook's /mutate/secrets,
 *    naming the other namespace's Secret and ARN (no API server, no credentials);
 *  - a tenant with Secret rights in its own namespace only carries the other secret's ARN in
 *    smk's annotations, on an unlabelled Secret it then labels, and on a written-through one.
 * Either way the other secret keeps its versions and value. Each attack is followed by a
 * legitimate update of the victim, and the check waits until that one is written: everything the
 * attack could have caused has been processed by then, and the legitimate write is not lost.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import {
  CoreV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1Secret,
} from '@kubernetes/client-node';
import {
  absent,
  refusal,
  secretBody,
  settled,
  startWriteThroughWorld,
  storedValue,
  versionsOf,
  type WriteThroughWorld,
} from './support.ts';

const value = (label: string): string => `${label}-${randomBytes(6).toString('hex')}-Tq`;

/** POSTs `review` to the webhook as any pod could: TLS only, no client certificate, no token. */
function post(world: WriteThroughWorld, review: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(world.secretsUrl);
    const call = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        ca: world.caPem,
        headers: { 'content-type': 'application/json' },
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    call.on('error', reject);
    call.end(JSON.stringify(review));
  });
}

describe('write-through: forged requests and forged annotations change nothing in AWS', () => {
  let world: WriteThroughWorld;
  let a: string;
  let b: string;

  before(async () => {
    world = await startWriteThroughWorld('wt-tenancy');
    [a, b] = world.namespaces;
  });
  after(async () => {
    await world?.stop();
  });

  /** The victim in namespace b, written through; its versions and value as they are now. */
  async function victim(name: string) {
    const kept = value('Victim');
    await world.core.createNamespacedSecret({ namespace: b, body: secretBody(name, { password: kept }) });
    const secret = await settled(world, b, name);
    const arn = secret.metadata?.annotations?.['smk.dev/aws-secret-arn'] ?? '';
    return { secret, arn, versions: await versionsOf(world.admin, arn) };
  }

  /** The owner's own update after the attack: it lands, and the attack left nothing else behind. */
  async function unharmed(
    name: string,
    target: { secret: V1Secret; arn: string; versions: Map<string, string[]> },
  ): Promise<void> {
    const next = value('Owner');
    await world.core.patchNamespacedSecret(
      { namespace: b, name, body: { data: { password: Buffer.from(next).toString('base64') } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const written = await settled(world, b, name);
    const versions = await versionsOf(world.admin, target.arn);
    const added = [...versions.keys()].filter((id) => !target.versions.has(id));
    assert.deepEqual(
      added,
      [written.metadata?.annotations?.['smk.dev/aws-version-id']],
      'only the owner’s version was added',
    );
    const current2 = await storedValue(world.admin, target.arn);
    assert.ok(current2.password === next, 'AWSCURRENT holds the owner’s value');
  }

  test('finding 3: an unauthenticated POST to /mutate/secrets naming another namespace’s Secret and ARN writes nothing', async () => {
    const target = await victim('db');
    const stored = target.secret;
    const forged = value('Forged');
    const review = (operation: string, name: string, oldObject?: unknown) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: randomBytes(8).toString('hex'),
        kind: { group: '', version: 'v1', kind: 'Secret' },
        resource: { group: '', version: 'v1', resource: 'secrets' },
        operation,
        namespace: b,
        name,
        userInfo: { username: 'system:serviceaccount:kube-system:generic-garbage-collector' },
        object: {
          ...stored,
          metadata: { ...stored.metadata, name },
          data: { password: Buffer.from(forged).toString('base64') },
        },
        ...(oldObject === undefined ? {} : { oldObject }),
      },
    });
    const update = await post(world, review('UPDATE', 'db', stored));
    const create = await post(world, review('CREATE', 'planted'));
    for (const answer of [update, create]) {
      assert.equal(answer.status, 200, 'the webhook answers (what it answers is only ever a patch)');
      assert.ok(
        !answer.body.includes(forged) && !answer.body.includes(Buffer.from(forged).toString('base64')),
      );
    }
    // Right after the answer, as the old webhook wrote before answering: nothing new.
    assert.deepEqual(await versionsOf(world.admin, target.arn), target.versions, 'no version was added');
    await unharmed('db', target);
    assert.ok(await absent(world.admin, world.secretName(b, 'planted')), 'the forged CREATE made no secret');
  });

  test('finding 4: a tenant (Secret rights in its own namespace only) carrying another namespace’s ARN writes nothing there', async () => {
    const target = await victim('api');
    const forgedArn = target.arn;
    const forgedVersion = target.secret.metadata?.annotations?.['smk.dev/aws-version-id'] ?? '';
    const user = `tenant-${randomBytes(3).toString('hex')}`;
    const rbac = world.bed.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: a,
      body: {
        metadata: { name: user },
        rules: [
          {
            apiGroups: [''],
            resources: ['secrets'],
            verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
          },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: a,
      body: {
        metadata: { name: user },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: user },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
      },
    });
    const tenant = (await world.bed.kubeConfigFor(user)).makeApiClient(CoreV1Api);
    await assert.rejects(tenant.readNamespacedSecret({ namespace: b, name: 'api' }), /403|forbidden/i);
    const forged = { 'smk.dev/aws-secret-arn': forgedArn, 'smk.dev/aws-version-id': forgedVersion };
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

    // As reported: unlabelled (so no webhook sees it) with the forged ARN, then labelled.
    await tenant.createNamespacedSecret({
      namespace: a,
      body: {
        metadata: { name: 'copycat', annotations: forged },
        data: { password: Buffer.from(value('Copycat')).toString('base64') },
      },
    });
    const labelling = await tenant
      .patchNamespacedSecret(
        {
          namespace: a,
          name: 'copycat',
          body: { metadata: { labels: { 'smk.dev/write-through': 'true' } } },
        },
        merge,
      )
      .then(
        () => 'labelled',
        (error: unknown) => refusal(error),
      );
    assert.deepEqual(await versionsOf(world.admin, forgedArn), target.versions, 'no version was added');

    // A written-through Secret of its own, then the forged annotations, then new data.
    await tenant.createNamespacedSecret({
      namespace: a,
      body: secretBody('own', { password: value('Own') }),
    });
    await settled(world, a, 'own');
    await tenant.patchNamespacedSecret(
      { namespace: a, name: 'own', body: { metadata: { annotations: forged } } },
      merge,
    );
    const mine = value('Mine');
    // A patch (the controller may be setting the ARN back meanwhile).
    await tenant.patchNamespacedSecret(
      { namespace: a, name: 'own', body: { data: { password: Buffer.from(mine).toString('base64') } } },
      merge,
    );
    const written = await settled(world, a, 'own');
    const ownArn = written.metadata?.annotations?.['smk.dev/aws-secret-arn'] ?? '';
    assert.match(
      ownArn,
      new RegExp(`:secret:${world.secretName(a, 'own')}-`),
      'the ARN annotation is set back to its own',
    );
    assert.ok((await storedValue(world.admin, ownArn)).password === mine, 'its value went to its own secret');

    await unharmed('api', target);
    assert.match(labelling, /annotation smk\.dev\/aws-secret-arn, smk\.dev\/aws-version-id is set by smk/);
  });
});
