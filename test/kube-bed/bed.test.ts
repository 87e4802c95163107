/** The bed is the real control plane it claims to be, and attaching to it fails loudly when it is absent. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, VersionApi } from '@kubernetes/client-node';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { eventually } from './wait.ts';

describe('test bed', () => {
  let bed: TestBed;

  before(async () => {
    bed = await connectTestBed();
  });

  after(async () => {
    await bed.stop();
  });

  it('runs a Kubernetes release of 1.33 or newer that reports its version', async () => {
    const version = await bed.kubeConfig.makeApiClient(VersionApi).getCode();
    assert.match(version.gitVersion, /^v1\.\d+\.\d+$/);
    assert.equal(version.major, '1');
    assert.ok(Number(version.minor) >= 33, `minor ${version.minor}`);
    assert.ok(version.gitVersion.startsWith(`v1.${version.minor}.`), version.gitVersion);
    assert.equal(version.gitTreeState, 'clean');
  });

  it('gives a new namespace its default ServiceAccount and the cluster CA', async () => {
    const namespace = await bed.newNamespace('Bed Test_1');
    assert.match(namespace, /^bed-test-1-[0-9a-f]{6}$/);
    const core = bed.kubeConfig.makeApiClient(CoreV1Api);
    const account = await core.readNamespacedServiceAccount({ namespace, name: 'default' });
    assert.equal(account.metadata?.name, 'default');
    const rootCa = await eventually('kube-root-ca.crt in the new namespace', async () =>
      core.readNamespacedConfigMap({ namespace, name: 'kube-root-ca.crt' }),
    );
    assert.equal(rootCa.data?.['ca.crt']?.trim(), bed.caPem.trim());
  });

  it('keeps the log of every process', () => {
    const logs = bed.logs(5);
    for (const name of ['etcd', 'kube-apiserver', 'kube-controller-manager']) {
      assert.match(logs, new RegExp(`^==> ${name} \\(`, 'm'));
    }
  });
});

describe('connectTestBed', () => {
  it('throws a clear error when SMK_TEST_BED is not set', async (t) => {
    t.after(() => {
      if (saved === undefined) delete process.env.SMK_TEST_BED;
      else process.env.SMK_TEST_BED = saved;
    });
    const saved = process.env.SMK_TEST_BED;
    delete process.env.SMK_TEST_BED;
    await assert.rejects(connectTestBed(), /SMK_TEST_BED is not set/);
    process.env.SMK_TEST_BED = '/nonexistent/testbed.json';
    await assert.rejects(connectTestBed(), /SMK_TEST_BED=\/nonexistent\/testbed.json does not name/);
  });
});
