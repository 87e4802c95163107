import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { secretSyncJob } from '../controller/jobs.ts';
import { parseMountSpec } from '../core/spec.ts';
import { convertEso } from './convert-eso.ts';
import { fieldPathOf, isZeroDuration } from './convert-eso-data.ts';
import type { ConvertIssue } from './convert-output.ts';

const store = (aws: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'external-secrets.io/v1',
  kind: 'SecretStore',
  metadata: { name: 'aws', namespace: 'shop' },
  spec: {
    provider: {
      aws: { service: 'SecretsManager', auth: { jwt: { serviceAccountRef: { name: 'app' } } }, ...aws },
    },
    ...extra,
  },
});
const externalSecret = (spec: Record<string, unknown>) => ({
  apiVersion: 'external-secrets.io/v1',
  kind: 'ExternalSecret',
  metadata: { name: 'db', namespace: 'shop' },
  spec: {
    secretStoreRef: { name: 'aws', kind: 'SecretStore' },
    data: [{ secretKey: 'password', remoteRef: { key: 'prod/db', property: 'password' } }],
    ...spec,
  },
});
type Sync = {
  metadata: Record<string, unknown>;
  spec: Record<string, unknown> & { objects: unknown[]; target: Record<string, unknown> };
};

function only(objects: unknown[]): { sync: Sync | undefined; issues: ConvertIssue[] } {
  const result = convertEso(objects);
  return { sync: result.objects[0] as Sync | undefined, issues: result.issues };
}
const unsupported = (issues: ConvertIssue[]): string[] =>
  issues
    .filter((issue) => issue.severity === 'unsupported')
    .map((issue) => `${issue.field}: ${issue.message}`);

describe('convert ESO: store → identity, region, role chain', () => {
  it('auth.jwt.serviceAccountRef → serviceAccountName; region; role/externalID/sessionTags → assumeRole', () => {
    const { sync, issues } = only([
      store({
        region: 'eu-west-1',
        role: 'arn:aws:iam::444455556666:role/reader',
        externalID: 'ext-1',
        sessionTags: [{ key: 'team', value: 'shop' }],
      }),
      externalSecret({}),
    ]);
    assert.deepEqual(unsupported(issues), []);
    assert.equal(sync?.spec.serviceAccountName, 'app');
    assert.equal(sync?.spec.region, 'eu-west-1');
    assert.deepEqual(sync?.spec.assumeRole, {
      roleArn: 'arn:aws:iam::444455556666:role/reader',
      externalId: 'ext-1',
      sessionTags: { team: 'shop' },
    });
  });

  it("a store with the operator's own identity or static keys is unsupported, named; --service-account fills the account", () => {
    const noAuth = store({ auth: undefined });
    assert.match(
      unsupported(only([noAuth, externalSecret({})]).issues).join(),
      /spec\.secretStoreRef: .*operator's own credentials.*--service-account/,
    );
    const withAccount = convertEso([noAuth, externalSecret({})], { serviceAccount: 'reader' });
    assert.equal((withAccount.objects[0] as Sync).spec.serviceAccountName, 'reader');
    const keys = store({ auth: { secretRef: { accessKeyIDSecretRef: { name: 'k', key: 'id' } } } });
    assert.match(
      unsupported(only([keys, externalSecret({})]).issues).join(),
      /spec\.provider\.aws\.auth\.secretRef: smk never uses long-lived access keys/,
    );
  });

  it('ParameterStore → ssmparameter; a store of another provider is unsupported', () => {
    const { sync } = only([store({ service: 'ParameterStore' }), externalSecret({})]);
    assert.equal((sync?.spec.objects[0] as { objectType?: string } | undefined)?.objectType, 'ssmparameter');
    const vault = { ...store({}), spec: { provider: { vault: { server: 'https://vault' } } } };
    assert.match(
      unsupported(only([vault, externalSecret({})]).issues).join(),
      /spec\.provider\.vault: smk reads only AWS/,
    );
  });

  it('additionalRoles and unknown provider fields are named', () => {
    const { issues } = only([
      store({ additionalRoles: ['arn:aws:iam::1:role/a'], somethingNew: true }),
      externalSecret({}),
    ]);
    const found = unsupported(issues).join('\n');
    assert.match(found, /spec\.provider\.aws\.additionalRoles: smk chains one role/);
    assert.match(found, /spec\.provider\.aws\.somethingNew: no smk equivalent/);
  });

  it('a missing store is named with the flag to give it', () => {
    assert.match(
      unsupported(only([externalSecret({})]).issues).join(),
      /SecretStore aws is not among the inputs; give its manifest too \(-f\)/,
    );
  });

  it('a ClusterSecretStore is found without a namespace; an account in another namespace is refused', () => {
    const cluster = { ...store({}), kind: 'ClusterSecretStore', metadata: { name: 'aws' } };
    const es = externalSecret({ secretStoreRef: { name: 'aws', kind: 'ClusterSecretStore' } });
    assert.equal(only([cluster, es]).sync?.spec.serviceAccountName, 'app');
    const elsewhere = store({
      auth: { jwt: { serviceAccountRef: { name: 'eso', namespace: 'eso-system' } } },
    });
    const clusterElsewhere = { ...elsewhere, kind: 'ClusterSecretStore', metadata: { name: 'aws' } };
    assert.match(
      unsupported(only([clusterElsewhere, es]).issues).join(),
      /ServiceAccount eso-system\/eso, another namespace/,
    );
  });
});

