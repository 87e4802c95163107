/**
 * ASCP drop-in, to the letter: a SecretProviderClass that works with the AWS provider mounts the
 * same way with smk's, in the cases where smk used to differ. Test names use ASCP's own terms
 * (its README and provider/secret_descriptor.go).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/core/log.ts';
import { MountCallError } from '../../src/csi/client.ts';
import {
  filesAsText,
  type ProviderWorld,
  putSecret,
  putSecretVersion,
  startProviderWorld,
  type TestPod,
  uniqueName,
} from './harness.ts';

describe('csi provider: ASCP drop-in', () => {
  let world: ProviderWorld;
  let pod: TestPod;
  let logText = '';
  const logLines = (): Record<string, unknown>[] =>
    logText
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  before(async () => {
    const destination = new Writable({
      write(chunk, _encoding, done) {
        logText += String(chunk);
        done();
      },
    });
    world = await startProviderWorld({
      environmentRegion: 'us-east-1',
      // Far longer than any test: a re-mount that trusted the stage TTL would see the old value.
      stageTtlMs: 3_600_000,
      logger: createLogger({ level: 'info', destination }),
    });
    pod = await world.pod();
  });
  after(async () => {
    await world?.close();
  });

  it('ignores unknown fields in an object entry as ASCP does, and warns once naming the field (never its value)', async () => {
    const name = uniqueName('smk-ascp-unknown');
    await putSecret('us-east-1', name, '{"user":"u"}');
    const objects = `
- objectName: ${name}
  objectType: secretsmanager
  objectAlias: db
  objectTemplate: "template-value-not-logged"
  jmesPath: [{path: user, objectAlias: user, mode: "mode-value-not-logged"}]
`;
    const request = world.request(pod, { objects, region: 'us-east-1' });
    const first = await world.client.mount(request);
    assert.deepEqual(filesAsText(first.files), { db: '{"user":"u"}', user: 'u' });
    await world.client.mount(request);

    const warnings = logLines().filter((line) => Array.isArray(line.ignoredFields));
    assert.equal(warnings.length, 1, logText);
    assert.deepEqual(warnings[0]?.ignoredFields, [
      `objects[0] (${name}): "objectTemplate"`,
      `objects[0] (${name}): "jmesPath[0].mode"`,
    ]);
    assert.doesNotMatch(logText, /value-not-logged/);
  });

  for (const [missing, present, role] of [
    ['eu-west-1', 'us-east-2', 'failover'],
    ['us-east-2', 'eu-west-1', 'primary'],
  ] as const) {
    it(`fails the mount on a client error (4XX) from the ${role} region, though the other region has the secret (ASCP README, Automated Failover Regions)`, async () => {
      const name = uniqueName('smk-ascp-failover');
      await putSecret(present, name, `only in ${present}`);
      const objects = `
- objectName: ${name}
  objectType: secretsmanager
  objectAlias: db
  failoverObject: {objectName: ${name}}
`;
      const error = await world.client
        .mount(world.request(pod, { objects, region: 'us-east-2', failoverRegion: 'eu-west-1' }))
        .then(
          () => assert.fail('the mount should fail'),
          (failure: unknown) => failure,
        );
      assert.ok(error instanceof MountCallError);
      assert.equal(error.errorCode, 'NotFound');
      assert.match(error.details, new RegExp(`objects\\[0\\] \\(${name}\\): ${missing} \\(${role}\\)`));
    });
  }

  it("returns the current version on the driver's rotation re-mount: DescribeSecret each time, GetSecretValue only when the version moved", async () => {
    const name = uniqueName('smk-ascp-rotation');
    await putSecret('us-east-1', name, 'before rotation');
    const parameters = {
      objects: `- {objectName: ${name}, objectType: secretsmanager}`,
      region: 'us-east-1',
    };
    const first = await world.client.mount(world.request(pod, parameters));
    assert.deepEqual(filesAsText(first.files), { [name]: 'before rotation' });
    const remount = () =>
      world.client.mount({ ...world.request(pod, parameters), current_object_version: first.object_version });
    const reads = (): number =>
      world.proxy.count({ api: 'GetSecretValue' }) + world.proxy.count({ api: 'BatchGetSecretValue' });

    world.proxy.resetCounts();
    const unchanged = await remount();
    assert.deepEqual(filesAsText(unchanged.files), { [name]: 'before rotation' });
    assert.equal(world.proxy.count({ api: 'DescribeSecret' }), 1, JSON.stringify(world.proxy.countsByApi()));
    assert.equal(reads(), 0, JSON.stringify(world.proxy.countsByApi()));

    await putSecretVersion('us-east-1', name, 'after rotation');
    world.proxy.resetCounts();
    const rotated = await remount();
    assert.deepEqual(filesAsText(rotated.files), { [name]: 'after rotation' });
    assert.equal(world.proxy.count({ api: 'DescribeSecret' }), 1, JSON.stringify(world.proxy.countsByApi()));
    assert.equal(reads(), 1, JSON.stringify(world.proxy.countsByApi()));
  });
});
