import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { InvalidInputError } from '../core/errors.ts';
import { needsFinalizer, secretSyncJob } from './jobs.ts';
import { spcJob, spcOptedIn } from './spc-job.ts';

const seedSpc = parse(
  readFileSync(new URL('../../test/controller/fixtures/seed-004-spc.yaml', import.meta.url), 'utf8'),
) as { metadata: { annotations: Record<string, string> }; spec: Record<string, unknown> };

function secretSync(spec: Record<string, unknown>): unknown {
  return {
    apiVersion: 'smk.dev/v1alpha1',
    kind: 'SecretSync',
    metadata: { name: 'db', namespace: 'team-a', uid: 'u-1', generation: 3 },
    spec: {
      serviceAccountName: 'app',
      objects: [{ objectName: 'db-creds', objectType: 'secretsmanager' }],
      ...spec,
    },
  };
}

describe('SecretSync → job', () => {
  it('applies the defaults', () => {
    const job = secretSyncJob(secretSync({}));
    assert.equal(job.serviceAccountName, 'app');
    assert.equal(job.creationPolicy, 'Owner');
    assert.equal(job.deletionPolicy, 'Delete', 'an owned Secret goes with its owner');
    assert.equal(secretSyncJob(secretSync({ creationPolicy: 'Orphan' })).deletionPolicy, 'Retain');
    assert.equal(job.refreshIntervalMs, 3_600_000);
    assert.deepEqual(job.targets, [{ name: 'db', type: 'Opaque', labels: {}, annotations: {} }]);
    assert.deepEqual(job.source, {
      kind: 'SecretSync',
      apiVersion: 'smk.dev/v1alpha1',
      namespace: 'team-a',
      name: 'db',
      uid: 'u-1',
      generation: 3,
    });
  });

  it('takes target, refresh and policies as given', () => {
    const job = secretSyncJob(
      secretSync({
        region: 'eu-west-1',
        refreshInterval: '1m30s',
        creationPolicy: 'Merge',
        deletionPolicy: 'Delete',
        target: {
          name: 'app-env',
          type: 'kubernetes.io/basic-auth',
          data: [{ objectName: 'db-creds', key: 'password' }],
        },
      }),
    );
    assert.equal(job.refreshIntervalMs, 90_000);
    assert.equal(job.params.region, 'eu-west-1');
    assert.equal(job.creationPolicy, 'Merge');
    assert.equal(job.targets[0]?.name, 'app-env');
    assert.deepEqual(job.targets[0]?.data, [{ objectName: 'db-creds', key: 'password' }]);
  });

  it('refuses a Secret type smk does not write and reserved labels and annotations, naming the Secret', () => {
    const refused = (target: Record<string, unknown>): string => {
      try {
        secretSyncJob(secretSync({ target: { name: 'out', ...target } }));
        return 'accepted';
      } catch (error) {
        assert.ok(error instanceof InvalidInputError);
        return error.message;
      }
    };
    for (const type of [
      'kubernetes.io/service-account-token',
      'bootstrap.kubernetes.io/token',
      'helm.sh/release.v1',
    ]) {
      assert.match(
        refused({ type }),
        new RegExp(
          `^SecretSync team-a/db: spec.target.type: type "${type}" is not one smk writes .*; not writing Secret team-a/out$`,
        ),
      );
    }
    for (const type of [
      'Opaque',
      'kubernetes.io/tls',
      'kubernetes.io/dockerconfigjson',
      'kubernetes.io/basic-auth',
    ]) {
      assert.equal(refused({ type }), 'accepted', type);
    }
    for (const key of [
      'smk.dev/write-through',
      'smk.dev/owner',
      'smk.dev/merge-from',
      'SMK.DEV/write-through',
      'x.smk.dev/anything',
      'kubernetes.io/service-account.name',
      'kubectl.kubernetes.io/last-applied-configuration',
      'node.k8s.io/x',
      'app.kubernetes.io/managed-by',
    ]) {
      assert.match(
        refused({ labels: { [key]: 'true' } }),
        /spec\.target\.labels: key .* is reserved .*; not writing Secret team-a\/out$/,
        key,
      );
      assert.match(
        refused({ annotations: { [key]: 'true' } }),
        /spec\.target\.annotations: key .* is reserved/,
        key,
      );
    }
    for (const key of ['app.kubernetes.io/name', 'team', 'example.com/owner', 'notsmk.dev/x', 'smk.dev']) {
      assert.equal(refused({ labels: { [key]: 'x' }, annotations: { [key]: 'x' } }), 'accepted', key);
    }
  });

  const refusals: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'no service account',
      { serviceAccountName: undefined },
      /SecretSync team-a\/db: spec\.serviceAccountName/,
    ],
    [
      'bad service account name',
      { serviceAccountName: 'Not_A_Name' },
      /spec\.serviceAccountName: expected a DNS subdomain/,
    ],
    ['no objects', { objects: [] }, /spec\.objects: expected at least one object/],
    [
      'refresh too short',
      { refreshInterval: '10ms' },
      /spec\.refreshInterval: expected a duration of at least 1s/,
    ],
    ['refresh not a duration', { refreshInterval: 'hourly' }, /spec\.refreshInterval/],
    ['unknown policy', { creationPolicy: 'Adopt' }, /spec\.creationPolicy/],
    [
      'bad key',
      { target: { data: [{ objectName: 'x', key: 'a/b' }] } },
      /spec\.target\.data\[0\]\.key: expected a Secret key/,
    ],
  ];
  for (const [title, spec, expected] of refusals) {
    it(`refuses: ${title}`, () => {
      assert.throws(
        () => secretSyncJob(secretSync(spec)),
        (error: unknown) => error instanceof InvalidInputError && expected.test(error.message),
      );
    });
  }
});

