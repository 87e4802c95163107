/**
 * The image's file system without a Docker engine: the Dockerfile's layout (bundle in
 * /usr/local/lib/smk without source maps, shebang at the runtime's node, `smk` on PATH as a
 * symlink) rebuilt in a temp dir from dist/ and run with an environment holding nothing but PATH —
 * no node_modules, no repository, no /usr/bin/env. Needs `npm run build` first (npm test does it).
 * The other process-level tests run src/; here the bundle itself makes the AWS calls whose SDKs it
 * loads on demand (STS, SSM, SQS): esbuild once turned those imports into undefined classes.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { access, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CoreV1Api } from '@kubernetes/client-node';
import type { CheckResult } from '../../src/cli/doctor/checks.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed } from '../testbed/index.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const dist = `${root}dist`;

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe('the image layout (Dockerfile) runs from the bundle alone', () => {
  let image: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    await access(`${dist}/smk.mjs`).catch(() => {
      throw new Error('dist/smk.mjs is missing: run `npm run build` (npm test does) before this test');
    });
    image = await mkdtemp(join(tmpdir(), 'smk-image-'));
    const lib = join(image, 'usr/local/lib/smk');
    const bin = join(image, 'usr/local/bin');
    await mkdir(bin, { recursive: true });
    await cp(dist, lib, { recursive: true, filter: (source) => !source.endsWith('.map') });
    // The Dockerfile points the shebang at /nodejs/bin/node; here, at this Node.
    const main = join(lib, 'smk.mjs');
    const text = await readFile(main, 'utf8');
    assert.ok(text.startsWith('#!'), 'the bundle starts with a shebang the Dockerfile rewrites');
    await writeFile(main, text.replace(/^#!.*/, `#!${process.execPath}`), { mode: 0o755 });
    await symlink('../lib/smk/smk.mjs', join(bin, 'smk'));
    env = { PATH: bin, HOME: image };
  });

  after(async () => {
    if (image) await rm(image, { recursive: true, force: true });
  });

  test('no source maps and no node_modules in the image; the CSI proto is there', async () => {
    const files = await walk(image);
    assert.ok(!files.some((file) => file.endsWith('.map')));
    assert.ok(!files.some((file) => file.includes('node_modules')));
    assert.ok(files.some((file) => file.endsWith('/proto/service.proto')));
  });

  test('`smk` from PATH (as the injected agent calls it) answers, from outside the repository', async () => {
    const { stdout } = await run('smk', ['version'], { env, cwd: image });
    assert.match(stdout, /^smk \d+\.\d+\.\d+/);
    const help = await run('smk', ['webhook', '--help'], { env, cwd: image });
    assert.match(help.stdout, /--tls-secret NAME/);
  });

  test('the CSI provider loads its proto, serves its socket and passes its own liveness probe', async () => {
    const sockets = join(image, 'providers');
    await mkdir(sockets);
    const provider = spawn('smk', ['csi-provider', `--provider-volume=${sockets}`, '--health-port=0'], {
      env: { ...env, AWS_REGION: 'us-east-1' },
      cwd: image,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const deadline = Date.now() + 15_000;
      let probed: { stdout: string } | undefined;
      while (!probed && Date.now() < deadline) {
        probed = await run('smk', ['csi-provider', '--probe', `--provider-volume=${sockets}`], {
          env,
          cwd: image,
        }).catch(() => undefined);
        if (!probed) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(probed, 'the probe answered');
      assert.match(probed.stdout, /smk-csi-provider/);
    } finally {
      const exited = new Promise((resolve) => provider.once('exit', resolve));
      provider.kill('SIGTERM');
      await exited;
    }
  });

  test('the bundle loads the SDKs it needs on demand: SSM (fetch), STS and SQS (doctor)', async () => {
    const moto = connectMoto();
    const bed = await connectTestBed();
    const id = Math.random().toString(36).slice(2, 8);
    const aws = {
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    const awsEnv = {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    };
    try {
      const ssm = new SSMClient(aws);
      await ssm.send(new PutParameterCommand({ Name: `/image/${id}/p`, Value: 'from-ssm', Type: 'String' }));
      ssm.destroy();
      const secrets = new SecretsManagerClient(aws);
      await secrets.send(new CreateSecretCommand({ Name: `image/${id}/s`, SecretString: 'from-sm' }));
      secrets.destroy();
      const sqs = new SQSClient(aws);
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `image-${id}` }));
      sqs.destroy();
      const namespace = await bed.newNamespace('image');
      await bed.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
        namespace,
        body: {
          metadata: {
            name: 'app',
            annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/image-app' },
          },
        },
      });

      const objects = join(image, 'objects.yaml');
      await writeFile(
        objects,
        `- objectName: /image/${id}/p\n  objectType: ssmparameter\n  objectAlias: p\n`,
      );
      const out = join(image, `fetched-${id}`);
      await run('smk', ['fetch', '--objects', objects, '--dir', out], {
        env: { ...env, ...awsEnv },
        cwd: image,
      });
      assert.equal(await readFile(join(out, 'p'), 'utf8'), 'from-ssm');

      const doctor = await run(
        'smk',
        [
          'doctor',
          '--json',
          '--timeout=8s',
          `--service-account=${namespace}/app`,
          `--secret=image/${id}/s`,
          `--queue-url=${QueueUrl}`,
        ],
        { env: { ...env, ...awsEnv, KUBECONFIG: bed.kubeConfigPath }, cwd: image },
      ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
      const results = JSON.parse(doctor.stdout) as CheckResult[];
      for (const name of ['role can describe the secret', 'rotation queue reachable']) {
        const found = results.find((result) => result.name === name);
        assert.equal(found?.status, 'pass', `${name}: ${found?.detail}`);
      }
    } finally {
      await bed.stop();
    }
  });

  test('with --allow-jmespath-expressions, the bundle runs an expression in its worker thread', async () => {
    const moto = connectMoto();
    const id = Math.random().toString(36).slice(2, 8);
    const secrets = new SecretsManagerClient({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await secrets.send(
      new CreateSecretCommand({ Name: `image/${id}/db`, SecretString: JSON.stringify({ port: 5432 }) }),
    );
    secrets.destroy();
    const objects = join(image, `expression-${id}.yaml`);
    await writeFile(
      objects,
      `- objectName: image/${id}/db\n  objectType: secretsmanager\n  objectAlias: db\n  jmesPath:\n    - {path: to_string(port), objectAlias: port}\n`,
    );
    const out = join(image, `expression-${id}`);
    await run('smk', ['fetch', '--allow-jmespath-expressions', '--objects', objects, '--dir', out], {
      env: {
        ...env,
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
      },
      cwd: image,
    });
    assert.equal(await readFile(join(out, 'port'), 'utf8'), '5432');
  });
});