describe('convert ESO: data → objects and target keys', () => {
  it('groups properties of one key into one object with jmesPath, whole values as objectAlias, and lists the keys', () => {
    const { sync, issues } = only([
      store({}),
      externalSecret({
        data: [
          { secretKey: 'user', remoteRef: { key: 'prod/db', property: 'username' } },
          { secretKey: 'pass', remoteRef: { key: 'prod/db', property: 'password' } },
          { secretKey: 'api', remoteRef: { key: 'prod/api', version: 'AWSPREVIOUS' } },
          { secretKey: 'pinned', remoteRef: { key: 'prod/api', version: 'uuid/0e1f' } },
        ],
      }),
    ]);
    assert.deepEqual(unsupported(issues), []);
    assert.deepEqual(sync?.spec.objects, [
      {
        objectName: 'prod/db',
        objectType: 'secretsmanager',
        jmesPath: [
          { path: 'username', objectAlias: 'user' },
          { path: 'password', objectAlias: 'pass' },
        ],
      },
      {
        objectName: 'prod/api',
        objectType: 'secretsmanager',
        objectVersionLabel: 'AWSPREVIOUS',
        objectAlias: 'api',
      },
      { objectName: 'prod/api', objectType: 'secretsmanager', objectVersion: '0e1f', objectAlias: 'pinned' },
    ]);
    assert.deepEqual(sync?.spec.target.data, [
      { objectName: 'user', key: 'user' },
      { objectName: 'pass', key: 'pass' },
      { objectName: 'api', key: 'api' },
      { objectName: 'pinned', key: 'pinned' },
    ]);
  });

  it('the same whole value under two keys, decoding and metadata are unsupported, by index', () => {
    const { issues } = only([
      store({}),
      externalSecret({
        data: [
          { secretKey: 'a', remoteRef: { key: 'k' } },
          { secretKey: 'b', remoteRef: { key: 'k' } },
          { secretKey: 'c', remoteRef: { key: 'j', decodingStrategy: 'Base64' } },
          { secretKey: 'd', remoteRef: { key: 'i', metadataPolicy: 'Fetch' } },
        ],
      }),
    ]);
    const found = unsupported(issues).join('\n');
    assert.match(found, /spec\.data\[1\]\.secretKey: the whole value of k is already written as a/);
    assert.match(found, /spec\.data\[2\]\.remoteRef\.decodingStrategy/);
    assert.match(found, /spec\.data\[3\]\.remoteRef\.metadataPolicy/);
  });

  it('gjson properties → plain field paths; wildcards refused', () => {
    assert.equal(fieldPathOf('db.password'), 'db.password');
    assert.equal(fieldPathOf('hosts.0'), 'hosts[0]');
    assert.equal(fieldPathOf('db-user'), '"db-user"');
    assert.equal(fieldPathOf('a\\.b'), '"a.b"');
    assert.equal(fieldPathOf('items.#.name'), undefined);
    assert.equal(fieldPathOf('na*e'), undefined);
  });
});