describe('SecretProviderClass drop-in → job', () => {
  it('seed 004 plus the opt-in annotations gives foosecret with SECRET_API_KEY', () => {
    const object = { ...seedSpc, metadata: { ...seedSpc.metadata, namespace: 'default', uid: 'spc-1' } };
    assert.equal(spcOptedIn(object), true);
    const job = spcJob(object);
    assert.equal(job.serviceAccountName, 'nginx-deployment-sa');
    assert.equal(job.creationPolicy, 'Owner');
    assert.equal(job.deletionPolicy, 'Delete');
    assert.deepEqual(job.targets, [
      {
        name: 'foosecret',
        type: 'Opaque',
        labels: {},
        annotations: {},
        data: [{ key: 'SECRET_API_KEY', objectName: 'CSI-driver-test-secret' }],
      },
    ]);
    assert.match(String(job.params.objects), /CSI-driver-test-secret/);
  });

  it('is not opted in without smk.dev/sync: "true"', () => {
    assert.equal(spcOptedIn({ metadata: { annotations: { 'smk.dev/sync': 'false' } } }), false);
    assert.equal(spcOptedIn({ metadata: {} }), false);
  });

  it('names the missing service-account annotation', () => {
    const object = {
      ...seedSpc,
      metadata: { name: 'spc', namespace: 'default', annotations: { 'smk.dev/sync': 'true' } },
    };
    assert.throws(
      () => spcJob(object),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        /SecretProviderClass default\/spc: annotations: .*smk\.dev\/service-account/.test(error.message),
    );
  });

  it('refuses another provider and an empty secretObjects', () => {
    const base = { ...seedSpc, metadata: { ...seedSpc.metadata, namespace: 'default' } };
    const spec = base.spec;
    assert.throws(
      () => spcJob({ ...base, spec: { ...spec, provider: 'vault' } }),
      /smk syncs only provider "aws"/,
    );
    assert.throws(
      () => spcJob({ ...base, spec: { ...spec, secretObjects: [] } }),
      /spec\.secretObjects is empty/,
    );
  });

  it('refuses a secretObjects entry with a type smk does not write or a reserved label', () => {
    const base = { ...seedSpc, metadata: { ...seedSpc.metadata, namespace: 'default' } };
    const entry = { secretName: 'pull', data: [{ objectName: 'x', key: 'k' }] };
    const withEntry = (extra: Record<string, unknown>) => ({
      ...base,
      spec: { ...base.spec, secretObjects: [{ ...entry, ...extra }] },
    });
    assert.throws(
      () => spcJob(withEntry({ type: 'kubernetes.io/service-account-token' })),
      /spec\.secretObjects\[0\]\.type: type "kubernetes.io\/service-account-token" is not one smk writes .*; not writing Secret default\/pull/,
    );
    assert.throws(
      () => spcJob(withEntry({ labels: { 'smk.dev/write-through': 'true' } })),
      /spec\.secretObjects\[0\]\.labels: key "smk.dev\/write-through" is reserved \(smk.dev\/ keys steer smk itself\); not writing Secret default\/pull/,
    );
  });
});

describe('finalizer', () => {
  it('is needed only where the garbage collector would not carry out the policy', () => {
    assert.equal(needsFinalizer({ creationPolicy: 'Owner', deletionPolicy: 'Delete' }), false);
    assert.equal(needsFinalizer({ creationPolicy: 'Owner', deletionPolicy: 'Retain' }), true);
    assert.equal(needsFinalizer({ creationPolicy: 'Orphan', deletionPolicy: 'Retain' }), false);
    assert.equal(needsFinalizer({ creationPolicy: 'Orphan', deletionPolicy: 'Delete' }), true);
    assert.equal(needsFinalizer({ creationPolicy: 'Merge', deletionPolicy: 'Retain' }), false);
    assert.equal(needsFinalizer({ creationPolicy: 'Merge', deletionPolicy: 'Delete' }), true);
  });
});
