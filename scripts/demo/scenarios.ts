/**
 * The demo's scenarios, one per seed design, each a short story and a check that it worked.
 * A scenario returns a one-line result or throws with what went wrong.
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import type { DemoWorld } from './world.ts';

export interface Scenario {
  readonly title: string;
  readonly story: string;
  run(world: DemoWorld): Promise<string>;
}

function expectEqual(what: string, actual: string, expected: string): void {
  if (actual !== expected)
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

const fetchSeed001: Scenario = {
  title: 'smk fetch: seed 001 objects spec',
  story:
    'Seed 001 mounts two secrets through the CSI provider: MySecret split into dbusername/dbpassword by\n' +
    'JMESPath, and MySecret2 whole as "foobar". The same objects spec, given to `smk fetch`, writes the\n' +
    'same files — fetched with one BatchGetSecretValue call and swapped in atomically.',
  async run(world) {
    const suffix = randomUUID().slice(0, 6);
    const db = await world.secretsManager.send(
      new CreateSecretCommand({
        Name: `MySecret-${suffix}`,
        SecretString: JSON.stringify({ user: { username: 'john.doe', password: '123456' } }),
      }),
    );
    const whole = await world.secretsManager.send(
      new CreateSecretCommand({ Name: `MySecret2-${suffix}`, SecretString: 'the-whole-value' }),
    );
    const dir = await world.tempDir('fetch');
    const specPath = join(dir, '..', `objects-${suffix}.yaml`);
    const spec = [
      `- objectName: "${db.ARN}"`,
      '  jmesPath:',
      '    - path: user.username',
      '      objectAlias: dbusername',
      '    - path: user.password',
      '      objectAlias: dbpassword',
      `- objectName: "${whole.ARN}"`,
      '  objectAlias: foobar',
      '',
    ].join('\n');
    await writeFile(specPath, spec);
    process.stdout.write(`$ smk fetch --objects objects.yaml --dir ${dir}\n${spec}`);
    const result = await world.smk(['fetch', '--objects', specPath, '--dir', dir]);
    process.stdout.write(result.stderr);
    if (result.code !== 0) throw new Error(`smk fetch exited ${result.code}`);
    const files = (await readdir(dir)).filter((name) => !name.startsWith('..')).sort();
    for (const name of ['dbusername', 'dbpassword', 'foobar']) {
      process.stdout.write(`$ cat ${name}\n${await readFile(join(dir, name), 'utf8')}\n`);
    }
    expectEqual('dbusername', await readFile(join(dir, 'dbusername'), 'utf8'), 'john.doe');
    expectEqual('dbpassword', await readFile(join(dir, 'dbpassword'), 'utf8'), '123456');
    expectEqual('foobar', await readFile(join(dir, 'foobar'), 'utf8'), 'the-whole-value');
    return `${files.length} files written: ${files.join(', ')}`;
  },
};

export const scenarios: readonly Scenario[] = [fetchSeed001];
