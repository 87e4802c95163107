import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabelParameterVersionCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { NotFoundError } from '../../src/core/errors.ts';
import type { SecretRequest } from '../../src/core/source.ts';
import {
  admin,
  expectError,
  expectValue,
  region,
  staticIdentity,
  text,
  uniquePrefix,
  wire,
} from './support.ts';

const identity = staticIdentity('AKIDSSM');
const ssm = (id: string, extra: Partial<SecretRequest> = {}): SecretRequest => ({
  objectType: 'ssmparameter',
  id,
  region,
  ...extra,
});

async function put(
  name: string,
  value: string,
  type: 'String' | 'SecureString' | 'StringList' = 'SecureString',
) {
  await admin.ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: type, Overwrite: true }));
}

test('SSM parameters: latest, version, label (as fields and in the name), all types', async (t) => {
  const { reader, proxy } = await wire(t);
  const name = `/${uniquePrefix('ssm')}/db/password`;
  await put(name, 'first');
  await put(name, 'second');
  await admin.ssm.send(
    new LabelParameterVersionCommand({ Name: name, ParameterVersion: 1, Labels: ['blue'] }),
  );
  const list = `/${uniquePrefix('ssm')}/hosts`;
  await put(list, 'a,b,c', 'StringList');

  const results = await reader(identity).read([
    ssm(name),
    ssm(name, { versionId: '1' }),
    ssm(name, { versionStage: 'blue' }),
    ssm(`${name}:2`),
    ssm(`${name}:blue`),
    ssm(list),
  ]);
  const latest = expectValue(results[0]);
  assert.equal(text(latest.bytes), 'second');
  assert.equal(latest.versionId, '2');
  assert.equal(latest.name, name);
  assert.match(latest.arn, /^arn:aws:ssm:us-east-1:[0-9]+:parameter\//);
  assert.equal(latest.binary, false);
  assert.equal(text(expectValue(results[1]).bytes), 'first');
  assert.equal(expectValue(results[2]).versionId, '1');
  assert.equal(text(expectValue(results[3]).bytes), 'second');
  assert.equal(text(expectValue(results[4]).bytes), 'first');
  assert.equal(text(expectValue(results[5]).bytes), 'a,b,c');
  // One parameter appears at most once per call (answers do not say which selector they answer).
  for (const call of proxy.calls())
    assert.equal(new Set(call.ids.map((id) => id.split(':')[0])).size, call.ids.length);
});

test('12 parameters take two GetParameters calls of at most 10 names', async (t) => {
  const { reader, proxy } = await wire(t);
  const prefix = `/${uniquePrefix('ssm12')}`;
  const names = Array.from({ length: 12 }, (_, at) => `${prefix}/p${at}`);
  await Promise.all(names.map((name) => put(name, `v-${name}`, 'String')));
  const results = await reader(identity).read(names.map((name) => ssm(name)));
  results.forEach((result, at) => {
    assert.equal(text(expectValue(result).bytes), `v-${names[at]}`);
  });
  assert.deepEqual(proxy.countsByApi(), { GetParameters: 2 });
  assert.deepEqual(
    proxy
      .calls()
      .map((call) => call.ids.length)
      .sort((a, b) => a - b),
    [2, 10],
  );
});

test('a missing parameter or version is NotFound alone', async (t) => {
  const { reader } = await wire(t);
  const name = `/${uniquePrefix('ssmmissing')}/here`;
  await put(name, 'present');
  const results = await reader(identity).read([
    ssm(name),
    ssm(`${name}-gone`),
    ssm(name, { versionId: '9' }),
  ]);
  assert.equal(text(expectValue(results[0]).bytes), 'present');
  assert.ok(expectError(results[1]).error instanceof NotFoundError);
  const version = expectError(results[2]).error;
  assert.ok(version instanceof NotFoundError);
  assert.match(
    version.message,
    /^GetParameters \/smk-test-ssmmissing-[0-9a-f]+\/here:9 in us-east-1: not found/,
  );
});

test('describe of a parameter lists versions with labels; the newest carries AWSCURRENT', async (t) => {
  const { reader } = await wire(t);
  const name = `/${uniquePrefix('ssmdescribe')}/p`;
  await put(name, 'one', 'String');
  await put(name, 'two', 'String');
  await admin.ssm.send(
    new LabelParameterVersionCommand({ Name: name, ParameterVersion: 1, Labels: ['old'] }),
  );
  const versions = await reader(identity).describe(ssm(name));
  assert.deepEqual(Object.fromEntries(versions.versionsToStages), { '1': ['old'], '2': ['AWSCURRENT'] });
  assert.equal(versions.name, name);
});

test('when a GetParameters call fails, each parameter of it carries the error with its own subject', async (t) => {
  const { reader, proxy } = await wire(t);
  const prefix = `/${uniquePrefix('ssmfail')}`;
  await put(`${prefix}/a`, 'a', 'String');
  await put(`${prefix}/b`, 'b', 'String');
  proxy.addFault({ fault: { kind: 'throttle' }, api: 'GetParameters' });
  const results = await reader(identity).read([ssm(`${prefix}/a`), ssm(`${prefix}/b`)]);
  results.forEach((result, at) => {
    const { error } = expectError(result);
    assert.equal(error.kind, 'Throttled');
    assert.equal(error.subject, `${prefix}/${['a', 'b'][at]}`);
  });
});
