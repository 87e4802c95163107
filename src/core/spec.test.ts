import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { InvalidInputError } from './errors.ts';
import { type MountParams, parseMountSpec, parseObjectsText } from './spec.ts';

const S = 'SecretProviderClass default/aws-secrets';
const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

const sm = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  objectName: 'db',
  objectType: 'secretsmanager',
  ...extra,
});
const versionId = 'EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE';
const primaryArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:Primary-AbCdEf';
const objectKeys =
  'objectName, objectType, objectAlias, objectVersion, objectVersionLabel, filePermission, jmesPath, failoverObject, extractKeys, keyPrefix, discover';

interface Row {
  readonly name: string;
  readonly params: MountParams;
  readonly expected: string | RegExp;
}

const rejected: readonly Row[] = [
  // the objects text
  {
    name: 'empty text',
    params: { objects: '  \n' },
    expected: `${S}: objects is empty; expected a YAML or JSON list of objects`,
  },
  {
    name: 'a mapping, not a list',
    params: { objects: 'objectName: db\nobjectType: secretsmanager\n' },
    expected: `${S}: objects must be a list (YAML sequence or JSON array) of objects, got a mapping`,
  },
  {
    name: 'broken YAML',
    params: { objects: '- objectName: [db\n' },
    expected: new RegExp(`^${S}: objects is not valid YAML or JSON: .+`),
  },
  {
    name: 'duplicate YAML keys',
    params: { objects: '- objectName: a\n  objectName: b\n  objectType: secretsmanager\n' },
    expected: new RegExp(`^${S}: objects is not valid YAML or JSON: Map keys must be unique`),
  },
  {
    name: 'empty list',
    params: { objects: [] },
    expected: `${S}: objects lists no objects; expected at least one`,
  },
  // top-level parameters
  {
    name: 'region shape',
    params: { objects: [sm()], region: 'US-EAST-1' },
    expected: `${S}: region must be an AWS region of a partition the AWS SDK in this smk knows, like "us-east-1", got "US-EAST-1"`,
  },
  {
    name: 'failoverRegion shape',
    params: { objects: [sm()], failoverRegion: 'east' },
    expected: `${S}: failoverRegion must be an AWS region of a partition the AWS SDK in this smk knows, like "us-east-1", got "east"`,
  },
  {
    // Each distinct region name costs an SDK client: invented ones never get that far.
    name: 'region shaped like one but made up',
    params: { objects: [sm()], region: 'xx-yyyy-1' },
    expected: `${S}: region must be an AWS region of a partition the AWS SDK in this smk knows, like "us-east-1", got "xx-yyyy-1"`,
  },
  {
    name: 'ARN in a made-up region',
    params: { objects: [{ objectName: 'arn:aws:secretsmanager:xx-yyyy-7:111122223333:secret:db-AbCdEf' }] },
    expected: `${S}: objects[0] (arn:aws:secretsmanager:xx-yyyy-7:111122223333:secret:db-AbCdEf): objectName is an ARN in region "xx-yyyy-7"; expected an AWS region of a partition the AWS SDK in this smk knows, like "us-east-1"`,
  },
  {
    name: 'failoverRegion equal to region',
    params: { objects: [sm()], region: 'us-east-1', failoverRegion: 'us-east-1' },
    expected: `${S}: failoverRegion must differ from region (both are us-east-1)`,
  },
  ...['..', '.', '/', '\0', 'ab', 'True', 'true'].map(
    (value): Row => ({
      name: `pathTranslation ${JSON.stringify(value)}`,
      params: { objects: [sm()], pathTranslation: value },
      expected: `${S}: pathTranslation must be "False" or one character other than ".", "/" and NUL (ASCP refuses "True" too), got ${JSON.stringify(value)}`,
    }),
  ),
  // object shape
  {
    name: 'object is a string',
    params: { objects: ['db'] },
    expected: `${S}: objects[0]: must be a mapping with ${objectKeys}; got a string`,
  },
  {
    name: 'objectName missing',
    params: { objects: [{ objectType: 'secretsmanager' }] },
    expected: `${S}: objects[0]: objectName is required; expected a name or ARN (or discover, to list objects instead)`,
  },
  {
    name: 'objectName a number',
    params: { objects: [{ objectName: 42, objectType: 'secretsmanager' }] },
    expected: `${S}: objects[0]: objectName must be a string, got a number`,
  },
  {
    name: 'objectName empty',
    params: { objects: [{ objectName: '', objectType: 'secretsmanager' }] },
    expected: `${S}: objects[0]: objectName must not be empty`,
  },
  {
    name: 'objectType ssm (ASCP refuses it too)',
    params: { objects: [sm({ objectType: 'ssm' })] },
    expected: `${S}: objects[0] (db): objectType must be "secretsmanager" or "ssmparameter", got "ssm"`,
  },
  {
    name: 'objectType missing without ARN',
    params: { objects: [{ objectName: 'db' }] },
    expected: `${S}: objects[0] (db): objectType is required unless objectName is an ARN; expected "secretsmanager" or "ssmparameter"`,
  },
  {
    name: 'ARN of another service',
    params: { objects: [{ objectName: 'arn:aws:s3:::bucket' }] },
    expected: `${S}: objects[0] (arn:aws:s3:::bucket): objectName looks like an ARN but is not arn:<partition>:secretsmanager:<region>:<account>:secret:<name> or arn:<partition>:ssm:<region>:<account>:parameter/<name>`,
  },
  {
    name: 'ARN without region',
    params: { objects: [{ objectName: 'arn:aws:secretsmanager::1:secret:db' }] },
    expected: /objects\[0\] \(arn:aws:secretsmanager::1:secret:db\): objectName looks like an ARN but is not/,
  },
  {
    name: 'objectType disagrees with the ARN',
    params: { objects: [{ objectName: primaryArn, objectType: 'ssmparameter' }] },
    expected: `${S}: objects[0] (${primaryArn}): objectName is an ARN of a Secrets Manager secret, but the object is of type ssmparameter`,
  },
  {
    name: 'secret name with a space',
    params: { objects: [sm({ objectName: 'db creds' })] },
    expected: `${S}: objects[0] (db creds): objectName must be a secret name (1–512 of A–Z a–z 0–9 / _ + = . @ -) or an ARN`,
  },
  {
    name: 'parameter name with a colon',
    params: { objects: [{ objectName: 'db:1', objectType: 'ssmparameter' }] },
    expected: `${S}: objects[0] (db:1): objectName must be a parameter name (1–2048 of A–Z a–z 0–9 / _ . -) or an ARN`,
  },
  // file permissions
  ...[
    ['644', 'must be four octal digits like "0640"'],
    ['0948', 'must be four octal digits like "0640"'],
    [true, 'must be four octal digits like "0640"'],
    [644, 'must be a quoted string like "0640" (an unquoted number loses its leading zero)'],
    ['4755', 'must not set setuid, setgid or sticky bits; expected "0" as first digit'],
  ].map(
    ([value, message]): Row => ({
      name: `filePermission ${JSON.stringify(value)}`,
      params: { objects: [sm({ filePermission: value })] },
      expected: `${S}: objects[0] (db): filePermission ${message}`,
    }),
  ),
  // versions
  {
    name: 'SSM version and label together (ASCP rule)',
    params: {
      objects: [{ objectName: 'p', objectType: 'ssmparameter', objectVersion: '2', objectVersionLabel: 'x' }],
    },
    expected: `${S}: objects[0] (p): objectVersion and objectVersionLabel cannot both be set for an ssmparameter object; expected one of them`,
  },
  {
    name: 'SSM version not a number',
    params: { objects: [{ objectName: 'p', objectType: 'ssmparameter', objectVersion: 'latest' }] },
    expected: `${S}: objects[0] (p): objectVersion must be a parameter version number like "3" for an ssmparameter object`,
  },
  {
    name: 'secret VersionId too short',
    params: { objects: [sm({ objectVersion: 'v1' })] },
    expected: `${S}: objects[0] (db): objectVersion must be a secret VersionId (32–64 letters, digits or -)`,
  },
  {
    name: 'objectVersion a fraction',
    params: { objects: [sm({ objectVersion: 1.5 })] },
    expected: `${S}: objects[0] (db): objectVersion must be a string or a whole number, got a number`,
  },
  // jmesPath
  {
    name: 'jmesPath not a list',
    params: { objects: [sm({ jmesPath: 'username' })] },
    expected: `${S}: objects[0] (db): jmesPath must be a list of {path, objectAlias}`,
  },
  {
    name: 'jmesPath entry without objectAlias (ASCP rule)',
    params: { objects: [sm({ jmesPath: [{ path: 'username' }] })] },
    expected: `${S}: objects[0] (db): jmesPath[0].objectAlias is required`,
  },
  {
    name: 'jmesPath entry without path (ASCP rule)',
    params: { objects: [sm({ jmesPath: [{ path: 'a', objectAlias: 'a' }, { objectAlias: 'b' }] })] },
    expected: `${S}: objects[0] (db): jmesPath[1].path is required`,
  },
  {
    name: 'jmesPath entry filePermission',
    params: { objects: [sm({ jmesPath: [{ path: 'a', objectAlias: 'a', filePermission: '777' }] })] },
    expected: `${S}: objects[0] (db): jmesPath[0].filePermission must be four octal digits like "0640"`,
  },
  {
    name: 'jmesPath not a plain field path (an unclosed index)',
    params: { objects: [sm({ jmesPath: [{ path: 'a[', objectAlias: 'a' }] })] },
    expected: `${S}: objects[0] (db): jmesPath[0].path is not a plain field path (at character 3); expected names, dots, "quoted names" and [n] indexes, like db.password, "db-user" or hosts[0]. Full JMESPath expressions run only where the cluster administrator enabled them (--allow-jmespath-expressions)`,
  },
  {
    name: 'finding 1: a value-probing expression is refused by default, naming the object and field',
    params: {
      objects: [
        sm({
          jmesPath: [
            { path: 'username', objectAlias: 'u' },
            { path: "starts_with(password,'a') && `1` || 'no'", objectAlias: 'p' },
          ],
        }),
      ],
    },
    expected: `${S}: objects[0] (db): jmesPath[1].path is not a plain field path (at character 12); expected names, dots, "quoted names" and [n] indexes, like db.password, "db-user" or hosts[0]. Full JMESPath expressions run only where the cluster administrator enabled them (--allow-jmespath-expressions)`,
  },
  // failover
  {
    name: 'failoverObject without failoverRegion (ASCP rule)',
    params: { objects: [sm({ objectAlias: 'db', failoverObject: { objectName: 'db' } })] },
    expected: `${S}: objects[0] (db): failoverObject is set but the spec has no failoverRegion; expected failoverRegion next to region`,
  },
  {
    name: 'failoverObject without objectAlias (ASCP rule)',
    params: {
      objects: [sm({ failoverObject: { objectName: 'db-replica' } })],
      region: 'us-east-1',
      failoverRegion: 'us-east-2',
    },
    expected: `${S}: objects[0] (db): objectAlias is required when failoverObject is set, so the file name does not depend on the region that answered`,
  },
  {
    name: 'failover ARN outside failoverRegion (ASCP rule)',
    params: {
      objects: [
        {
          objectName: primaryArn,
          objectAlias: 'db',
          failoverObject: { objectName: 'arn:aws:secretsmanager:us-west-2:1:secret:Replica-AbCdEf' },
        },
      ],
      failoverRegion: 'us-east-2',
    },
    expected: `${S}: objects[0] (${primaryArn}): failoverObject.objectName is an ARN in us-west-2; expected one in failoverRegion us-east-2`,
  },
  {
    name: 'failover version differs (ASCP rule)',
    params: {
      objects: [sm({ objectAlias: 'db', objectVersion: versionId, failoverObject: { objectName: 'db' } })],
      region: 'us-east-1',
      failoverRegion: 'us-east-2',
    },
    expected: `${S}: objects[0] (db): failoverObject.objectVersion must equal objectVersion (replicas share version ids); expected both unset or the same`,
  },
  {
    name: 'failoverObject of the other type',
    params: {
      objects: [
        sm({
          objectAlias: 'db',
          failoverObject: { objectName: 'arn:aws:ssm:us-east-2:1:parameter/db' },
        }),
      ],
      failoverRegion: 'us-east-2',
    },
    expected: `${S}: objects[0] (db): failoverObject.objectName is an ARN of a SSM parameter, but the object is of type secretsmanager`,
  },
  {
    name: 'ARN region must match region (ASCP: "ARN region must match region")',
    params: { objects: [{ objectName: primaryArn }], region: 'eu-west-1' },
    expected: `${S}: objects[0] (${primaryArn}): objectName is an ARN in us-east-1; expected one in region eu-west-1 (ASCP refuses the mismatch too)`,
  },
  {
    name: 'failover object without objectType when not an ARN (ASCP: "Must use objectType when a full ARN is not specified")',
    params: {
      objects: [{ objectName: primaryArn, objectAlias: 'db', failoverObject: { objectName: 'db' } }],
      region: 'us-east-1',
      failoverRegion: 'us-east-2',
    },
    expected: `${S}: objects[0] (${primaryArn}): objectType is required when failoverObject.objectName is not an ARN; expected "secretsmanager" or "ssmparameter"`,
  },
  {
    name: 'ARN object with failoverRegion but no failoverObject',
    params: { objects: [{ objectName: primaryArn }], failoverRegion: 'us-east-2' },
    expected: `${S}: objects[0] (${primaryArn}): objectName is an ARN in us-east-1, which cannot be read in failoverRegion us-east-2; expected a failoverObject naming the failover copy`,
  },
  // file names
  {
    name: 'alias with .. and translation off',
    params: { objects: [sm({ objectAlias: '../etc/passwd' })], pathTranslation: 'False' },
    expected: `${S}: objects[0] (db): objectAlias gives file name "../etc/passwd", which contains a ".." segment; expected a relative name inside the target directory`,
  },
  {
    name: 'alias with .. translated into the reserved prefix',
    params: { objects: [sm({ objectAlias: '../etc/passwd' })] },
    expected: `${S}: objects[0] (db): objectAlias gives file name ".._etc_passwd", which starts with "..", which is reserved for the atomic writer; expected a relative name inside the target directory`,
  },
  {
    name: 'alias ..',
    params: { objects: [sm({ objectAlias: '..' })] },
    expected: `${S}: objects[0] (db): objectAlias gives file name "..", which contains a ".." segment; expected a relative name inside the target directory`,
  },
  {
    name: 'alias .',
    params: { objects: [sm({ objectAlias: '.' })] },
    expected: `${S}: objects[0] (db): objectAlias gives file name ".", which contains a "." segment; expected a relative name inside the target directory`,
  },
  {
    name: 'alias ..data would replace the writer symlink',
    params: { objects: [sm({ objectAlias: '..data' })] },
    expected: `${S}: objects[0] (db): objectAlias gives file name "..data", which starts with "..", which is reserved for the atomic writer; expected a relative name inside the target directory`,
  },
  {
    name: 'jmesPath alias escaping with translation off',
    params: {
      objects: [sm({ jmesPath: [{ path: 'a', objectAlias: 'ok/../../x' }] })],
      pathTranslation: 'False',
    },
    expected: `${S}: objects[0] (db): jmesPath[0].objectAlias gives file name "ok/../../x", which contains a ".." segment; expected a relative name inside the target directory`,
  },
  {
    name: 'empty segment',
    params: { objects: [sm({ objectAlias: 'a//b' })], pathTranslation: 'False' },
    expected: `${S}: objects[0] (db): objectAlias gives file name "a//b", which contains an empty path segment; expected a relative name inside the target directory`,
  },
  {
    name: 'NUL in alias',
    params: { objects: [sm({ objectAlias: 'a\0b' })] },
    expected: `${S}: objects[0] (db): objectAlias gives file name "a\\u0000b", which contains a NUL character; expected a relative name inside the target directory`,
  },
  {
    name: 'segment too long',
    params: { objects: [sm({ objectAlias: 'x'.repeat(256) })] },
    expected: /objectAlias gives file name "x+", which has a path segment longer than 255 bytes/,
  },
  {
    name: 'same object twice (ASCP case 4)',
    params: { objects: [sm(), sm()] },
    expected: `${S}: objects[1] (db): objectName gives file name "db", already used by objects[0] (db) objectName; expected unique file names`,
  },
  {
    name: 'same name, different labels, no alias (ASCP lets both write one file)',
    params: {
      objects: [sm({ objectVersionLabel: 'AWSCURRENT' }), sm({ objectVersionLabel: 'AWSPREVIOUS' })],
    },
    expected: `${S}: objects[1] (db): objectName gives file name "db", already used by objects[0] (db) objectName; expected unique file names`,
  },
  {
    name: 'names equal after translation',
    params: { objects: [sm({ objectName: 'a/b' }), sm({ objectName: 'a_b' })] },
    expected: `${S}: objects[1] (a_b): objectName gives file name "a_b", already used by objects[0] (a/b) objectName; expected unique file names`,
  },
  {
    name: 'jmesPath alias equal to another object',
    params: {
      objects: [
        sm({ objectAlias: 'user' }),
        sm({ objectName: 'app', jmesPath: [{ path: 'u', objectAlias: 'user' }] }),
      ],
    },
    expected: `${S}: objects[1] (app): jmesPath[0].objectAlias gives file name "user", already used by objects[0] (db) objectAlias; expected unique file names`,
  },
  {
    name: 'jmesPath alias equal to its own object',
    params: { objects: [sm({ jmesPath: [{ path: 'u', objectAlias: 'db' }] })] },
    expected: `${S}: objects[0] (db): jmesPath[0].objectAlias gives file name "db", already used by objects[0] (db) objectName; expected unique file names`,
  },
  {
    name: 'a file where another needs a directory',
    params: {
      objects: [sm({ objectName: 'prod' }), sm({ objectName: 'prod/db' })],
      pathTranslation: 'False',
    },
    expected: `${S}: objects[1] (prod/db): objectName gives file name "prod/db", which needs "prod" as a directory, but objects[0] (prod) objectName writes a file there`,
  },
  // reporting
  {
    name: 'every problem of every object, in order',
    params: { objects: [sm({ filePermission: '9' }), { objectName: 'x' }] },
    expected: `${S}: objects[0] (db): filePermission must be four octal digits like "0640"; objects[1] (x): objectType is required unless objectName is an ARN; expected "secretsmanager" or "ssmparameter"`,
  },
  {
    name: 'long lists are cut at ten problems',
    params: { objects: Array.from({ length: 12 }, (_, i) => ({ objectName: `s${i}` })) },
    expected:
      /objects\[9\] \(s9\): objectType is required [^;]*; expected "secretsmanager" or "ssmparameter"; and 2 more$/,
  },
  {
    name: 'extractKeys: keyPrefix without extractKeys',
    params: { objects: [sm({ keyPrefix: 'db_' })] },
    expected: `${S}: objects[0] (db): keyPrefix is set but extractKeys is not true; expected extractKeys: true beside it`,
  },
  {
    name: 'extractKeys: objectAlias has nothing to name',
    params: { objects: [sm({ extractKeys: true, objectAlias: 'db' })] },
    expected: `${S}: objects[0] (db): objectAlias names the whole-value file, which an extractKeys object does not write; expected keyPrefix to name its keys`,
  },
  {
    name: 'extractKeys: a keyPrefix that is no Secret key',
    params: { objects: [sm({ extractKeys: true, keyPrefix: 'db/' })] },
    expected: `${S}: objects[0] (db): keyPrefix must be at most 128 of letters, digits, "-", "_" and ".", got "db/"`,
  },
  {
    name: 'extractKeys: not a boolean',
    params: { objects: [sm({ extractKeys: 'yes' })] },
    expected: `${S}: objects[0] (db): extractKeys must be true or false, got a string`,
  },
];

