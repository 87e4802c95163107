/**
 * `smk agent init` and `smk agent refresh` as the injected containers run them: separate
 * processes configured only by the env the injector sets, the real AWS SDK against moto (through
 * a counting/fault proxy), files on disk.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { type AwsProxy, startAwsProxy } from '../harness/aws-proxy.ts';
import { connectMoto } from '../harness/moto.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Agent {
  readonly child: ChildProcessWithoutNullStreams;
  stderr(): string;
  exit(): Promise<number>;
}

function startAgent(mode: 'init' | 'refresh', env: Readonly<Record<string, string>>): Agent {
  const child = spawn(process.execPath, [cli, 'agent', mode], {
    env: { ...process.env, SMK_LOG_LEVEL: 'debug', ...env },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout.resume();
  const exited = once(child, 'exit').then(([code]) => (typeof code === 'number' ? code : 1));
  return { child, stderr: () => stderr, exit: () => exited };
}

async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
}

/** Rotation as a rotation Lambda does it (moto.md #2): a pending version, then the stage move. */
async function rotate(client: SecretsManagerClient, id: string, value: string): Promise<void> {
  const described = await client.send(new DescribeSecretCommand({ SecretId: id }));
  const current = Object.entries(described.VersionIdsToStages ?? {}).find(([, stages]) =>
    stages.includes('AWSCURRENT'),
  )?.[0];
  const pending = randomUUID();
  await client.send(
    new PutSecretValueCommand({
      SecretId: id,
      SecretString: value,
      ClientRequestToken: pending,
      VersionStages: ['AWSPENDING'],
    }),
  );
  await client.send(
    new UpdateSecretVersionStageCommand({
      SecretId: id,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: pending,
      ...(current === undefined ? {} : { RemoveFromVersionId: current }),
    }),
  );
}