describe('convert ESO: target, refresh and dataFrom', () => {
  it('type, labels, annotations, policies and refreshInterval carry over', () => {
    const { sync, issues } = only([
      store({}),
      externalSecret({
        refreshInterval: '15m',
        target: {
          name: 'db-env',
          creationPolicy: 'Merge',
          deletionPolicy: 'Retain',
          template: {
            type: 'kubernetes.io/basic-auth',
            metadata: { labels: { app: 'x' }, annotations: { a: 'b' } },
          },
        },
      }),
    ]);
    assert.deepEqual(unsupported(issues), []);
    assert.equal(sync?.spec.refreshInterval, '15m');
    assert.equal(sync?.spec.creationPolicy, 'Merge');
    assert.equal(sync?.spec.deletionPolicy, 'Retain');
    assert.equal(sync?.spec.target.name, 'db-env');
    assert.equal(sync?.spec.target.type, 'kubernetes.io/basic-auth');
    assert.deepEqual(sync?.spec.target.labels, { app: 'x' });
    assert.deepEqual(sync?.spec.target.annotations, { a: 'b' });
  });

  it('creationPolicy None, deletionPolicy Merge, dataFrom rewrite/generators are each named', () => {
    const { issues } = only([
      store({}),
      externalSecret({
        target: { creationPolicy: 'None', deletionPolicy: 'Merge' },
        dataFrom: [
          { find: { name: { regexp: '^prod/' } } },
          { extract: { key: 'prod/db' }, rewrite: [{ regexp: { source: '(.*)', target: 'x_$1' } }] },
          { sourceRef: { generatorRef: { kind: 'Password', name: 'p' } } },
        ],
      }),
    ]);
    const fields = unsupported(issues).map((line) => line.split(':')[0]);
    assert.deepEqual(fields.sort(), [
      'spec.dataFrom[1].rewrite',
      'spec.dataFrom[2].sourceRef',
      'spec.target.creationPolicy',
      'spec.target.deletionPolicy',
    ]);
  });

  it('ClusterExternalSecret: names its counterpart (a ClusterSecretSync written by hand), converts nothing', () => {
    const result = convertEso([
      store({}),
      {
        apiVersion: 'external-secrets.io/v1',
        kind: 'ClusterExternalSecret',
        metadata: { name: 'shared' },
        spec: { namespaceSelectors: [{ matchLabels: { team: 'shop' } }], externalSecretSpec: {} },
      },
    ]);
    assert.equal(result.objects.length, 0);
    assert.match(
      unsupported(result.issues).join(),
      /^kind: not converted: smk's counterpart is a ClusterSecretSync .*namespaceSelectors → namespaceSelector.*by name only/,
    );
  });
});

