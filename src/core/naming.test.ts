import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError } from './errors.ts';
import { assertSafeRelativeName, nameConflicts, objectFileName, translatePath } from './naming.ts';
import type { ObjectSpec } from './spec-types.ts';

const object = (objectName: string, objectAlias?: string): ObjectSpec => ({
  index: 0,
  objectName,
  objectType: 'secretsmanager',
  jmesPath: [],
  ...(objectAlias === undefined ? {} : { objectAlias }),
});

describe('objectFileName (as ASCP names files)', () => {
  const cases: [ObjectSpec, string | false, string][] = [
    [object('db'), '_', 'db'],
    [object('prod/app/db'), '_', 'prod_app_db'],
    [object('prod/app/db'), '-', 'prod-app-db'],
    [object('prod/app/db'), false, 'prod/app/db'],
    [object('/prod/app/db'), false, 'prod/app/db'],
    [object('/prod/app/db'), '_', '_prod_app_db'],
    [object('prod/db', 'alias/with/slash'), '_', 'alias_with_slash'],
    [object('prod/db', 'alias/with/slash'), false, 'alias/with/slash'],
    [
      object('arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf'),
      '_',
      'arn:aws:secretsmanager:us-east-1:1:secret:prod_db-AbCdEf',
    ],
  ];
  for (const [spec, translation, expected] of cases) {
    test(`${spec.objectAlias ?? spec.objectName} with ${JSON.stringify(translation)}`, () => {
      assert.equal(objectFileName(spec, translation), expected);
    });
  }

  test('translatePath leaves names without slashes alone', () => {
    assert.equal(translatePath('a.b-c', '_'), 'a.b-c');
  });
});

describe('assertSafeRelativeName', () => {
  const refused: [string, string][] = [
    ['', 'is empty'],
    ['/etc/passwd', 'is an absolute path'],
    ['..', 'contains a ".." segment'],
    ['a/../../b', 'contains a ".." segment'],
    ['a/..', 'contains a ".." segment'],
    ['.', 'contains a "." segment'],
    ['a/./b', 'contains a "." segment'],
    ['a/', 'contains an empty path segment'],
    ['a\0b', 'contains a NUL character'],
    ['..data', 'starts with "..", which is reserved for the atomic writer'],
    ['..2025_01_01/x', 'starts with "..", which is reserved for the atomic writer'],
    [`${'é'.repeat(128)}`, 'has a path segment longer than 255 bytes'],
  ];
  for (const [name, reason] of refused) {
    test(`refuses ${JSON.stringify(name)}`, () => {
      assert.throws(
        () => assertSafeRelativeName(name, 'objects[0] (db)', 'objectAlias'),
        (error: unknown) =>
          error instanceof InvalidInputError &&
          error.field === 'objectAlias' &&
          error.message ===
            `objects[0] (db): objectAlias gives file name ${JSON.stringify(name)}, which ${reason}; expected a relative name inside the target directory`,
      );
    });
  }

  for (const name of ['db', '.env', 'a..b', 'dir/file', 'a/.hidden', 'x'.repeat(255)]) {
    test(`accepts ${JSON.stringify(name.slice(0, 20))}`, () => {
      assert.doesNotThrow(() => assertSafeRelativeName(name, 'objects[0] (db)', 'objectAlias'));
    });
  }
});

describe('nameConflicts', () => {
  test('reports duplicates and file/directory clashes with both origins', () => {
    const problems = nameConflicts([
      { name: 'a', origin: 'objects[0] (a)', field: 'objectName' },
      { name: 'a/b', origin: 'objects[1] (x)', field: 'objectAlias' },
      { name: 'c', origin: 'objects[2] (c)', field: 'objectName' },
      { name: 'c', origin: 'objects[3] (y)', field: 'jmesPath[0].objectAlias' },
    ]);
    assert.deepEqual(
      problems.map((problem) => problem.field),
      ['jmesPath[0].objectAlias', 'objectAlias'],
    );
    assert.match(problems[0]?.message ?? '', /already used by objects\[2\] \(c\) objectName/);
    assert.match(problems[1]?.message ?? '', /needs "a" as a directory, but objects\[0\] \(a\) objectName/);
  });

  test('siblings in one directory are fine', () => {
    assert.deepEqual(
      nameConflicts([
        { name: 'd/a', origin: 'o0', field: 'f' },
        { name: 'd/b', origin: 'o1', field: 'f' },
      ]),
      [],
    );
  });
});
