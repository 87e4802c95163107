/**
 * Fuzz: objects specs (the SecretProviderClass `parameters`, smk.dev/objects, SecretSync
 * objects) through the core's parser and payload pipeline. Either a spec whose every file stays
 * inside the target directory, or one clear InvalidInputError naming the subject — never another
 * exception, never a secret value in a message.
 */
import assert from 'node:assert/strict';
import { resolve, sep } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidInputError, isSmkError } from '../../src/core/errors.ts';
import { jmesPathFileName, objectFileName } from '../../src/core/naming.ts';
import { resolvePayloads } from '../../src/core/payloads.ts';
import type { ReadResult, SecretReader, SecretRequest } from '../../src/core/source.ts';
import { parseMountSpec } from '../../src/core/spec.ts';
import type { MountSpec } from '../../src/core/spec-types.ts';
import { leafStrings, mountParamsArb, objectArb, secretJsonArb, validObjectArb } from './arbitraries.ts';
import { checkProperty } from './settings.ts';

const subject = 'SecretProviderClass fuzz/spc';
const targetDir = resolve('/var/run/secrets/fuzz-target');

function assertInside(name: string): void {
  const full = resolve(targetDir, name);
  assert.ok(
    full.startsWith(targetDir + sep),
    `${JSON.stringify(name)} resolves to ${full}, outside ${targetDir}`,
  );
}

/** Parses, and holds the contract: a spec, or an InvalidInputError about this subject. */
function parseOrRefuse(params: Parameters<typeof parseMountSpec>[0]): MountSpec | undefined {
  try {
    return parseMountSpec(params, subject);
  } catch (error) {
    assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
    assert.ok(
      error.message.startsWith(`${subject}: `),
      `message does not name the subject: ${error.message}`,
    );
    assert.ok(error.message.length < 8_000, 'message is unbounded');
    return undefined;
  }
}

test('fuzz: any objects spec parses to a safe spec or one clear InvalidInputError', async (t) => {
  let accepted = 0;
  // Parsing must not print: process warnings (the yaml package emits some) bypass smk's logger.
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning.name);
  };
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  await checkProperty(
    t,
    2_000,
    fc.property(mountParamsArb, (params) => {
      const spec = parseOrRefuse(params);
      if (spec === undefined) return;
      accepted += 1;
      const names = spec.objects.flatMap((object) => [
        objectFileName(object, spec.pathTranslation),
        ...object.jmesPath.map((entry) => jmesPathFileName(entry, spec.pathTranslation)),
      ]);
      for (const name of names) assertInside(name);
      assert.equal(new Set(names).size, names.length, `duplicate file names ${JSON.stringify(names)}`);
    }),
  );
  t.diagnostic(`fuzz: ${accepted} of the specs were accepted`);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(warnings, [], 'parsing emitted process warnings');
  // A generator that only produces refusals would prove little about accepted specs.
  assert.ok(accepted > 0, 'no generated spec was accepted; the generator is too wild');
});

/** A reader that answers every request with the same JSON value (or a read error). */
function fakeReader(valueText: string): SecretReader {
  const bytes = new TextEncoder().encode(valueText);
  return {
    async read(requests: readonly SecretRequest[]): Promise<ReadResult[]> {
      return requests.map((request) => ({
        ok: true,
        value: {
          request,
          arn: `arn:aws:secretsmanager:${request.region}:123456789012:secret:${request.id}`,
          name: request.id,
          versionId: 'v1',
          bytes,
          binary: false,
        },
      }));
    },
    async describe() {
      throw new Error('not used');
    },
  };
}

test('fuzz: the payload pipeline on random specs and values keeps files inside and values out of errors', async (t) => {
  let produced = 0;
  // Mostly valid specs, so most cases reach the reads and the extraction.
  const validObjects = fc.array(
    fc.oneof({ weight: 6, arbitrary: validObjectArb }, { weight: 1, arbitrary: objectArb }),
    { minLength: 1, maxLength: 4 },
  );
  await checkProperty(
    t,
    1_500,
    fc.asyncProperty(validObjects, secretJsonArb, fc.boolean(), async (objects, value, translate) => {
      const spec = parseOrRefuse({
        objects,
        region: 'us-east-1',
        pathTranslation: translate ? 'True' : 'False',
      });
      if (spec === undefined) return;
      const valueText = JSON.stringify(value);
      try {
        const payloads = await resolvePayloads(spec, fakeReader(valueText), { subject });
        produced += payloads.length;
        for (const payload of payloads) assertInside(payload.name);
      } catch (error) {
        assert.ok(isSmkError(error), `expected an SmkError, got ${String(error)}`);
        for (const leaf of [...leafStrings(value), valueText]) {
          assert.ok(!error.message.includes(leaf), `error message contains a secret value: ${error.message}`);
        }
      }
    }),
  );
  t.diagnostic(`fuzz: ${produced} payloads produced`);
});
