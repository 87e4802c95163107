/**
 * Role chaining in the sync controller (SecretSync `spec.assumeRole`): the second role is
 * assumed with the named ServiceAccount's own credentials, never the controller's, so a tenant
 * reaches only what its own role's trust allows. moto does not evaluate trust policies
 * (../shared/notes/moto.md #4): what is proved is who signed AssumeRole and what it asked for,
 * and that the chained credentials read the other account's secret (moto keeps one backend per account).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { sessionNameFor } from '../../src/aws/identity.ts';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';
import { createSecretInOtherAccount, otherAccountRole } from '../harness/other-account.ts';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import {
  createServiceAccount,
  decode,
  installCrds,
  type RunningController,
  readSecret,
  ready,
  roleArn,
  secretSyncApi,
  startController,
  waitFor,
} from './harness.ts';

let bed: TestBed;
let proxy: AwsProxy;
const moto = connectMoto();
const controllers: RunningController[] = [];

before(async () => {
  bed = await connectTestBed();
  await installCrds(bed.kubeConfig);
  proxy = await startAwsProxy({ target: moto.endpoint });
});
afterEach(async () => {
  for (const running of controllers.splice(0)) await running.stop();
  proxy.clearFaults();
});
after(async () => {
  await proxy?.stop();
  await bed?.stop();
});

async function namespaceWithController(prefix: string): Promise<{ ns: string; running: RunningController }> {
  const ns = await bed.newNamespace(prefix);
  const running = await startController(bed.kubeConfig, proxy.endpoint, { namespaces: [ns] });
  controllers.push(running);
  await waitFor('controller ready', 30_000, async () => running.controller.ready);
  return { ns, running };
}

const api = () => secretSyncApi(bed.kubeConfig);

async function waitCondition(ns: string, name: string, status: string, reason?: string) {
  let seen = 'no Ready condition';
  try {
    return await waitFor(`SecretSync ${ns}/${name} Ready=${status}`, 30_000, async () => {
      const resource = await api().get(ns, name);
      const condition = ready(resource);
      if (condition) seen = `${condition.status} ${condition.reason}: ${condition.message}`;
      if (condition?.status !== status || (reason && condition.reason !== reason)) return undefined;
      return resource;
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen: ${seen}`);
  }
}

describe('SecretSync spec.assumeRole', () => {
  it("reads the other account's secret through a role assumed with the ServiceAccount's own credentials", async () => {
    const { ns, running } = await namespaceWithController('chain');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'shop-app');
    const name = `${ns}/shared-db`;
    await createSecretInOtherAccount(moto.endpoint, name, 'from-the-other-account-9d2c');
    const own = await running.clients.credentials({
      kind: 'webIdentity',
      roleArn: roleArn('shop-app'),
      subject: `${ns}/app`,
      sessionName: sessionNameFor(ns, 'app'),
      token: () => bed.serviceAccountToken(ns, 'app', 'sts.amazonaws.com'),
    })();
    proxy.resetCounts();
    await moto.recorder.reset();
    await moto.recorder.start();
    await api().create(ns, 'db', {
      serviceAccountName: 'app',
      assumeRole: { roleArn: otherAccountRole, externalId: 'shop-7f3a', sessionTags: { team: 'shop' } },
      objects: [{ objectName: name, objectType: 'secretsmanager', objectAlias: 'DB' }],
    });
    const synced = await waitCondition(ns, 'db', 'True');
    const recorded = await moto.recorder.download();
    await moto.recorder.stop();

    assert.equal(
      decode((await readSecret(bed.kubeConfig, ns, 'db'))?.data?.DB),
      'from-the-other-account-9d2c',
    );
    assert.match(ready(synced)?.message ?? '', /role\/shared-secrets-reader/);
    assert.equal(proxy.count({ api: 'AssumeRole' }), 1);
    assert.equal(
      proxy.count({ api: 'AssumeRole', accessKeyId: own.accessKeyId }),
      1,
      "AssumeRole is signed by the ServiceAccount's own role, not the controller's keys",
    );
    assert.equal(proxy.count({ accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'testing' }), 0);
    // The recording is moto's, shared by test files running at once: pick this namespace's session.
    const ours = recorded
      .map((call) => new URLSearchParams(call.body))
      .filter(
        (body) =>
          body.get('Action') === 'AssumeRole' && body.get('RoleSessionName') === sessionNameFor(ns, 'app'),
      );
    assert.equal(ours.length, 1);
    const form = ours[0] ?? new URLSearchParams();
    assert.equal(form.get('RoleArn'), otherAccountRole);
    assert.equal(form.get('ExternalId'), 'shop-7f3a');
    assert.equal(form.get('Tags.member.1.Key'), 'team');
    assert.equal(form.get('Tags.member.1.Value'), 'shop');
  });

  it('a ServiceAccount without a role of its own is RoleNotConfigured: no AssumeRole from the controller', async () => {
    const { ns } = await namespaceWithController('chain-norole');
    await createServiceAccount(bed.kubeConfig, ns, 'app', undefined);
    proxy.resetCounts();
    await api().create(ns, 'db', {
      serviceAccountName: 'app',
      assumeRole: { roleArn: otherAccountRole },
      objects: [{ objectName: `${ns}/x`, objectType: 'secretsmanager' }],
    });
    await waitCondition(ns, 'db', 'False', 'RoleNotConfigured');
    assert.equal(proxy.count({ service: 'sts' }), 0);
    assert.equal(await readSecret(bed.kubeConfig, ns, 'db'), undefined);
  });

  it('a refused AssumeRole is AccessDenied naming the field and the role, and writes nothing', async () => {
    const { ns } = await namespaceWithController('chain-denied');
    await createServiceAccount(bed.kubeConfig, ns, 'app', 'shop-app');
    proxy.addFault({ api: 'AssumeRole', fault: { kind: 'deny', xml: true } });
    await api().create(ns, 'db', {
      serviceAccountName: 'app',
      assumeRole: { roleArn: otherAccountRole, externalId: 'refused-id-1' },
      objects: [{ objectName: `${ns}/x`, objectType: 'secretsmanager' }],
    });
    const refused = await waitCondition(ns, 'db', 'False', 'AccessDenied');
    const message = ready(refused)?.message ?? '';
    assert.match(
      message,
      /spec\.assumeRole\.roleArn: AssumeRole arn:aws:iam::222233334444:role\/shared-secrets-reader/,
    );
    assert.doesNotMatch(message, /refused-id-1/);
    assert.equal(await readSecret(bed.kubeConfig, ns, 'db'), undefined);
  });

  it('the API server refuses a chained session over one hour', async () => {
    const ns = await bed.newNamespace('chain-schema');
    await assert.rejects(
      api().create(ns, 'db', {
        serviceAccountName: 'app',
        assumeRole: { roleArn: otherAccountRole, durationSeconds: 7200 },
        objects: [{ objectName: 'x', objectType: 'secretsmanager' }],
      }),
      (error: { code?: number; body?: unknown }) => {
        assert.equal(error.code, 422);
        assert.match(String(error.body), /spec\.assumeRole\.durationSeconds/);
        return true;
      },
    );
  });
});
