/**
 * The errors a person sees from the CLI, as a separate process: a wrong command line exits 2 with a
 * message about the flag or command (every command the same way); a file, a directory, a refused
 * connection and a missing kubeconfig each say what and where — never a bare "unexpected error".
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commands } from '../../src/cli/commands.ts';
import type { CheckResult } from '../../src/cli/doctor/checks.ts';
import { freePort } from '../harness/ports.ts';
import { type CommandResult, runCommand } from '../harness/run.ts';

const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function smk(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return runCommand(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
}

function assertNoBareError(result: CommandResult): void {
  assert.doesNotMatch(result.stderr, /unexpected error/, result.stderr);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
}

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'smk-cli-errors-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('a wrong command line exits 2 with a message about it', () => {
  for (const name of Object.keys(commands)) {
    test(`smk ${name} --no-such-flag`, async () => {
      const result = await smk([name, '--no-such-flag']);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr, `smk ${name}: unknown flag --no-such-flag (see smk ${name} --help)\n`);
      assert.equal(result.stdout, '');
    });
  }

  test('an unknown command and a flag before the command: the same code', async () => {
    const command = await smk(['fecth', '--objects', 'x']);
    assert.equal(command.code, 2);
    assert.match(command.stderr, /^smk: unknown command "fecth" \(see smk --help\)/);
    const flag = await smk(['--region', 'us-east-1', 'fetch']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^smk: unknown flag --region/);
  });

  test('a flag without its value, a value for a switch, an argument a command does not take', async () => {
    const noValue = await smk(['fetch', '--objects', '-', '--dir']);
    assert.equal(noValue.code, 2);
    assert.match(noValue.stderr, /^smk fetch: flag --dir needs a value/);
    const switchValue = await smk(['fetch', '--quiet=yes']);
    assert.equal(switchValue.code, 2);
    assert.match(switchValue.stderr, /^smk fetch: flag --quiet takes no value/);
    const positional = await smk(['inject', 'app.yaml']);
    assert.equal(positional.code, 2);
    assert.match(positional.stderr, /^smk inject: unexpected argument "app\.yaml"/);
    const mode = await smk(['agent', 'start']);
    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /^smk agent: unknown mode "start"/);
  });

  test('a missing required flag and a flag value out of range are usage errors too', async () => {
    const noFile = await smk(['inject']);
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /^smk inject: -f FILE\|DIR\|- is required/);
    const port = await smk(['webhook', '--tls-cert', 'a', '--tls-key', 'b', '--port', 'high']);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /^smk webhook: --port must be a number in range/);
    const doctor = await smk(['doctor', '--timeout', 'soon']);
    assert.equal(doctor.code, 2);
    assert.match(doctor.stderr, /^smk doctor: --timeout: expected a duration/);
  });
});

describe('what failed and where', () => {
  test('a missing file, a directory, a path through a file: the flag, the path and the reason', async () => {
    const missing = join(work, 'missing.yaml');
    const fetch = await smk(['fetch', '--objects', missing, '--dir', join(work, 'out')]);
    assert.equal(fetch.code, 1);
    assert.equal(fetch.stderr, `smk fetch: --objects ${missing}: no such file or directory (ENOENT)\n`);

    const directory = await smk(['fetch', '--objects', work, '--dir', join(work, 'out')]);
    assert.equal(directory.code, 1);
    assert.equal(directory.stderr, `smk fetch: --objects ${work}: is a directory (EISDIR)\n`);

    const file = join(work, 'plain.txt');
    await writeFile(file, 'x');
    const through = await smk(['inject', '-f', join(file, 'app.yaml')]);
    assert.equal(through.code, 1);
    assert.match(
      through.stderr,
      /^smk inject: -f \S+plain\.txt\/app\.yaml: a part of the path is not a directory \(ENOTDIR\)\n$/,
    );

    const empty = join(work, 'empty');
    await mkdir(empty);
    const noManifests = await smk(['inject', '-f', empty]);
    assert.equal(noManifests.code, 1);
    assert.match(noManifests.stderr, /no \.yaml, \.yml or \.json files in this directory/);
    for (const result of [fetch, directory, through, noManifests]) assertNoBareError(result);
  });

  test('the webhook names a certificate file it cannot read, at start', async () => {
    const cert = join(work, 'absent.crt');
    const result = await smk(['webhook', '--tls-cert', cert, '--tls-key', cert, '--port', '0']);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `smk webhook: --tls-cert ${cert}: no such file or directory (ENOENT)\n`);
  });

  test('a kubeconfig that is missing, not a kubeconfig, or absent altogether', async () => {
    const absent = join(work, 'absent.kubeconfig');
    const missing = await smk(['controller', '--leader-elect=false'], { KUBECONFIG: absent });
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      `smk controller: the kubeconfig ${absent} (from KUBECONFIG): no such file or directory (ENOENT)\n`,
    );

    const provider = await smk(['csi-provider', `--provider-volume=${join(work, 'providers')}`], {
      KUBECONFIG: absent,
    });
    assert.equal(provider.code, 1);
    assert.equal(
      provider.stderr,
      `smk csi-provider: the kubeconfig ${absent} (from KUBECONFIG): no such file or directory (ENOENT)\n`,
    );

    const garbled = join(work, 'garbled.kubeconfig');
    await writeFile(garbled, 'token: s3cr3t-in-a-broken-file: [\n');
    const broken = await smk(['controller'], { KUBECONFIG: garbled });
    assert.equal(broken.code, 1);
    assert.match(
      broken.stderr,
      /^smk controller: the kubeconfig \S+garbled\.kubeconfig \(from KUBECONFIG\): not a valid kubeconfig/,
    );
    assert.ok(!broken.stderr.includes('s3cr3t'), 'the file text is not quoted');

    // No KUBECONFIG, no ~/.kube/config, not in a pod: said so, instead of calling localhost:8080.
    const home = join(work, 'home');
    await mkdir(home);
    const none = await smk(['doctor', '--json'], { KUBECONFIG: '', HOME: home });
    assert.equal(none.code, 1);
    const cluster = (JSON.parse(none.stdout) as CheckResult[]).find(
      (check) => check.name === 'cluster reachable',
    );
    assert.equal(cluster?.status, 'fail');
    assert.match(
      cluster?.detail ?? '',
      /^no kubeconfig: set KUBECONFIG, write \S+home\/\.kube\/config, or run smk in a pod/,
    );
    for (const result of [missing, provider, broken, none]) assertNoBareError(result);
  });

  test('a refused connection and an unknown host: the server and what happened', async () => {
    const port = await freePort();
    const kubeconfig = (server: string): string =>
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: c, cluster: {server: "${server}"}}]`,
        'users: [{name: u, user: {token: not-a-real-token}}]',
        'contexts: [{name: c, context: {cluster: c, user: u}}]',
        'current-context: c',
      ].join('\n');
    const refusedPath = join(work, 'refused.kubeconfig');
    await writeFile(refusedPath, kubeconfig(`https://127.0.0.1:${port}`));
    const unknownPath = join(work, 'unknown.kubeconfig');
    await writeFile(unknownPath, kubeconfig('https://api.smk-test.invalid:6443'));
    for (const [path, expected] of [
      [refusedPath, `https://127.0.0.1:${port}: connection refused (ECONNREFUSED)`],
      [unknownPath, 'https://api.smk-test.invalid:6443: host not found (ENOTFOUND)'],
    ] as const) {
      const result = await smk(['doctor', '--json', '--timeout=5s'], { KUBECONFIG: path });
      assert.equal(result.code, 1, result.stderr);
      const cluster = (JSON.parse(result.stdout) as CheckResult[]).find(
        (check) => check.name === 'cluster reachable',
      );
      assert.equal(cluster?.detail, expected);
    }

    // AWS refused: the object, the call and the reason.
    const fetch = await runCommand(
      process.execPath,
      [cli, 'fetch', '--objects', '-', '--dir', join(work, 'aws-down')],
      {
        env: {
          ...process.env,
          AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'testing',
          AWS_SECRET_ACCESS_KEY: 'testing',
        },
        input: JSON.stringify([{ objectName: 'app/db', objectType: 'secretsmanager' }]),
      },
    );
    assert.equal(fetch.code, 1);
    assert.match(
      fetch.stderr,
      /objects\[0\] \(app\/db\): GetSecretValue app\/db in us-east-1: .*ECONNREFUSED/,
    );
    assertNoBareError(fetch);
  });
});