describe('parseMountSpec rejects', () => {
  for (const row of rejected) {
    test(row.name, () => {
      assert.throws(
        () => parseMountSpec(row.params, S),
        (error: unknown) => {
          assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
          if (typeof row.expected === 'string') assert.equal(error.message, row.expected);
          else assert.match(error.message, row.expected);
          assert.equal(error.subject, S);
          return true;
        },
      );
    });
  }

  test('names the field of the first problem for callers', () => {
    assert.throws(
      () => parseMountSpec({ objects: [sm({ jmesPath: [{ path: 'a' }] })] }, S),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'jmesPath[0].objectAlias',
    );
  });
});

describe("parseMountSpec with allowExpressions (the administrator's opt-in)", () => {
  const withPaths = (...paths: string[]): MountParams => ({
    objects: [sm({ jmesPath: paths.map((path, i) => ({ path, objectAlias: `f${i}` })) })],
  });

  test('accepts full expressions next to plain paths', () => {
    const spec = parseMountSpec(withPaths('username', 'to_string(port)', "join(',', hosts)"), S, {
      allowExpressions: true,
    });
    assert.deepEqual(
      spec.objects[0]?.jmesPath.map((entry) => entry.path),
      ['username', 'to_string(port)', "join(',', hosts)"],
    );
  });

  test('still refuses what is not JMESPath at all', () => {
    assert.throws(
      () => parseMountSpec(withPaths('a['), S, { allowExpressions: true }),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        error.field === 'jmesPath[0].path' &&
        error.message.startsWith(
          `${S}: objects[0] (db): jmesPath[0].path is not a valid JMESPath expression: `,
        ),
    );
  });

  test('an expression is at most 2048 characters (its syntax is checked on the event loop)', () => {
    assert.ok(parseMountSpec(withPaths(`to_string(${'a'.repeat(2_037)})`), S, { allowExpressions: true }));
    assert.throws(
      () => parseMountSpec(withPaths(`to_string(${'a'.repeat(2_038)})`), S, { allowExpressions: true }),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        error.message ===
          `${S}: objects[0] (db): jmesPath[0].path is an expression of 2049 characters; expected at most 2048`,
    );
  });

  test('plain paths parse alike with and without it', () => {
    const params = withPaths('a.b', '"db-user"', 'hosts[0]');
    assert.deepEqual(parseMountSpec(params, S, { allowExpressions: true }), parseMountSpec(params, S));
  });
});

