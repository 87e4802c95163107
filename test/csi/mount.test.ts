/**
 * Mount over a real gRPC client on the unix socket, against moto: the seeds' SecretProviderClasses
 * exactly as printed, SSM parameters, versions and labels, binary values, modes, path translation
 * and the failover region.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { MountCallError } from '../../src/csi/client.ts';
import {
  filesAsText,
  type ProviderWorld,
  putParameter,
  putSecret,
  putSecretVersion,
  readSecretProviderClass,
  startProviderWorld,
  type TestPod,
  uniqueName,
} from './harness.ts';

describe('csi provider: Mount', () => {
  let world: ProviderWorld;
  let pod: TestPod;

  before(async () => {
    world = await startProviderWorld({ environmentRegion: 'us-east-1' });
    pod = await world.pod();
  });
  after(async () => {
    await world?.close();
  });

  it('answers Version like a provider the driver knows', async () => {
    const version = await world.client.version();
    assert.equal(version.version, 'v1alpha1');
    assert.equal(version.runtime_name, 'smk-csi-provider');
    assert.match(version.runtime_version, /^\d+\.\d+\.\d+/);
  });

  it("mounts seed 001's SecretProviderClass exactly as printed", async () => {
    const mySecret = await readFile(new URL('./fixtures/seed-001-mysecret.json', import.meta.url), 'utf8');
    // The seed's ARNs carry a placeholder account; moto finds a secret by the ARN's name part.
    await putSecret('eu-west-1', 'MySecret-00AACC', mySecret);
    await putSecret('eu-west-1', 'MySecret2-00AABB', 'plain text, whatever the format');
    const spc = await readSecretProviderClass('seed-001-secretproviderclass.yaml');
    assert.equal(spc.spec.provider, 'aws');

    const response = await world.client.mount(
      world.request(pod, spc.spec.parameters, { secretProviderClass: spc.metadata.name }),
    );
    const first = 'arn:aws:secretsmanager:eu-west-1:[111122223333]:secret:MySecret-00AACC';
    assert.deepEqual(filesAsText(response.files), {
      [first]: mySecret,
      dbusername: 'john.doe',
      dbpassword: 'password',
      foobar: 'plain text, whatever the format',
    });
    for (const file of response.files) assert.equal(file.mode, 0o644);
    // One version entry per file (the core's choice; the driver keeps them as the pod's status).
    assert.deepEqual(
      response.object_version.map((version) => version.id).sort(),
      [first, 'dbpassword', 'dbusername', 'foobar'].sort(),
    );
    for (const version of response.object_version) assert.match(version.version, /^[\w-]{32,64}$/);
  });

  it("mounts seed 004's SecretProviderClass exactly as printed (region from the provider's AWS_REGION)", async () => {
    const { versionId } = await putSecret('us-east-1', 'CSI-driver-test-secret', 'secretkey');
    const spc = await readSecretProviderClass('seed-004-secretproviderclass.yaml');
    const response = await world.client.mount(
      world.request(pod, spc.spec.parameters, { secretProviderClass: spc.metadata.name }),
    );
    assert.deepEqual(filesAsText(response.files), { 'CSI-driver-test-secret': 'secretkey' });
    assert.deepEqual(response.object_version, [{ id: 'CSI-driver-test-secret', version: versionId }]);
  });

  it('mounts SSM parameters: String, SecureString, by version and by label; slashes translated', async () => {
    const base = `/${uniqueName('smk-csi')}`;
    await putParameter('us-east-1', `${base}/db/host`, 'db-1.internal');
    await putParameter('us-east-1', `${base}/db/password`, 'first', 'SecureString');
    await putParameter('us-east-1', `${base}/db/password`, 'second', 'SecureString');
    const objects = `
- objectName: "${base}/db/host"
  objectType: ssmparameter
- objectName: "${base}/db/password"
  objectType: ssmparameter
  objectAlias: password-v1
  objectVersion: "1"
- objectName: "${base}/db/password"
  objectType: ssmparameter
  objectAlias: password-now
`;
    const response = await world.client.mount(world.request(pod, { objects, region: 'us-east-1' }));
    const translated = `${base}/db/host`.replaceAll('/', '_');
    assert.deepEqual(filesAsText(response.files), {
      [translated]: 'db-1.internal',
      'password-v1': 'first',
      'password-now': 'second',
    });
    const versions = Object.fromEntries(
      response.object_version.map((version) => [version.id, version.version]),
    );
    assert.deepEqual(versions, { [translated]: '1', 'password-v1': '1', 'password-now': '2' });
  });

  it('extractKeys: one file per JSON key, nested values as JSON, one object_version for the object', async () => {
    const name = `${uniqueName('smk-csi')}/settings`;
    await putSecret(
      'us-east-1',
      name,
      JSON.stringify({ host: 'db-2.internal', port: 5432, tls: { mode: 'full' } }),
    );
    const objects = `- {objectName: "${name}", objectType: secretsmanager, extractKeys: true, keyPrefix: db_}`;
    const response = await world.client.mount(world.request(pod, { objects, region: 'us-east-1' }));
    assert.deepEqual(filesAsText(response.files), {
      db_host: 'db-2.internal',
      db_port: '5432',
      db_tls: '{"mode":"full"}',
    });
    assert.deepEqual(
      response.object_version.map((version) => version.id),
      [name.replaceAll('/', '_')],
    );
  });

  it('discover: a Mount returns every match under the prefix (not a longer one); a secret created later is in the next Mount', async () => {
    const base = uniqueName('smk-csi-discover');
    await putSecret('us-east-1', `${base}/one`, 'discovered-one');
    await putSecret('us-east-1', `${base}x/other`, 'discovered-other');
    const objects = `- {objectType: secretsmanager, discover: {namePrefix: "${base}/", stripPrefix: true}}`;
    const first = await world.client.mount(world.request(pod, { objects, region: 'us-east-1' }));
    assert.deepEqual(filesAsText(first.files), { one: 'discovered-one' });
    await putSecret('us-east-1', `${base}/two`, 'discovered-two');
    const second = await world.client.mount(world.request(pod, { objects, region: 'us-east-1' }));
    assert.deepEqual(filesAsText(second.files), { one: 'discovered-one', two: 'discovered-two' });
    assert.deepEqual(second.object_version.map((version) => version.id).sort(), ['one', 'two']);
  });

  it('keeps sub-directories when pathTranslation is False, and uses a custom character otherwise', async () => {
    const name = `${uniqueName('smk-csi')}/app/token`;
    await putSecret('us-east-1', name, 'tok');
    const objects = `- {objectName: "${name}", objectType: secretsmanager}`;
    const nested = await world.client.mount(world.request(pod, { objects, pathTranslation: 'False' }));
    assert.deepEqual(filesAsText(nested.files), { [name]: 'tok' });
    const dashed = await world.client.mount(world.request(pod, { objects, pathTranslation: '-' }));
    assert.deepEqual(filesAsText(dashed.files), { [name.replaceAll('/', '-')]: 'tok' });
  });

  it('reads Secrets Manager versions by VersionId, by stage and by a custom label', async () => {
    const name = uniqueName('smk-csi-versions');
    const { versionId: v1 } = await putSecret('us-east-1', name, 'one');
    const v2 = await putSecretVersion('us-east-1', name, 'two');
    await putSecretVersion('us-east-1', name, 'three', ['AWSPENDING']);
    const objects = `
- {objectName: ${name}, objectType: secretsmanager, objectAlias: current}
- {objectName: ${name}, objectType: secretsmanager, objectAlias: previous, objectVersionLabel: AWSPREVIOUS}
- {objectName: ${name}, objectType: secretsmanager, objectAlias: pending, objectVersionLabel: AWSPENDING}
- {objectName: ${name}, objectType: secretsmanager, objectAlias: pinned, objectVersion: ${v1}}
`;
    const response = await world.client.mount(world.request(pod, { objects }));
    assert.deepEqual(filesAsText(response.files), {
      current: 'two',
      previous: 'one',
      pending: 'three',
      pinned: 'one',
    });
    const versions = Object.fromEntries(
      response.object_version.map((version) => [version.id, version.version]),
    );
    assert.equal(versions.current, v2);
    assert.equal(versions.previous, v1);
    assert.equal(versions.pinned, v1);
  });

  it('returns binary secrets byte for byte', async () => {
    const name = uniqueName('smk-csi-binary');
    const bytes = new Uint8Array([0, 1, 2, 0xfe, 0xff, 0x80, 10, 13, 0]);
    await putSecret('us-east-1', name, bytes);
    const response = await world.client.mount(
      world.request(pod, {
        objects: `- {objectName: ${name}, objectType: secretsmanager, objectAlias: blob}`,
      }),
    );
    assert.equal(response.files.length, 1);
    assert.deepEqual([...(response.files[0]?.contents ?? [])], [...bytes]);
  });

  it("applies filePermission, and the driver's permission as the default", async () => {
    const name = uniqueName('smk-csi-modes');
    await putSecret('us-east-1', name, '{"a":"1","b":"2"}');
    const objects = `
- objectName: ${name}
  objectType: secretsmanager
  objectAlias: whole
  filePermission: "0600"
  jmesPath:
    - {path: a, objectAlias: a, filePermission: "0440"}
    - {path: b, objectAlias: b}
- {objectName: ${name}, objectType: secretsmanager, objectAlias: plain}
`;
    const response = await world.client.mount(world.request(pod, { objects }, { permission: String(0o400) }));
    const modes = Object.fromEntries(response.files.map((file) => [file.path, file.mode]));
    // A jmesPath file without its own filePermission takes the object's (the core's rule).
    assert.deepEqual(modes, { whole: 0o600, a: 0o440, b: 0o600, plain: 0o400 });
  });

  it("reads both regions, as ASCP does, and mounts the primary's value when both answer", async () => {
    const name = uniqueName('smk-csi-failover');
    await putSecret('eu-west-1', name, 'from the failover region');
    await putSecret('us-east-2', name, 'from the primary region');
    const objects = `
- objectName: ${name}
  objectType: secretsmanager
  objectAlias: db
  failoverObject: {objectName: ${name}}
`;
    world.proxy.resetCounts();
    const response = await world.client.mount(
      world.request(pod, { objects, region: 'us-east-2', failoverRegion: 'eu-west-1' }),
    );
    assert.deepEqual(filesAsText(response.files), { db: 'from the primary region' });
    const reads =
      world.proxy.count({ api: 'GetSecretValue' }) + world.proxy.count({ api: 'BatchGetSecretValue' });
    assert.equal(reads, 2, `one read in each region, got ${JSON.stringify(world.proxy.countsByApi())}`);
  });

  it('does not hide a jmesPath error behind the failover region', async () => {
    const name = uniqueName('smk-csi-jmes');
    await putSecret('us-east-2', name, '{"user":{"name":"n"}}');
    await putSecret('eu-west-1', name, '{"user":{"name":"n","password":"p"}}');
    const objects = `
- objectName: ${name}
  objectType: secretsmanager
  objectAlias: db
  failoverObject: {objectName: ${name}}
  jmesPath: [{path: user.password, objectAlias: password}]
`;
    const error = await world.client
      .mount(world.request(pod, { objects, region: 'us-east-2', failoverRegion: 'eu-west-1' }))
      .then(
        () => assert.fail('the mount should fail'),
        (failure: unknown) => failure,
      );
    assert.ok(error instanceof MountCallError);
    assert.equal(error.errorCode, 'InvalidInput');
    assert.match(error.details, /objects\[0\]/);
    assert.match(error.details, /user\.password/);
    assert.doesNotMatch(error.details, /all regions/);
  });
});
