/**
 * `smk fetch` as a user runs it: a separate process, the real AWS SDK against moto, files on disk.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { connectMoto } from '../harness/moto.ts';
import { type CommandResult, runCommand } from '../harness/run.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function smk(
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return runCommand(process.execPath, [cli, ...args], {
    env: { ...process.env, ...options.env },
    ...(options.input === undefined ? {} : { input: options.input }),
  });
}

describe('smk fetch', () => {
  const moto = connectMoto();
  const client = new SecretsManagerClient({ endpoint: moto.endpoint });
  const prefix = `fetch-${randomUUID().slice(0, 8)}`;
  const dbValue = JSON.stringify({ user: { username: 'john.doe', password: `pw-${randomUUID()}` } });
  const apiKey = `key-${randomUUID()}`;
  let dbArn = '';
  let work = '';

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'smk-fetch-'));
    const db = await client.send(new CreateSecretCommand({ Name: `${prefix}/db`, SecretString: dbValue }));
    dbArn = db.ARN ?? '';
    await client.send(new CreateSecretCommand({ Name: `${prefix}-api`, SecretString: apiKey }));
  });
  after(async () => {
    client.destroy();
    await rm(work, { recursive: true, force: true });
  });

  test('writes the whole value and jmesPath keys, with modes, and prints no value', async () => {
    const spec = join(work, 'objects.yaml');
    await writeFile(
      spec,
      [
        `- objectName: "${dbArn}"`,
        '  jmesPath:',
        '    - path: user.username',
        '      objectAlias: dbusername',
        '    - path: user.password',
        '      objectAlias: dbpassword',
        '      filePermission: "0600"',
        `- objectName: "${prefix}-api"`,
        '  objectType: secretsmanager',
        '  objectAlias: foobar',
      ].join('\n'),
    );
    const dir = join(work, 'out');
    const result = await smk(['fetch', '--objects', spec, '--dir', dir]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await readFile(join(dir, 'dbusername'), 'utf8'), 'john.doe');
    assert.equal(await readFile(join(dir, 'foobar'), 'utf8'), apiKey);
    // The whole-value file is named after the ARN, with '/' translated to '_' (ASCP's default).
    assert.equal(await readFile(join(dir, dbArn.replaceAll('/', '_')), 'utf8'), dbValue);
    assert.equal((await stat(join(dir, 'dbpassword'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'foobar'))).mode & 0o777, 0o600, 'owner-only unless asked otherwise');
    assert.ok((await lstat(join(dir, 'foobar'))).isSymbolicLink(), 'visible names point into ..data');
    assert.ok(!result.stderr.includes(apiKey) && !result.stderr.includes('pw-'), 'no value in the output');
    assert.match(result.stderr, /4 file\(s\)/);

    const again = await smk(['fetch', '--objects', spec, '--dir', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /unchanged/);
  });

  test('--file-mode sets the mode of files whose object names none; a bad one is refused by name', async () => {
    const spec = JSON.stringify([
      { objectName: `${prefix}-api`, objectType: 'secretsmanager', objectAlias: 'shared' },
      {
        objectName: `${prefix}-api`,
        objectType: 'secretsmanager',
        objectAlias: 'own',
        filePermission: '0400',
      },
    ]);
    const dir = join(work, 'modes');
    const result = await smk(['fetch', '--objects', '-', '--dir', dir, '--file-mode', '0644'], {
      input: spec,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await stat(join(dir, 'shared'))).mode & 0o777, 0o644);
    assert.equal((await stat(join(dir, 'own'))).mode & 0o777, 0o400, "the object's own mode wins");
    const bad = await smk(['fetch', '--objects', '-', '--dir', dir, '--file-mode', 'rw-r--r--'], {
      input: spec,
    });
    assert.equal(bad.code, 2, 'a bad flag value is a usage error');
    assert.match(bad.stderr, /--file-mode must be octal permission bits like 0600 or 0640, got "rw-r--r--"/);
  });

  test('a ..data link planted to point out of --dir: refused by name, exit 1, nothing outside touched', async () => {
    // Issue 14 finding 9 as found: `out/..data -> ../home`, then `smk fetch --dir out` returned 0
    // and deleted home/ (the old version's cleanup followed the link).
    const base = await mkdtemp(join(work, 'planted-'));
    const home = join(base, 'home');
    await mkdir(join(home, 'user'), { recursive: true });
    await writeFile(join(home, 'user', 'notes.txt'), 'not yours to delete');
    const out = join(base, 'out');
    await mkdir(out);
    await symlink('../home', join(out, '..data'));
    const spec = JSON.stringify([{ objectName: `${prefix}-api`, objectType: 'secretsmanager' }]);
    const result = await smk(['fetch', '--objects', '-', '--dir', out], { input: spec });
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`${out}/..data points to "../home", not to a version directory smk makes; refusing`),
    );
    assert.equal(await readFile(join(home, 'user', 'notes.txt'), 'utf8'), 'not yours to delete');
    assert.deepEqual(await readdir(out), ['..data'], 'no secret written next to the planted link');
    assert.equal(
      await readlink(join(out, '..data')),
      '../home',
      'the planted link itself left for its owner',
    );
    assert.ok(!result.stderr.includes(apiKey));
  });

  test('reads the spec from stdin and from SMK_OBJECTS', async () => {
    const json = JSON.stringify([{ objectName: `${prefix}-api`, objectType: 'secretsmanager' }]);
    const fromStdin = join(work, 'stdin');
    const viaStdin = await smk(['fetch', '--objects', '-', '--dir', fromStdin], { input: json });
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    assert.equal(await readFile(join(fromStdin, `${prefix}-api`), 'utf8'), apiKey);

    const fromEnv = join(work, 'env');
    const viaEnv = await smk(['fetch', '--dir', fromEnv, '--quiet'], { env: { SMK_OBJECTS: json } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.equal(viaEnv.stderr, '');
    assert.equal(await readFile(join(fromEnv, `${prefix}-api`), 'utf8'), apiKey);
  });

  test('a missing secret fails the whole fetch, names the object, and writes nothing', async () => {
    const dir = join(work, 'missing');
    const spec = JSON.stringify([
      { objectName: `${prefix}-api`, objectType: 'secretsmanager' },
      { objectName: `${prefix}-nope`, objectType: 'secretsmanager' },
    ]);
    const result = await smk(['fetch', '--objects', '-', '--dir', dir], { input: spec });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`objects\\[1\\] \\(${prefix}-nope\\)`));
    assert.match(result.stderr, /not found/i);
    assert.ok(!result.stderr.includes(apiKey));
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  });

  test('extractKeys and --template: one file per key and the rendered file, the same as a SecretSync gives', async () => {
    const spec = join(work, 'keys.yaml');
    await writeFile(spec, [`- objectName: "${dbArn}"`, '  extractKeys: true', '  keyPrefix: db_'].join('\n'));
    const template = join(work, 'config.tmpl');
    await writeFile(template, '{"user": {{ db_user | json }}}');
    const dir = join(work, 'keys');
    const result = await smk([
      'fetch',
      '--objects',
      spec,
      '--dir',
      dir,
      '--template',
      `config.json=${template}`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual((await readdir(dir)).filter((name) => !name.startsWith('..')).sort(), [
      'config.json',
      'db_user',
    ]);
    const user = (JSON.parse(dbValue) as { user: unknown }).user;
    assert.equal(await readFile(join(dir, 'db_user'), 'utf8'), JSON.stringify(user));
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')), {
      user: JSON.stringify(user),
    });
    assert.ok(!result.stderr.includes('pw-'), 'no value printed');

    const missing = await smk([
      'fetch',
      '--objects',
      spec,
      '--dir',
      join(work, 'none'),
      '--template',
      `x=${template.replace('config', 'missing')}`,
    ]);
    assert.notEqual(missing.code, 0);
    await writeFile(join(work, 'bad.tmpl'), '{{ db_password }}');
    const bad = await smk([
      'fetch',
      '--objects',
      spec,
      '--dir',
      join(work, 'none'),
      '--template',
      `x=${join(work, 'bad.tmpl')}`,
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(
      bad.stderr,
      /--template x: \{\{ db_password \}\} at line 1, column 4 names no file the objects produce; they produce "db_user"/,
    );
    assert.ok(!bad.stderr.includes('pw-'), 'no value printed');
  });

  test('discover: every secret under a prefix and every parameter under a path, named by rule', async () => {
    const ssm = new SSMClient({ endpoint: moto.endpoint });
    const path = `/${prefix}/params`;
    const parameterValues = [`pv-${randomUUID()}`, `pv-${randomUUID()}`, `pv-${randomUUID()}`];
    await ssm.send(
      new PutParameterCommand({ Name: `${path}/one`, Value: parameterValues[0], Type: 'String' }),
    );
    await ssm.send(
      new PutParameterCommand({ Name: `${path}/deep/two`, Value: parameterValues[1], Type: 'SecureString' }),
    );
    await ssm.send(
      new PutParameterCommand({ Name: `${path}x/no`, Value: parameterValues[2], Type: 'String' }),
    );
    ssm.destroy();
    const spec = join(work, 'discover.yaml');
    await writeFile(
      spec,
      [
        '- objectType: secretsmanager',
        `  discover: {namePrefix: "${prefix}/", stripPrefix: true}`,
        '- objectType: ssmparameter',
        `  discover: {path: "${path}", recursive: true}`,
      ].join('\n'),
    );
    const dir = join(work, 'discovered');
    const result = await smk(['fetch', '--objects', spec, '--dir', dir]);
    assert.equal(result.code, 0, result.stderr);
    const flat = (name: string): string => name.replaceAll('/', '_');
    assert.deepEqual((await readdir(dir)).filter((name) => !name.startsWith('..')).sort(), [
      flat(`${path}/deep/two`),
      flat(`${path}/one`),
      'db',
    ]);
    assert.equal(await readFile(join(dir, 'db'), 'utf8'), dbValue);
    assert.equal(await readFile(join(dir, flat(`${path}/deep/two`)), 'utf8'), parameterValues[1]);
    assert.ok(!parameterValues.some((value) => result.stderr.includes(value)), 'no value printed');

    const tooMany = join(work, 'discover-limit.yaml');
    await writeFile(
      tooMany,
      `- {objectType: ssmparameter, discover: {path: "${path}", recursive: true, limit: 1}}`,
    );
    const refused = await smk(['fetch', '--objects', tooMany, '--dir', join(work, 'limited')]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /discover matched more than 1 objects \(the bound is discover.limit, at most 100\)/,
    );
  });

  test('bad input is refused with the field named', async () => {
    const badMode = JSON.stringify([
      { objectName: 'x', objectType: 'secretsmanager', filePermission: '644' },
    ]);
    const result = await smk(['fetch', '--objects', '-', '--dir', join(work, 'bad')], { input: badMode });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /objects\[0\] \(x\).*filePermission/);

    const noDir = await smk(['fetch', '--objects', '-'], { input: badMode });
    assert.equal(noDir.code, 2, 'a missing flag is a usage error');
    assert.match(noDir.stderr, /--dir is required/);

    const unknown = await smk(['fetch', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /bogus/);
  });
});

test('smk --help lists the commands and smk version prints one', async () => {
  const help = await smk(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /fetch/);
  const version = await smk(['version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^smk \d+\.\d+\.\d+/);
});
