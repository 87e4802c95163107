import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ObjectType, SecretRequest } from '../core/source.ts';
import { objectTypes, targetFor } from './object-types.ts';
import type { Target } from './targets.ts';

test('every object type has a row with a target builder, a reader and a describer', () => {
  const types: ObjectType[] = ['secretsmanager', 'ssmparameter'];
  assert.deepEqual(Object.keys(objectTypes).sort(), [...types].sort());
  for (const type of types) {
    const row = objectTypes[type];
    assert.equal(typeof row.target, 'function', type);
    assert.equal(typeof row.read, 'function', type);
    assert.equal(typeof row.describe, 'function', type);
  }
});

test("a request takes its own type's row: `name:3` is a version only for SSM", () => {
  const request = (objectType: ObjectType): SecretRequest => ({
    objectType,
    id: 'db:3',
    region: 'eu-west-1',
  });
  const parameter = targetFor('me', request('ssmparameter')) as Target;
  assert.equal(parameter.objectType, 'ssmparameter');
  assert.equal(parameter.id, 'db');
  assert.equal(parameter.versionId, '3');
  const secret = targetFor('me', request('secretsmanager')) as Target;
  assert.equal(secret.objectType, 'secretsmanager');
  assert.equal(secret.id, 'db:3');
  assert.equal(secret.versionStage, 'AWSCURRENT');
});

test('the shared checks come before any row: no id, no region', () => {
  for (const objectType of Object.keys(objectTypes) as ObjectType[]) {
    assert.match(String(targetFor('me', { objectType, id: '', region: 'eu-west-1' })), /id is empty/);
    assert.match(String(targetFor('me', { objectType, id: 'db', region: '' })), /no region/);
  }
});
