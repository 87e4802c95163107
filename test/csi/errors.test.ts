/**
 * Every way ASCP refuses a mount, through the socket: each refusal is a gRPC status whose message
 * names the object and field, with the sentinel code in the trailers; spec errors cost no AWS
 * call; traversal is refused in every position a file name comes from; no message carries a
 * secret value; the server keeps serving throughout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { MountCallError } from '../../src/csi/client.ts';
import type { MountRequest } from '../../src/csi/protocol.ts';
import {
  filesAsText,
  type ProviderWorld,
  putSecret,
  startProviderWorld,
  type TestPod,
  uniqueName,
} from './harness.ts';

interface Refusal {
  readonly code: status;
  readonly errorCode: string;
  /** Every pattern must match the status message. */
  readonly says: readonly RegExp[];
}

describe('csi provider: refusals', () => {
  let world: ProviderWorld;
  let pod: TestPod;
  let secret: string;
  const secretValue = '{"user":{"name":"alice","password":"hunter2-do-not-leak"},"port":5432}';

  before(async () => {
    world = await startProviderWorld({ environmentRegion: 'us-east-1' });
    pod = await world.pod();
    secret = uniqueName('smk-csi-errors');
    await putSecret('us-east-1', secret, secretValue);
  });
  after(async () => {
    await world?.close();
  });

  async function refused(request: Partial<MountRequest>, expected: Refusal): Promise<MountCallError> {
    const error = await world.client.mount(request).then(
      () => assert.fail('the mount should be refused'),
      (failure: unknown) => failure,
    );
    assert.ok(error instanceof MountCallError, `expected a gRPC status, got ${String(error)}`);
    assert.equal(error.errorCode, expected.errorCode, error.details);
    assert.equal(error.code, expected.code, error.details);
    for (const pattern of expected.says) assert.match(error.details, pattern);
    assert.doesNotMatch(error.details, /hunter2|alice/);
    return error;
  }

  const invalid = (...says: RegExp[]): Refusal => ({
    code: status.INVALID_ARGUMENT,
    errorCode: 'InvalidInput',
    says,
  });

  describe('request and attributes', () => {
    it('refuses attributes that are not JSON, without quoting them', async () => {
      await refused(
        { attributes: '{"csi.storage.k8s.io/pod.name": "hunter2' },
        invalid(/attributes is not valid JSON/),
      );
    });

    it('refuses attributes that are not an object of strings', async () => {
      await refused({ attributes: '["objects"]' }, invalid(/not a JSON object/));
      await refused({ attributes: '{"objects": 5}' }, invalid(/attributes\.objects is not a string/));
    });

    it('refuses a request without the pod context the driver always sends', async () => {
      const request = world.request(
        pod,
        { objects: `- {objectName: ${secret}, objectType: secretsmanager}` },
        {
          omit: ['csi.storage.k8s.io/serviceAccount.name'],
        },
      );
      await refused(request, invalid(/csi\.storage\.k8s\.io\/serviceAccount\.name is missing/));
    });

    it('refuses a permission that is not a mode', async () => {
      const objects = `- {objectName: ${secret}, objectType: secretsmanager}`;
      await refused(
        world.request(pod, { objects }, { permission: '"0644"' }),
        invalid(/permission is not a file mode/),
      );
    });

    it('refuses a missing objects parameter', async () => {
      await refused(
        world.request(pod, { region: 'us-east-1' }),
        invalid(/test-class.*parameters\.objects is missing/),
      );
    });

    it('refuses a usePodIdentity Go would not parse', async () => {
      const objects = `- {objectName: ${secret}, objectType: secretsmanager}`;
      await refused(
        world.request(pod, { objects, usePodIdentity: 'yes' }),
        invalid(/usePodIdentity must be/),
      );
    });
  });

  describe('SecretProviderClass parameters (ASCP error cases)', () => {
    const cases: Array<[string, Record<string, string>, RegExp[]]> = [
      [
        'objects that are not YAML',
        { objects: '- objectName: [unclosed' },
        [/objects is not valid YAML or JSON/],
      ],
      ['objects that are not a list', { objects: 'objectName: x' }, [/objects must be a list/]],
      ['an empty object list', { objects: '[]' }, [/lists no objects/]],
      [
        'an object without objectName',
        { objects: '- {objectType: secretsmanager}' },
        [/objects\[0\]: objectName is required/],
      ],
      [
        'an unknown objectType',
        { objects: '- {objectName: x, objectType: ssm}' },
        [/objects\[0\] \(x\): objectType must be "secretsmanager" or "ssmparameter"/],
      ],
      [
        'a name without objectType',
        { objects: '- {objectName: plain-name}' },
        [/objects\[0\] \(plain-name\): objectType is required unless objectName is an ARN/],
      ],
      [
        'a malformed ARN',
        { objects: '- {objectName: "arn:aws:secretsmanager:nowhere"}' },
        [/objects\[0\].*objectName looks like an ARN/],
      ],
      [
        'an ARN of an unsupported service',
        { objects: '- {objectName: "arn:aws:s3:::bucket/key"}' },
        [/objects\[0\].*objectName looks like an ARN/],
      ],
      [
        'an objectType that contradicts the ARN',
        {
          objects:
            '- {objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", objectType: ssmparameter}',
        },
        [
          /objects\[0\].*objectName is an ARN of a Secrets Manager secret, but the object is of type ssmparameter/,
        ],
      ],
      [
        'an SSM object with both objectVersion and objectVersionLabel',
        {
          objects:
            '- {objectName: /app/db, objectType: ssmparameter, objectVersion: "2", objectVersionLabel: prod}',
        },
        [/objects\[0\] \(\/app\/db\): objectVersion and objectVersionLabel cannot both be set/],
      ],
      [
        'a jmesPath entry without path',
        { objects: '- {objectName: db, objectType: secretsmanager, jmesPath: [{objectAlias: x}]}' },
        [/objects\[0\] \(db\): jmesPath\[0\]\.path is required/],
      ],
      [
        'a jmesPath entry without objectAlias',
        { objects: '- {objectName: db, objectType: secretsmanager, jmesPath: [{path: a}]}' },
        [/objects\[0\] \(db\): jmesPath\[0\]\.objectAlias is required/],
      ],
      [
        'a jmesPath that is not a plain field path',
        {
          objects: '- {objectName: db, objectType: secretsmanager, jmesPath: [{path: "a[", objectAlias: x}]}',
        },
        [/objects\[0\] \(db\): jmesPath\[0\]\.path is not a plain field path/],
      ],
      [
        'a failoverObject without objectAlias',
        {
          objects: '- {objectName: db, objectType: secretsmanager, failoverObject: {objectName: db}}',
          failoverRegion: 'eu-west-1',
        },
        [/objects\[0\] \(db\): objectAlias is required when failoverObject is set/],
      ],
      [
        'a failoverObject without failoverRegion',
        {
          objects:
            '- {objectName: db, objectType: secretsmanager, objectAlias: d, failoverObject: {objectName: db}}',
        },
        [/objects\[0\] \(db\): failoverObject is set but the spec has no failoverRegion/],
      ],
      [
        'failover and primary versions that differ',
        {
          objects:
            '- {objectName: db, objectType: secretsmanager, objectAlias: d, objectVersion: 11111111-2222-3333-4444-555555555555, failoverObject: {objectName: db}}',
          failoverRegion: 'eu-west-1',
        },
        [/failoverObject\.objectVersion must equal objectVersion/],
      ],
      [
        'a failoverRegion equal to region',
        {
          objects: '- {objectName: db, objectType: secretsmanager}',
          region: 'eu-west-1',
          failoverRegion: 'eu-west-1',
        },
        [/failoverRegion must differ from region/],
      ],
      [
        'a failoverRegion equal to the default region',
        { objects: '- {objectName: db, objectType: secretsmanager}', failoverRegion: 'us-east-1' },
        [
          /failoverRegion must differ from the primary region \(both are us-east-1, the primary taken from the provider or node\)/,
        ],
      ],
      [
        'a pathTranslation of two characters',
        { objects: '- {objectName: db, objectType: secretsmanager}', pathTranslation: '__' },
        [/pathTranslation must be "False" or one character/],
      ],
      [
        'pathTranslation "True" (ASCP: "pathTranslation must be either \'False\' or a single character string")',
        { objects: '- {objectName: db, objectType: secretsmanager}', pathTranslation: 'True' },
        [/pathTranslation must be "False" or one character .*got "True"/],
      ],
      [
        'an ARN outside region (ASCP: "ARN region must match region")',
        {
          objects: '- {objectName: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"}',
          region: 'us-east-1',
        },
        [/objectName is an ARN in eu-west-1; expected one in region us-east-1/],
      ],
      [
        'a failoverObject name that is not an ARN without objectType (ASCP: "Must use objectType when a full ARN is not specified")',
        {
          objects:
            '- {objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", objectAlias: db, failoverObject: {objectName: db}}',
          region: 'us-east-1',
          failoverRegion: 'eu-west-1',
        },
        [/objectType is required when failoverObject\.objectName is not an ARN/],
      ],
      [
        'a region that is not one',
        { objects: '- {objectName: db, objectType: secretsmanager}', region: 'moon-1' },
        [/region must be an AWS region/],
      ],
      [
        'two objects with the same objectName',
        {
          objects:
            '- {objectName: db, objectType: secretsmanager}\n- {objectName: db, objectType: secretsmanager}',
        },
        [
          /objects\[1\] \(db\): objectName gives file name "db", already used by objects\[0\] \(db\) objectName/,
        ],
      ],
      [
        'an objectAlias used twice',
        {
          objects:
            '- {objectName: a, objectType: secretsmanager, objectAlias: same}\n- {objectName: b, objectType: secretsmanager, objectAlias: same}',
        },
        [/objects\[1\] \(b\): objectAlias gives file name "same", already used by objects\[0\] \(a\)/],
      ],
      [
        'a jmesPath alias that collides with an object',
        {
          objects:
            '- {objectName: a, objectType: secretsmanager, jmesPath: [{path: x, objectAlias: b}]}\n- {objectName: b, objectType: secretsmanager}',
        },
        [/already used by objects\[0\] \(a\) jmesPath\[0\]\.objectAlias/],
      ],
    ];
    for (const [what, parameters, says] of cases) {
      it(`refuses ${what}, naming the object and field, without calling AWS`, async () => {
        world.proxy.resetCounts();
        await refused(
          world.request(pod, parameters),
          invalid(/^SecretProviderClass test-class \(pod /, ...says),
        );
        assert.equal(world.proxy.count(), 0, JSON.stringify(world.proxy.countsByApi()));
      });
    }
  });

  describe('traversal, in every position a file name comes from', () => {
    const attempts: Array<[string, string, Record<string, string>, RegExp]> = [
      [
        'objectName',
        'a/../../escape',
        { pathTranslation: 'False' },
        /objects\[0\] \(a\/\.\.\/\.\.\/escape\): objectName gives file name "a\/\.\.\/\.\.\/escape", which contains a "\.\." segment/,
      ],
      [
        'objectAlias',
        '../escape',
        { pathTranslation: 'False' },
        /objects\[0\] \(db\): objectAlias gives file name "\.\.\/escape", which contains a "\.\." segment/,
      ],
      ['objectAlias', '..', {}, /objectAlias gives file name "\.\.", which contains a "\.\." segment/],
      [
        'objectAlias',
        'a/./b',
        { pathTranslation: 'False' },
        /objectAlias gives file name "a\/\.\/b", which contains a "\." segment/,
      ],
      [
        'objectAlias',
        'a//b',
        { pathTranslation: 'False' },
        /objectAlias gives file name "a\/\/b", which contains an empty path segment/,
      ],
      [
        'objectAlias',
        '..data',
        {},
        /objectAlias gives file name "\.\.data", which starts with "\.\.", which is reserved/,
      ],
      ['objectAlias', '../x', {}, /objectAlias gives file name "\.\._x", which starts with "\.\."/],
      [
        'jmesPath objectAlias',
        '../../etc/shadow',
        { pathTranslation: 'False' },
        /objects\[0\] \(db\): jmesPath\[0\]\.objectAlias gives file name "\.\.\/\.\.\/etc\/shadow", which contains a "\.\." segment/,
      ],
      [
        'jmesPath objectAlias',
        'ok/../../x',
        { pathTranslation: 'False' },
        /jmesPath\[0\]\.objectAlias gives file name "ok\/\.\.\/\.\.\/x", which contains a "\.\." segment/,
      ],
      ['jmesPath objectAlias', '..', {}, /jmesPath\[0\]\.objectAlias gives file name "\.\."/],
    ];
    for (const [position, name, extra, says] of attempts) {
      it(`refuses ${JSON.stringify(name)} as ${position}${extra.pathTranslation ? ' (pathTranslation False)' : ''}`, async () => {
        const objects =
          position === 'objectName'
            ? `- {objectName: "${name}", objectType: secretsmanager}`
            : position === 'objectAlias'
              ? `- {objectName: db, objectType: secretsmanager, objectAlias: "${name}"}`
              : `- {objectName: db, objectType: secretsmanager, jmesPath: [{path: user.name, objectAlias: "${name}"}]}`;
        world.proxy.resetCounts();
        await refused(world.request(pod, { objects, ...extra }), invalid(says));
        assert.equal(world.proxy.count(), 0);
      });
    }

    it('refuses a NUL in a name', async () => {
      const objects = JSON.stringify([
        { objectName: 'db', objectType: 'secretsmanager', objectAlias: 'a\u0000b' },
      ]);
      await refused(world.request(pod, { objects }), invalid(/contains a NUL character/));
    });

    it('keeps an absolute alias inside the volume (leading slash dropped, as ASCP does)', async () => {
      const objects = `- {objectName: ${secret}, objectType: secretsmanager, objectAlias: /etc/passwd}`;
      const response = await world.client.mount(world.request(pod, { objects, pathTranslation: 'False' }));
      assert.deepEqual(Object.keys(filesAsText(response.files)), ['etc/passwd']);
    });
  });

  describe('reading', () => {
    it('refuses a secret that does not exist, naming it', async () => {
      const missing = uniqueName('smk-csi-missing');
      await refused(
        world.request(pod, { objects: `- {objectName: ${missing}, objectType: secretsmanager}` }),
        {
          code: status.NOT_FOUND,
          errorCode: 'NotFound',
          says: [new RegExp(`objects\\[0\\] \\(${missing}\\)`)],
        },
      );
    });

    it('refuses when both regions fail, saying what each answered', async () => {
      const missing = uniqueName('smk-csi-nowhere');
      const objects = `- {objectName: ${missing}, objectType: secretsmanager, objectAlias: x, failoverObject: {objectName: ${missing}}}`;
      await refused(world.request(pod, { objects, region: 'us-east-2', failoverRegion: 'eu-west-1' }), {
        code: status.NOT_FOUND,
        errorCode: 'NotFound',
        says: [/us-east-2 \(primary\)/, /eu-west-1 \(failover\)/],
      });
    });

    it('refuses a jmesPath that selects nothing, naming the path and not the value', async () => {
      const objects = `- {objectName: ${secret}, objectType: secretsmanager, jmesPath: [{path: user.missing, objectAlias: m}]}`;
      await refused(
        world.request(pod, { objects }),
        invalid(/jmesPath\[0\] \(user\.missing\) selects nothing/),
      );
    });

    it('refuses a jmesPath that selects a number, with the to_string hint', async () => {
      const objects = `- {objectName: ${secret}, objectType: secretsmanager, jmesPath: [{path: port, objectAlias: p}]}`;
      await refused(
        world.request(pod, { objects }),
        invalid(/jmesPath\[0\] \(port\) selects a number; expected a string .*to_string/),
      );
    });

    it('refuses a jmesPath on a value that is not JSON, without quoting it', async () => {
      const plain = uniqueName('smk-csi-plain');
      await putSecret('us-east-1', plain, 'hunter2-do-not-leak, not json');
      const objects = `- {objectName: ${plain}, objectType: secretsmanager, jmesPath: [{path: a, objectAlias: a}]}`;
      await refused(
        world.request(pod, { objects }),
        invalid(/jmesPath needs a JSON value, but the value is not valid JSON/),
      );
    });
  });

  describe('identity', () => {
    const objects = (): string => `- {objectName: ${secret}, objectType: secretsmanager}`;

    it('refuses a mount without tokens, saying how to configure tokenRequests', async () => {
      const bare = await world.pod({ audiences: [] });
      await refused(
        world.request(bare, { objects: objects() }),
        invalid(
          /no ServiceAccount token for audience sts\.amazonaws\.com \(no tokens at all\)/,
          /tokenRequests/,
        ),
      );
    });

    it('refuses Pod Identity without a pods.eks.amazonaws.com token, naming the one it got', async () => {
      await refused(
        world.request(pod, { objects: objects(), usePodIdentity: 'true' }),
        invalid(/audience pods\.eks\.amazonaws\.com \(only for sts\.amazonaws\.com\)/, /tokenRequests/),
      );
    });

    it('refuses a ServiceAccount without the IRSA annotation', async () => {
      const unannotated = await world.pod({ roleArn: null });
      await refused(
        world.request(unannotated, { objects: objects() }),
        invalid(
          new RegExp(
            `ServiceAccount ${unannotated.namespace}/${unannotated.serviceAccount} has no eks\\.amazonaws\\.com/role-arn annotation`,
          ),
        ),
      );
    });

    it('refuses a ServiceAccount that does not exist', async () => {
      const ghost: TestPod = { ...pod, serviceAccount: uniqueName('ghost') };
      await refused(world.request(ghost, { objects: objects() }), {
        code: status.NOT_FOUND,
        errorCode: 'NotFound',
        says: [/ServiceAccount .*ghost-[0-9a-f]+: not found/],
      });
    });

    it('refuses a ServiceAccount annotation that is not a role ARN', async () => {
      const odd = await world.pod({ roleArn: 'my-role' });
      await refused(world.request(odd, { objects: objects() }), invalid(/is not an IAM role ARN/));
    });
  });

  describe('size', () => {
    it('refuses a value over the 64 KiB Secrets Manager limit', async () => {
      const big = uniqueName('smk-csi-big');
      await putSecret('us-east-1', big, 'x'.repeat(70_000));
      await refused(world.request(pod, { objects: `- {objectName: ${big}, objectType: secretsmanager}` }), {
        code: status.FAILED_PRECONDITION,
        errorCode: 'TooLarge',
        says: [/objects\[0\].*70000 bytes; expected at most 65536/],
      });
    });

    it("refuses a reply over the driver's message limit, naming the largest files", async () => {
      const small = await startProviderWorld({ maxReplyBytes: 100_000 });
      try {
        const smallPod = await small.pod();
        const names = [uniqueName('smk-csi-bulk'), uniqueName('smk-csi-bulk')];
        for (const name of names) await putSecret('us-east-1', name, 'y'.repeat(60_000));
        const objects = names.map((name) => `- {objectName: ${name}, objectType: secretsmanager}`).join('\n');
        const error = await small.client.mount(small.request(smallPod, { objects })).then(
          () => assert.fail('should be refused'),
          (failure: unknown) => failure,
        );
        assert.ok(error instanceof MountCallError);
        assert.equal(error.errorCode, 'TooLarge');
        assert.match(error.details, /over the 100000 bytes the driver accepts/);
        assert.match(error.details, /--max-call-recv-msg-size/);
      } finally {
        await small.close();
      }
    });
  });

  it('keeps serving after every refusal above', async () => {
    const response = await world.client.mount(
      world.request(pod, {
        objects: `- {objectName: ${secret}, objectType: secretsmanager, objectAlias: ok}`,
      }),
    );
    assert.deepEqual(filesAsText(response.files), { ok: secretValue });
  });
});
