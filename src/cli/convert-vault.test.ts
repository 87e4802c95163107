import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { convertVaultAnnotations, convertVaultObject, smkTemplateOfVault } from './convert-vault.ts';

const base = {
  'vault.hashicorp.com/agent-inject': 'true',
  'vault.hashicorp.com/role': 'web',
  'vault.hashicorp.com/agent-inject-secret-db.json': 'secret/data/web/db',
};

describe('convert Vault injector annotations', () => {
  it('secrets → smk.dev/objects in /vault/secrets, a refresh sidecar like the Vault agent, role dropped with a note', () => {
    const result = convertVaultAnnotations({ ...base, team: 'web' }, 'Deployment web');
    assert.deepEqual(result.annotations, {
      team: 'web',
      'smk.dev/inject': 'true',
      'smk.dev/objects': JSON.stringify([
        { objectName: 'secret/data/web/db', objectType: 'secretsmanager', objectAlias: 'db.json' },
      ]),
      'smk.dev/mount-path': '/vault/secrets',
      'smk.dev/refresh-interval': '5m',
    });
    assert.deepEqual(
      result.issues.map((issue) => `${issue.severity} ${issue.field}`),
      ['note vault.hashicorp.com/agent-inject-secret-db.json', 'note vault.hashicorp.com/role'],
    );
  });

  it('file, perms, volume path and pre-populate-only map; a template is unsupported by name', () => {
    const result = convertVaultAnnotations(
      {
        ...base,
        'vault.hashicorp.com/agent-inject-file-db.json': 'database.json',
        'vault.hashicorp.com/agent-inject-perms-db.json': '0440',
        'vault.hashicorp.com/secret-volume-path': '/etc/app',
        'vault.hashicorp.com/agent-pre-populate-only': 'true',
        'vault.hashicorp.com/agent-inject-template-db.json':
          '{{ with secret "x" }}{{ .Data.data.user }}{{ end }}',
      },
      'Pod web',
    );
    assert.equal(result.annotations?.['smk.dev/mount-path'], '/etc/app');
    assert.equal(result.annotations?.['smk.dev/refresh-interval'], undefined);
    assert.deepEqual(JSON.parse(result.annotations?.['smk.dev/objects'] ?? ''), [
      {
        objectName: 'secret/data/web/db',
        objectType: 'secretsmanager',
        objectAlias: 'database.json',
        filePermission: '0440',
      },
    ]);
    const unsupported = result.issues.filter((issue) => issue.severity === 'unsupported');
    assert.deepEqual(
      unsupported.map((issue) => issue.field),
      ['vault.hashicorp.com/agent-inject-template-db.json'],
    );
    assert.doesNotMatch(unsupported[0]?.message ?? '', /Data\.data/, 'the template itself is not echoed');
  });

  it('a template of plain references to its own secret → smk.dev/template-<file>, the object read by extractKeys', () => {
    const result = convertVaultAnnotations(
      {
        ...base,
        'vault.hashicorp.com/agent-inject-file-db.json': 'db.env',
        'vault.hashicorp.com/agent-inject-template-db.json':
          '{{- with secret "secret/data/web/db" -}}\nDB_URL=postgres://{{ .Data.data.user }}:{{ .Data.data.password }}@db/app\n{{- end }}\n',
      },
      'Pod web',
    );
    assert.deepEqual(JSON.parse(result.annotations?.['smk.dev/objects'] ?? ''), [
      { objectName: 'secret/data/web/db', objectType: 'secretsmanager', extractKeys: true },
    ]);
    assert.equal(
      result.annotations?.['smk.dev/template-db.env'],
      'DB_URL=postgres://{{ user }}:{{ password }}@db/app\n',
      "the wrapper's trim markers applied as Go does",
    );
    assert.deepEqual(
      result.issues.filter((issue) => issue.severity === 'unsupported'),
      [],
    );
  });

  it('smkTemplateOfVault: only the own path, only .Data references', () => {
    const path = 'secret/data/web/db';
    assert.deepEqual(smkTemplateOfVault(`{{ with secret "${path}" }}{{ .Data.user }}{{ end }}`, path), {
      text: '{{ user }}',
      keys: ['user'],
    });
    for (const text of [
      '{{ with secret "other" }}{{ .Data.user }}{{ end }}',
      `{{ with secret "${path}" }}{{ .Data.user | toUpper }}{{ end }}`,
      `{{ with secret "${path}" }}{{ range $k, $v := .Data.data }}{{ $k }}{{ end }}{{ end }}`,
      `{{ .Data.user }}`,
      `{{ with secret "${path}" }}{% raw %}{{ end }}`,
    ]) {
      assert.equal(smkTemplateOfVault(text, path), undefined, text);
    }
  });

  it('an unknown vault annotation is unsupported; injection off removes them with a note', () => {
    const unknown = convertVaultAnnotations(
      { ...base, 'vault.hashicorp.com/agent-cache-enable': 'true' },
      'Pod p',
    );
    assert.ok(
      unknown.issues.some(
        (issue) =>
          issue.severity === 'unsupported' && issue.field === 'vault.hashicorp.com/agent-cache-enable',
      ),
    );
    const off = convertVaultAnnotations({ 'vault.hashicorp.com/agent-inject': 'false', keep: 'x' }, 'Pod p');
    assert.deepEqual(off.annotations, { keep: 'x' });
    assert.deepEqual(convertVaultAnnotations({ keep: 'x' }, 'Pod p'), { issues: [] });
  });

  it("a Deployment's pod template is rewritten; the rest of the object is kept", () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        template: { metadata: { annotations: base }, spec: { containers: [{ name: 'web', image: 'x' }] } },
      },
    };
    const result = convertVaultObject(deployment);
    const converted = result.object as typeof deployment;
    assert.equal(converted.spec.template.metadata.annotations['smk.dev/inject' as keyof typeof base], 'true');
    assert.deepEqual(converted.spec.template.spec, deployment.spec.template.spec);
    assert.equal(result.issues[0]?.subject, 'Deployment shop/web');
    assert.equal(
      deployment.spec.template.metadata.annotations['vault.hashicorp.com/role'],
      'web',
      'input untouched',
    );
    assert.deepEqual(convertVaultObject({ kind: 'Service', metadata: { name: 's' } }), { issues: [] });
  });
});
