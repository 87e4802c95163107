/**
 * Table-driven: every `fixtures/NAME.in.yaml` is injected and compared with `NAME.out.yaml`
 * (the exact YAML `smk inject` prints) or `NAME.error.txt` (the exact errors). The seed 002
 * Deployment is there as printed in the article.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { injectManifests } from './manifests.ts';
import { defaultInjectorConfig, type InjectorConfig } from './mutate.ts';

const fixtures = new URL('./fixtures/', import.meta.url);
const config: InjectorConfig = { ...defaultInjectorConfig, agentImage: 'registry.example/smk:test' };
const read = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8');
const cases = readdirSync(fixtures)
  .filter((name) => name.endsWith('.in.yaml'))
  .map((name) => name.slice(0, -'.in.yaml'.length))
  .sort();

describe('smk inject fixtures', () => {
  test('the fixture set has the seed Deployment, passing and denied cases', () => {
    assert.ok(cases.includes('seed-002-deployment'));
    assert.ok(cases.filter((name) => name.startsWith('deny-')).length >= 10);
    assert.ok(cases.filter((name) => !name.startsWith('deny-')).length >= 5);
  });

  for (const name of cases) {
    const expectedYaml = existsSync(new URL(`${name}.out.yaml`, fixtures));
    const expectedError = existsSync(new URL(`${name}.error.txt`, fixtures));
    test(name, () => {
      assert.ok(expectedYaml !== expectedError, `${name}: needs exactly one of .out.yaml or .error.txt`);
      const result = injectManifests(read(`${name}.in.yaml`), config);
      if (expectedError) {
        assert.equal(result.ok, false, `${name} should be refused`);
        if (!result.ok) assert.equal(`${result.errors.join('\n')}\n`, read(`${name}.error.txt`));
        return;
      }
      assert.ok(result.ok, result.ok ? '' : result.errors.join('\n'));
      assert.equal(result.yaml, read(`${name}.out.yaml`));
      // Idempotent: injecting the output again changes nothing.
      const again = injectManifests(result.yaml, config);
      assert.ok(again.ok);
      assert.equal(again.changed, 0);
      const documents = (text: string): unknown[] => parseAllDocuments(text).map((doc) => doc.toJS());
      assert.deepEqual(documents(again.yaml), documents(result.yaml));
    });
  }
});

describe('injectManifests', () => {
  test('an empty stream gives empty output', () => {
    assert.deepEqual(injectManifests('', config), { ok: true, yaml: '', changed: 0, objects: [] });
  });

  test('invalid YAML names the document and line', () => {
    const result = injectManifests('kind: Pod\n---\nkind: [\n', config);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.errors[0] ?? '', /^document 1 is not valid YAML \(line \d+\)$/);
  });

  test('a workload without its pod template is named', () => {
    const result = injectManifests(
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n',
      config,
    );
    assert.deepEqual(result, {
      ok: false,
      errors: ['document 0 (Deployment web): spec.template is missing; expected a pod template'],
    });
  });

  test('every failing document is reported, and nothing is printed', () => {
    const bad = read('deny-no-objects.in.yaml');
    const result = injectManifests(`${bad}---\n${read('pod-plain.in.yaml')}---\n${bad}`, config);
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.deepEqual(
        result.errors.map((error) => error.split(':')[0]),
        ['document 0 (Pod deny-no-objects)', 'document 2 (Pod deny-no-objects)'],
      );
    }
  });

  test('counts the documents it changed and says which (what smk inject reports)', () => {
    const result = injectManifests(read('workloads.in.yaml'), config);
    assert.ok(result.ok);
    if (!result.ok) return;
    assert.equal(result.changed, 3);
    assert.deepEqual(
      result.objects.map(({ kind, name, changed }) => `${kind} ${name} ${changed}`),
      [
        'ConfigMap settings false',
        'StatefulSet db true',
        'CronJob report true',
        'Job plain-job false',
        'List  true',
      ],
    );
  });
});