describe('parseMountSpec accepts', () => {
  test('the ASCP documentation examples (YAML)', () => {
    const spec = parseMountSpec({ objects: fixture('ascp-readme.yaml'), region: 'eu-west-1' }, S);
    assert.deepEqual(spec, {
      region: 'eu-west-1',
      pathTranslation: '_',
      ignoredFields: [],
      objects: [
        {
          index: 0,
          objectName: 'arn:aws:secretsmanager:eu-west-1:[111122223333]:secret:MySecret-00AACC',
          objectType: 'secretsmanager',
          arnRegion: 'eu-west-1',
          jmesPath: [
            { path: 'username', objectAlias: 'dbusername' },
            { path: 'password', objectAlias: 'dbpassword', filePermission: 0o400 },
          ],
        },
        {
          index: 1,
          objectName: 'arn:aws:secretsmanager:eu-west-1:[111122223333]:secret:MySecret2-00AABB',
          objectType: 'secretsmanager',
          arnRegion: 'eu-west-1',
          objectAlias: 'foobar',
          jmesPath: [],
        },
        {
          index: 2,
          objectName: '/prod/app/db-host',
          objectType: 'ssmparameter',
          objectVersion: '3',
          jmesPath: [],
        },
        {
          index: 3,
          objectName: 'prod/app/api-key',
          objectType: 'secretsmanager',
          objectVersionLabel: 'AWSPREVIOUS',
          filePermission: 0o640,
          jmesPath: [],
        },
        {
          index: 4,
          objectName: 'arn:aws:ssm:eu-west-1:111122223333:parameter/prod/feature-flags',
          objectType: 'ssmparameter',
          arnRegion: 'eu-west-1',
          jmesPath: [],
        },
      ],
    });
  });

  test('JSON text, tab-indented', () => {
    const tabbed = JSON.stringify(JSON.parse(fixture('ascp-readme.json')), null, '\t');
    const spec = parseMountSpec({ objects: tabbed }, S);
    assert.deepEqual(
      spec.objects.map((object) => object.jmesPath.map((entry) => entry.objectAlias)),
      [['MySecretUsername', 'MySecretPassword']],
    );
    assert.equal(spec.region, undefined);
  });

  test('failover with a failoverObject in the failover region', () => {
    const spec = parseMountSpec(
      { objects: fixture('failover.yaml'), region: 'us-east-1', failoverRegion: 'us-east-2' },
      S,
    );
    assert.deepEqual(spec.objects[0]?.failoverObject, {
      objectName: 'arn:aws:secretsmanager:us-east-2:123456789012:secret:FailoverSecret-12345',
    });
    assert.equal(spec.failoverRegion, 'us-east-2');
  });

  test('an already-parsed list (CRD specs)', () => {
    const spec = parseMountSpec({ objects: [sm({ objectAlias: null, objectVersionLabel: null })] }, S);
    assert.deepEqual(spec.objects, [
      { index: 0, objectName: 'db', objectType: 'secretsmanager', jmesPath: [] },
    ]);
  });

  test('unknown fields are ignored, as ASCP ignores them, and named for a warning', () => {
    const spec = parseMountSpec(
      {
        objects: [
          sm({
            objectTemplate: '{{ . }}',
            objectAlias: 'db',
            jmesPath: [{ path: 'user', objectAlias: 'user', mode: '0600' }],
            failoverObject: { objectName: 'db', region: 'us-east-2' },
          }),
          sm({ objectName: 'plain' }),
        ],
        failoverRegion: 'us-east-2',
      },
      S,
    );
    assert.deepEqual(spec.ignoredFields, [
      'objects[0] (db): "objectTemplate"',
      'objects[0] (db): "jmesPath[0].mode"',
      'objects[0] (db): "failoverObject.region"',
    ]);
    assert.deepEqual(spec.objects[0]?.failoverObject, { objectName: 'db' });
    assert.deepEqual(spec.objects[0]?.jmesPath, [{ path: 'user', objectAlias: 'user' }]);
  });

  test('a warning lists at most ten ignored fields, then counts the rest', () => {
    const extra = Object.fromEntries(Array.from({ length: 12 }, (_, n) => [`x${n}`, n]));
    const spec = parseMountSpec({ objects: [sm(extra)] }, S);
    assert.equal(spec.ignoredFields.length, 11);
    assert.equal(spec.ignoredFields[10], 'and 2 more');
  });

  test('an ARN without region set is read where it lives', () => {
    const spec = parseMountSpec({ objects: [{ objectName: primaryArn }] }, S);
    assert.equal(spec.objects[0]?.arnRegion, 'us-east-1');
  });

  test('a plain failover name is fine with objectType set', () => {
    const spec = parseMountSpec(
      {
        objects: [
          {
            objectName: primaryArn,
            objectType: 'secretsmanager',
            objectAlias: 'db',
            failoverObject: { objectName: 'db' },
          },
        ],
        region: 'us-east-1',
        failoverRegion: 'us-east-2',
      },
      S,
    );
    assert.equal(spec.objects[0]?.failoverObject?.objectName, 'db');
  });

  test('pathTranslation values', () => {
    const cases: [string | undefined, string | false][] = [
      [undefined, '_'],
      ['', '_'],
      ['False', false],
      ['false', false],
      ['-', '-'],
      ['ü', 'ü'],
    ];
    for (const [input, expected] of cases) {
      const spec = parseMountSpec({ objects: [sm()], pathTranslation: input }, S);
      assert.equal(spec.pathTranslation, expected, `pathTranslation ${JSON.stringify(input)}`);
    }
  });

  test('names that only collide without translation are fine with it', () => {
    const spec = parseMountSpec({ objects: [sm({ objectName: 'prod' }), sm({ objectName: 'prod/db' })] }, S);
    assert.equal(spec.objects.length, 2);
  });

  test('extractKeys: its names come from the value, so they are not listed at parse time', () => {
    const parsed = parseMountSpec(
      {
        objects: [
          sm({ extractKeys: true, keyPrefix: 'db_' }),
          sm({ objectName: 'api', extractKeys: true }),
          sm({ objectName: 'other', objectAlias: 'db', extractKeys: false }),
        ],
      },
      S,
    );
    assert.deepEqual(
      parsed.objects.map((object) => object.extractKeys),
      [{ prefix: 'db_' }, { prefix: '' }, undefined],
    );
  });

  test('extractKeys with a failoverObject needs no objectAlias (it writes no whole-value file)', () => {
    const parsed = parseMountSpec(
      {
        objects: [sm({ extractKeys: true, failoverObject: { objectName: 'db' } })],
        region: 'eu-west-1',
        failoverRegion: 'eu-central-1',
      },
      S,
    );
    assert.deepEqual(parsed.objects[0]?.extractKeys, { prefix: '' });
  });

  test('a YAML alias bomb is refused, not expanded', () => {
    const bomb = ['- &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) {
      const previous = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      bomb.push(`- &${name} [${Array(10).fill(`*${previous}`).join(',')}]`);
    }
    assert.throws(() => parseObjectsText(bomb.join('\n'), S), /objects is not valid YAML or JSON: .*alias/i);
  });
});