describe('smk agent', () => {
  const moto = connectMoto();
  const client = new SecretsManagerClient({ endpoint: moto.endpoint });
  const prefix = `agent-${randomUUID().slice(0, 8)}`;
  const password = (n: number): string => `pw-${n}-${randomUUID()}`;
  const dbValue = (n: number): string => JSON.stringify({ username: 'app', password: password(n) });
  let proxy: AwsProxy;
  let work: string;
  const objects = JSON.stringify([
    {
      objectName: `${prefix}/db`,
      objectType: 'secretsmanager',
      objectAlias: 'db.json',
      jmesPath: [{ path: 'username', objectAlias: 'db-user' }],
    },
    { objectName: `${prefix}/api-key`, objectType: 'secretsmanager', filePermission: '0600' },
  ]);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'smk-agent-it-'));
    proxy = await startAwsProxy({ target: moto.endpoint });
    await client.send(new CreateSecretCommand({ Name: `${prefix}/db`, SecretString: dbValue(1) }));
    await client.send(new CreateSecretCommand({ Name: `${prefix}/api-key`, SecretString: 'key-1' }));
  });

  after(async () => {
    client.destroy();
    await proxy.stop();
    await rm(work, { recursive: true, force: true });
  });

  const envFor = (dir: string, extra: Record<string, string> = {}): Record<string, string> => ({
    SMK_OBJECTS: objects,
    SMK_DIR: dir,
    SMK_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: proxy.endpoint,
    ...extra,
  });

  test('init writes every file and exits 0', async () => {
    const dir = join(work, 'init');
    const agent = startAgent('init', envFor(dir));
    assert.equal(await agent.exit(), 0, agent.stderr());
    assert.equal(await readFile(join(dir, 'db-user'), 'utf8'), 'app');
    assert.match(await readFile(join(dir, 'db.json'), 'utf8'), /"password":"pw-1-/);
    assert.equal(await readFile(join(dir, `${prefix}_api-key`), 'utf8'), 'key-1');
    // Logs name files and versions, never a value.
    assert.match(agent.stderr(), /secrets written/);
    assert.doesNotMatch(agent.stderr(), /pw-1-|key-1/);
  });

  test('init with SMK_TEMPLATES (smk.dev/template-<file>) and extractKeys: the keys and the rendered file', async () => {
    const dir = join(work, 'templates');
    const agent = startAgent(
      'init',
      envFor(dir, {
        SMK_OBJECTS: JSON.stringify([
          { objectName: `${prefix}/db`, objectType: 'secretsmanager', extractKeys: true },
        ]),
        SMK_TEMPLATES: JSON.stringify({ 'db.properties': 'user={{ username }}\npassword={{ password }}\n' }),
      }),
    );
    assert.equal(await agent.exit(), 0, agent.stderr());
    assert.equal(await readFile(join(dir, 'username'), 'utf8'), 'app');
    assert.match(
      await readFile(join(dir, 'db.properties'), 'utf8'),
      /^user=app\npassword=pw-\d+-[-0-9a-f]+\n$/,
    );
    assert.doesNotMatch(agent.stderr(), /pw-\d/);

    const bad = startAgent(
      'init',
      envFor(join(work, 'templates-bad'), {
        SMK_OBJECTS: JSON.stringify([
          { objectName: `${prefix}/db`, objectType: 'secretsmanager', extractKeys: true },
        ]),
        SMK_TEMPLATES: JSON.stringify({ x: '{{ pass }}' }),
      }),
    );
    assert.notEqual(await bad.exit(), 0);
    assert.match(
      bad.stderr(),
      /template x: \{\{ pass \}\} at line 1, column 4 names no file the objects produce/,
    );
    assert.doesNotMatch(bad.stderr(), /pw-\d/);
  });

  test('init fails closed: a missing secret exits non-zero, names the object and writes nothing', async () => {
    const dir = join(work, 'missing');
    const agent = startAgent(
      'init',
      envFor(dir, {
        SMK_OBJECTS: JSON.stringify([
          { objectName: `${prefix}/api-key`, objectType: 'secretsmanager' },
          { objectName: `${prefix}/nope`, objectType: 'secretsmanager' },
        ]),
      }),
    );
    assert.equal(await agent.exit(), 1);
    assert.match(agent.stderr(), new RegExp(`objects\\[1\\] \\(${prefix}/nope\\)`));
    assert.doesNotMatch(agent.stderr(), /key-1/);
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  });

  test('init runs a JMESPath expression only when the injector allowed them (SMK_JMESPATH_EXPRESSIONS)', async () => {
    const withExpression = JSON.stringify([
      {
        objectName: `${prefix}/db`,
        objectType: 'secretsmanager',
        jmesPath: [{ path: "join('@', [username, 'db'])", objectAlias: 'login' }],
      },
    ]);
    const refusedDir = join(work, 'expression-refused');
    const refused = startAgent('init', envFor(refusedDir, { SMK_OBJECTS: withExpression }));
    assert.equal(await refused.exit(), 1);
    assert.match(refused.stderr(), /jmesPath\[0\]\.path is not a plain field path/);
    await assert.rejects(readdir(refusedDir), { code: 'ENOENT' });

    const dir = join(work, 'expression-allowed');
    const allowed = startAgent(
      'init',
      envFor(dir, { SMK_OBJECTS: withExpression, SMK_JMESPATH_EXPRESSIONS: 'allowed' }),
    );
    assert.equal(await allowed.exit(), 0, allowed.stderr());
    assert.equal(await readFile(join(dir, 'login'), 'utf8'), 'app@db');
  });

  test('init without its env contract exits non-zero with the variable named', async () => {
    const agent = startAgent('init', { SMK_OBJECTS: objects, SMK_DIR: 'relative/dir' });
    assert.equal(await agent.exit(), 1);
    assert.match(agent.stderr(), /SMK_DIR must be an absolute directory path/);
  });

  test('refresh: version checks only, a swap after rotation, last good files through an outage', async () => {
    const dir = join(work, 'refresh');
    const init = startAgent('init', envFor(dir));
    assert.equal(await init.exit(), 0, init.stderr());
    const file = (name: string): Promise<string> => readFile(join(dir, name), 'utf8');
    const before = await file('db.json');

    proxy.resetCounts();
    const agent = startAgent('refresh', envFor(dir, { SMK_REFRESH_INTERVAL: '1' }));
    try {
      // Baseline, then a few quiet cycles: DescribeSecret each time, values read once.
      await eventually(
        'three version checks per secret',
        async () => proxy.count({ api: 'DescribeSecret' }) >= 6,
      );
      const reads = (): number =>
        proxy.count({ api: 'GetSecretValue' }) + proxy.count({ api: 'BatchGetSecretValue' });
      const baselineReads = reads();
      assert.ok(baselineReads >= 1 && baselineReads <= 2, `baseline reads: ${baselineReads}`);
      assert.equal(await file('db.json'), before);

      // A pending version does not move AWSCURRENT: nothing is read.
      await client.send(
        new PutSecretValueCommand({
          SecretId: `${prefix}/db`,
          SecretString: dbValue(99),
          ClientRequestToken: randomUUID(),
          VersionStages: ['AWSPENDING'],
        }),
      );
      const describes = proxy.count({ api: 'DescribeSecret' });
      await eventually(
        'two more version checks',
        async () => proxy.count({ api: 'DescribeSecret' }) >= describes + 4,
      );
      assert.equal(reads(), baselineReads);

      await rotate(client, `${prefix}/db`, dbValue(2));
      await eventually('the rotated value on disk', async () => (await file('db.json')).includes('pw-2-'));
      assert.equal(await file('db-user'), 'app');
      assert.ok(reads() - baselineReads <= 2, `reads after rotation: ${reads() - baselineReads}`);

      // AWS unreachable: the files stay, the sidecar keeps running and retrying.
      proxy.addFault({ fault: { kind: 'outage' } });
      const refusedBefore = proxy.refusedConnections();
      await rotate(client, `${prefix}/db`, dbValue(3));
      await eventually(
        'a failed cycle during the outage',
        async () => /keeping the last good files, retrying with backoff/.test(agent.stderr()),
        60_000,
      );
      assert.ok(proxy.refusedConnections() > refusedBefore);
      assert.ok((await file('db.json')).includes('pw-2-'));
      assert.equal(agent.child.exitCode, null);

      // AWS back: the rotation made during the outage lands.
      proxy.clearFaults();
      await eventually('the value rotated during the outage', async () =>
        (await file('db.json')).includes('pw-3-'),
      );
      assert.doesNotMatch(agent.stderr(), /pw-\d-/);
    } finally {
      agent.child.kill('SIGTERM');
    }
    assert.equal(await agent.exit(), 0, agent.stderr());
  });
});
