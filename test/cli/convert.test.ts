/**
 * `smk convert` as a user runs it: a separate process, files and directories in, YAML out, the
 * report on stderr and an exit code that stops a pipe into kubectl when anything did not convert.
 * The converted workload goes through `smk inject`, as the webhook would treat it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { runCommand } from '../harness/run.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const fixtures = new URL('./fixtures/convert/', import.meta.url).pathname;
const smk = (args: readonly string[], input?: string) =>
  runCommand(process.execPath, [cli, ...args], input === undefined ? {} : { input });

describe('smk convert', () => {
  test('a field without an equivalent: named on stderr, nothing on stdout, exit 1', async () => {
    const result = await smk([
      'convert',
      '-f',
      `${fixtures}es-with-find.yaml`,
      '-f',
      `${fixtures}store.yaml`,
    ]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /^unsupported ExternalSecret shop\/all spec\.dataFrom\[0\]\.find\.name\.regexp: "\^prod\/\(db\|cache\)\$": no glob equivalent/m,
    );
  });

  test('--allow-partial prints what converted and exits 0', async () => {
    const result = await smk(['convert', '--allow-partial', '-f', fixtures]);
    assert.equal(result.code, 0, result.stderr);
    const kinds = parseAllDocuments(result.stdout).map(
      (document) => (document.toJS() as { kind: string }).kind,
    );
    assert.deepEqual(kinds, ['SecretSync', 'Deployment']);
  });

  test('a Vault-injected Deployment converts on its own, and smk inject accepts the result', async () => {
    const converted = await smk(['convert', '-f', `${fixtures}vault-deployment.yaml`]);
    assert.equal(converted.code, 0, converted.stderr);
    assert.match(converted.stderr, /^note Deployment shop\/web vault\.hashicorp\.com\/role: /m);
    const injected = await smk(['inject', '-f', '-'], converted.stdout);
    assert.equal(injected.code, 0, injected.stderr);
    assert.match(injected.stderr, /deployment\/web injected/);
    const [deployment] = parseAllDocuments(injected.stdout).map((document) => document.toJS()) as {
      spec: {
        template: { spec: { initContainers: { name: string; env: { name: string; value?: string }[] }[] } };
      };
    }[];
    const init = deployment?.spec.template.spec.initContainers.find(
      (container) => container.name === 'smk-agent-init',
    );
    const env = Object.fromEntries((init?.env ?? []).map((variable) => [variable.name, variable.value]));
    assert.equal(env.SMK_DIR, '/vault/secrets', 'the app reads the same directory');
    assert.deepEqual(JSON.parse(env.SMK_OBJECTS ?? '[]'), [
      { objectName: 'shop/web/api-key', objectType: 'secretsmanager', objectAlias: 'api-key' },
      {
        objectName: 'shop/web/db',
        objectType: 'secretsmanager',
        objectAlias: 'db.json',
        filePermission: '0440',
      },
    ]);
  });

  test('a Vault template of plain references converts to smk.dev/template-<file>, and smk inject accepts it', async () => {
    const pod = [
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: web',
      '  namespace: shop',
      '  annotations:',
      '    vault.hashicorp.com/agent-inject: "true"',
      '    vault.hashicorp.com/agent-inject-secret-db.env: shop/web/db',
      '    vault.hashicorp.com/agent-inject-template-db.env: |',
      '      {{- with secret "shop/web/db" -}}',
      '      DB_URL=postgres://{{ .Data.data.user }}:{{ .Data.data.password }}@db/app',
      '      {{- end }}',
      'spec:',
      '  serviceAccountName: web',
      '  containers: [{name: web, image: "busybox:1.36"}]',
      '',
    ].join('\n');
    const converted = await smk(['convert', '-f', '-'], pod);
    assert.equal(converted.code, 0, converted.stderr);
    const [object] = parseAllDocuments(converted.stdout).map((document) => document.toJS()) as {
      metadata: { annotations: Record<string, string> };
    }[];
    assert.equal(
      object?.metadata.annotations['smk.dev/template-db.env'],
      'DB_URL=postgres://{{ user }}:{{ password }}@db/app\n',
    );
    const injected = await smk(['inject', '-f', '-'], converted.stdout);
    assert.equal(injected.code, 0, injected.stderr);
    const [injectedPod] = parseAllDocuments(injected.stdout).map((document) => document.toJS()) as {
      spec: { initContainers: { name: string; env: { name: string; value?: string }[] }[] };
    }[];
    const env = Object.fromEntries(
      (injectedPod?.spec.initContainers[0]?.env ?? []).map((variable) => [variable.name, variable.value]),
    );
    assert.deepEqual(JSON.parse(env.SMK_TEMPLATES ?? '{}'), {
      'db.env': 'DB_URL=postgres://{{ user }}:{{ password }}@db/app\n',
    });
  });

  test('input without anything to convert is refused by flag', async () => {
    const result = await smk(
      ['convert', '-f', '-'],
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n',
    );
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /no ExternalSecret or Vault-injected workload in the input/);
  });
});
