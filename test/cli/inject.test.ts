/**
 * `smk inject` as `linkerd inject` and `kubectl apply -f` users expect it: directories (recursively,
 * .yaml/.yml/.json in path order), several -f, and -f - for stdin; the injected manifests on
 * stdout and what happened to each object on stderr (`deployment/api injected`); errors name the
 * file and nothing reaches stdout unless every file succeeded.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { type CommandResult, runCommand } from '../harness/run.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const examples = new URL('../../examples/', import.meta.url).pathname;
const fixtures = new URL('../../src/webhook/fixtures/', import.meta.url).pathname;

function smk(args: readonly string[], input?: string): Promise<CommandResult> {
  return runCommand(process.execPath, [cli, 'inject', ...args], input === undefined ? {} : { input });
}

interface Manifest {
  kind: string;
  metadata: { name: string };
  spec?: { template?: { spec?: { initContainers?: { name: string }[] } } };
}

function manifests(stdout: string): Manifest[] {
  return parseAllDocuments(stdout).map((document) => document.toJS() as Manifest);
}

function initContainers(manifest: Manifest | undefined): string[] {
  return manifest?.spec?.template?.spec?.initContainers?.map((container) => container.name) ?? [];
}

describe('smk inject', () => {
  let work: string;
  let tree: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'smk-inject-cli-'));
    // A directory as people keep them: nested, mixed extensions, and files that are not manifests.
    tree = join(work, 'app');
    await mkdir(join(tree, 'base', 'seed'), { recursive: true });
    await cp(join(examples, 'injection-smk', 'deployment.yaml'), join(tree, 'base', 'api.yaml'));
    await cp(join(examples, 'injection-smk', 'serviceaccount.yaml'), join(tree, 'base', 'sa.yml'));
    await cp(
      join(examples, 'injection-sidecar-injector', 'deployment.yaml'),
      join(tree, 'base', 'seed', 'web.yaml'),
    );
    await writeFile(
      join(tree, 'config.json'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'settings' },
        data: { a: 'b' },
      }),
    );
    await writeFile(join(tree, 'README.md'), '# not a manifest\n');
    await mkdir(join(tree, 'dir.yaml'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('a directory, recursively, in path order; each object reported on stderr', async () => {
    const result = await smk(['-f', tree]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stderr,
      [
        'deployment/api injected',
        'serviceaccount/api unchanged',
        'deployment/webserver injected',
        'configmap/settings unchanged',
        '',
      ].join('\n'),
    );
    const out = manifests(result.stdout);
    assert.deepEqual(
      out.map((manifest) => `${manifest.kind}/${manifest.metadata.name}`),
      ['Deployment/api', 'ServiceAccount/api', 'Deployment/webserver', 'ConfigMap/settings'],
    );
    assert.deepEqual(initContainers(out[0]), ['smk-agent-init', 'smk-agent-refresh']);
    assert.deepEqual(initContainers(out[2]), ['smk-agent-init']);
  });

  test('several -f and stdin together, in the order given; --quiet keeps stderr empty', async () => {
    const seed = await readFile(join(examples, 'injection-sidecar-injector', 'deployment.yaml'), 'utf8');
    const result = await smk(
      [
        '-f',
        join(examples, 'injection-smk', 'deployment.yaml'),
        '-f',
        '-',
        '--filename',
        join(tree, 'config.json'),
      ],
      seed,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stderr,
      'deployment/api injected\ndeployment/webserver injected\nconfigmap/settings unchanged\n',
    );
    assert.deepEqual(
      manifests(result.stdout).map((manifest) => manifest.metadata.name),
      ['api', 'webserver', 'settings'],
    );
    const quiet = await smk(['-f', '-', '--quiet'], seed);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, '');
    assert.deepEqual(initContainers(manifests(quiet.stdout)[0]), ['smk-agent-init']);
    const twice = await smk(['-f', '-', '-f', '-'], seed);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /-f - \(stdin\) may be given once/);
  });

  test('an error names its file and document, every file is checked, and nothing reaches stdout', async () => {
    const bad = join(work, 'bad');
    await mkdir(bad);
    await cp(join(fixtures, 'deny-no-objects.in.yaml'), join(bad, 'a-denied.yaml'));
    await cp(join(examples, 'injection-smk', 'deployment.yaml'), join(bad, 'b-good.yaml'));
    await cp(join(fixtures, 'deny-region.in.yaml'), join(bad, 'c-denied.yaml'));
    const result = await smk(['-f', bad]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, result.stderr);
    assert.match(
      lines[0] ?? '',
      new RegExp(`^smk inject: ${join(bad, 'a-denied.yaml')}: document 0 \\(Pod `),
    );
    assert.match(lines[1] ?? '', new RegExp(`^smk inject: ${join(bad, 'c-denied.yaml')}: document 0 `));
  });
});