describe('convert ESO: dataFrom find → discover', () => {
  it('each find becomes a discover object the SecretSync parser accepts; no target.data (keys come from the listing)', () => {
    const { sync, issues } = only([
      store({}),
      externalSecret({
        data: [],
        dataFrom: [
          { find: { name: { regexp: '^prod/payments/.*-db$' } } },
          { find: { path: 'shared/', tags: { team: 'payments' } } },
        ],
      }),
    ]);
    assert.deepEqual(unsupported(issues), []);
    assert.deepEqual(sync?.spec.objects, [
      {
        objectType: 'secretsmanager',
        discover: { namePrefix: 'prod/payments/', nameGlob: 'prod/payments/*-db' },
      },
      { objectType: 'secretsmanager', discover: { namePrefix: 'shared/', tags: { team: 'payments' } } },
    ]);
    assert.equal(sync?.spec.target.data, undefined);
    const job = secretSyncJob(sync);
    const spec = parseMountSpec(job.params, 'converted');
    assert.deepEqual(
      spec.objects.map((object) => object.discover?.namePrefix),
      ['prod/payments/', 'shared/'],
    );
  });

  it("a Parameter Store store's find becomes an SSM path discovery", () => {
    const { sync, issues } = only([
      store({ service: 'ParameterStore' }),
      externalSecret({ data: [], dataFrom: [{ find: { path: '/prod/app', name: { regexp: '.*' } } }] }),
    ]);
    assert.deepEqual(unsupported(issues), []);
    assert.deepEqual(sync?.spec.objects, [
      { objectType: 'ssmparameter', discover: { path: '/prod/app', recursive: true } },
    ]);
    parseMountSpec(secretSyncJob(sync).params, 'converted');
  });

  it('what does not map is named by field: a store prefix, a rewrite, more than 10 finds, a regexp with no glob', () => {
    const finds = Array.from({ length: 11 }, (_, index) => ({ find: { name: { regexp: `^p${index}/` } } }));
    const { issues } = only([
      store({ prefix: 'team/' }),
      externalSecret({
        data: [],
        dataFrom: [
          ...finds,
          { find: { name: { regexp: '^(a|b)/' } }, rewrite: [{ regexp: { source: '^p/', target: '' } }] },
        ],
      }),
    ]);
    const lines = unsupported(issues);
    assert.ok(
      lines.some((line) => /^spec\.dataFrom\[0\]\.find: the store's prefix "team\/"/.test(line)),
      lines.join('\n'),
    );
    assert.ok(lines.some((line) => line.startsWith('spec.dataFrom[10].find: more than 10 find entries')));
    assert.ok(
      lines.some((line) =>
        line.startsWith('spec.dataFrom[11].find.name.regexp: "^(a|b)/": no glob equivalent'),
      ),
    );
    assert.ok(lines.some((line) => /^spec\.dataFrom\[11\]\.rewrite: .*stripPrefix/.test(line)));
  });

  it('a template beside find converts, its notes carried by field', () => {
    const { sync, issues } = only([
      store({}),
      externalSecret({
        data: [],
        dataFrom: [{ find: { name: { regexp: '^prod/app/.*' } } }],
        target: { template: { data: { cert: '{{ index . "prod_app_tls" | b64enc }}' } } },
      }),
    ]);
    assert.deepEqual(unsupported(issues), []);
    assert.deepEqual(sync?.spec.target.templates, { cert: '{{ ["prod_app_tls"] | base64_encode }}' });
    assert.ok(
      issues.some((issue) => issue.severity === 'note' && issue.field === 'spec.target.template.data.cert'),
    );
  });
});

describe('convert ESO: dataFrom extract → extractKeys', () => {
  it('an extract becomes an object with extractKeys, its version carried; no target.data (keys come from the value)', () => {
    const { sync, issues } = only([
      store({}),
      externalSecret({
        data: [],
        dataFrom: [{ extract: { key: 'prod/all', version: 'AWSPREVIOUS', conversionStrategy: 'Default' } }],
      }),
    ]);
    assert.deepEqual(unsupported(issues), []);
    assert.deepEqual(sync?.spec.objects, [
      {
        objectName: 'prod/all',
        objectType: 'secretsmanager',
        objectVersionLabel: 'AWSPREVIOUS',
        extractKeys: true,
      },
    ]);
    assert.equal(sync?.spec.target.data, undefined);
    assert.match(
      issues.map((issue) => `${issue.severity} ${issue.field}: ${issue.message}`).join('\n'),
      /^note spec\.dataFrom: extract → extractKeys: .*5432\.0 → 5432.*the later one win/m,
    );
  });

  it('spec.data properties of the extracted key join its object; another key read only by property is refused (its whole value would be a key)', () => {
    const joined = only([
      store({}),
      externalSecret({
        data: [{ secretKey: 'pw', remoteRef: { key: 'prod/all', property: 'password' } }],
        dataFrom: [{ extract: { key: 'prod/all' } }],
      }),
    ]);
    assert.deepEqual(unsupported(joined.issues), []);
    assert.deepEqual(joined.sync?.spec.objects, [
      {
        objectName: 'prod/all',
        objectType: 'secretsmanager',
        jmesPath: [{ path: 'password', objectAlias: 'pw' }],
        extractKeys: true,
      },
    ]);
    const apart = only([store({}), externalSecret({ dataFrom: [{ extract: { key: 'prod/all' } }] })]);
    assert.deepEqual(unsupported(apart.issues), [
      'spec.data: beside dataFrom extract or find, the Secret would also get the whole value of prod/db; extract that key too, or name its whole value',
    ]);
  });

  it('what extractKeys cannot do is named: a nested property, decoding, Unicode conversion, a whole value of the same key', () => {
    const { issues } = only([
      store({}),
      externalSecret({
        data: [{ secretKey: 'all', remoteRef: { key: 'prod/all' } }],
        dataFrom: [
          { extract: { key: 'prod/nested', property: 'db' } },
          { extract: { key: 'prod/b64', decodingStrategy: 'Base64', conversionStrategy: 'Unicode' } },
          { extract: { key: 'prod/all' } },
        ],
      }),
    ]);
    assert.deepEqual(
      unsupported(issues)
        .map((line) => line.split(':')[0])
        .sort(),
      [
        'spec.dataFrom[0].extract.property',
        'spec.dataFrom[1].extract.conversionStrategy',
        'spec.dataFrom[1].extract.decodingStrategy',
        'spec.dataFrom[2].extract',
      ],
    );
  });
});

describe('convert ESO: refreshPolicy, immutable', () => {
  const policyOf = (spec: Record<string, unknown>) => {
    const { sync, issues } = only([store({}), externalSecret(spec)]);
    assert.deepEqual(unsupported(issues), []);
    return {
      refreshPolicy: sync?.spec.refreshPolicy,
      refreshInterval: sync?.spec.refreshInterval,
      notes: issues.filter((issue) => issue.severity === 'note').map((issue) => issue.field),
    };
  };

  it('Periodic keeps the interval; OnChange and CreatedOnce map and drop it; interval 0 is CreatedOnce', () => {
    assert.deepEqual(policyOf({ refreshPolicy: 'Periodic', refreshInterval: '10m' }), {
      refreshPolicy: undefined,
      refreshInterval: '10m',
      notes: [],
    });
    assert.deepEqual(policyOf({ refreshPolicy: 'OnChange', refreshInterval: '10m' }), {
      refreshPolicy: 'OnChange',
      refreshInterval: undefined,
      notes: ['spec.refreshInterval'],
    });
    assert.deepEqual(policyOf({ refreshPolicy: 'CreatedOnce' }), {
      refreshPolicy: 'CreatedOnce',
      refreshInterval: undefined,
      notes: ['spec.refreshPolicy'],
    });
    assert.deepEqual(policyOf({ refreshInterval: '0s' }), {
      refreshPolicy: 'CreatedOnce',
      refreshInterval: undefined,
      notes: ['spec.refreshInterval'],
    });
    assert.equal(policyOf({ refreshPolicy: 'OnChange', refreshInterval: '0' }).refreshPolicy, 'OnChange');
    for (const zero of ['0', '0s', '0h0m0s', '0.0s']) assert.ok(isZeroDuration(zero), zero);
    for (const some of ['10s', '1h0m0s', '0h30m']) assert.ok(!isZeroDuration(some), some);
  });

  it('target.immutable → target.immutable; refused with creationPolicy Merge (smk does not own that Secret)', () => {
    const { sync } = only([store({}), externalSecret({ target: { immutable: true } })]);
    assert.equal(sync?.spec.target.immutable, true);
    const merged = only([
      store({}),
      externalSecret({ target: { immutable: true, creationPolicy: 'Merge' } }),
    ]);
    assert.deepEqual(
      unsupported(merged.issues).map((line) => line.split(':')[0]),
      ['spec.target.immutable'],
    );
  });
});

describe('convert ESO: target.template.data → target.templates', () => {
  const dsn = 'postgres://{{ .user }}:{{.password}}@db:5432/app';

  it('{{ .key }} references → {{ key }}; the Secret holds only the template keys (ESO mergePolicy Replace)', () => {
    const { sync, issues } = only([
      store({}),
      externalSecret({
        data: [
          { secretKey: 'user', remoteRef: { key: 'prod/db', property: 'username' } },
          { secretKey: 'password', remoteRef: { key: 'prod/db', property: 'password' } },
        ],
        target: { template: { engineVersion: 'v2', data: { DATABASE_URL: dsn } } },
      }),
    ]);
    assert.deepEqual(unsupported(issues), []);
    assert.deepEqual(sync?.spec.target.templates, {
      DATABASE_URL: 'postgres://{{ user }}:{{ password }}@db:5432/app',
    });
    assert.deepEqual(sync?.spec.target.data, [{ objectName: 'DATABASE_URL', key: 'DATABASE_URL' }]);
  });

  it('mergePolicy Merge keeps the fetched keys beside the template keys', () => {
    const { sync } = only([
      store({}),
      externalSecret({ target: { template: { mergePolicy: 'Merge', data: { dsn: 'x={{ .password }}' } } } }),
    ]);
    assert.deepEqual(sync?.spec.target.data, [
      { objectName: 'password', key: 'password' },
      { objectName: 'dsn', key: 'dsn' },
    ]);
  });

  it('mergePolicy Merge with a template key spec.data also fills is named (ESO: the template wins)', () => {
    const { issues } = only([
      store({}),
      externalSecret({
        target: { template: { mergePolicy: 'Merge', data: { password: '{{ .password }}' } } },
      }),
    ]);
    assert.deepEqual(
      unsupported(issues).map((line) => line.split(':')[0]),
      ['spec.target.template.data.password'],
    );
  });

  it('functions, pipelines, trim markers, nested fields, engine v1 and templateFrom are named, key by key', () => {
    const { issues } = only([
      store({}),
      externalSecret({
        target: {
          template: {
            engineVersion: 'v1',
            data: {
              ok: '{{ .password }}',
              pipe: '{{ .password | upper }}',
              fn: '{{ printf "%s" .password }}',
              trim: '{{- .password }}',
              nested: '{{ .db.password }}',
            },
            templateFrom: [{ configMap: { name: 'c', items: [{ key: 'k' }] } }],
          },
        },
      }),
    ]);
    assert.deepEqual(
      unsupported(issues)
        .map((line) => line.split(':')[0])
        .sort(),
      [
        'spec.target.template.data.fn',
        'spec.target.template.data.nested',
        'spec.target.template.data.pipe',
        'spec.target.template.data.trim',
        'spec.target.template.engineVersion',
        'spec.target.template.templateFrom',
      ],
    );
  });
});
describe('convert ESO: input', () => {
  it('an ExternalSecret not in v1 shape is reported, not thrown; other ESO kinds are named', () => {
    const broken = convertEso([store({}), { ...externalSecret({}), spec: { data: 'nope' } }]);
    assert.equal(broken.objects.length, 0);
    assert.match(unsupported(broken.issues).join(), /not a valid ESO object/);
    const push = convertEso([
      { apiVersion: 'external-secrets.io/v1alpha1', kind: 'PushSecret', metadata: { name: 'p' } },
    ]);
    assert.match(unsupported(push.issues).join(), /^kind: smk converts ExternalSecret/);
  });
});
