/**
 * The smk image as `npm run image` builds it (no Docker engine here): its config and file layout
 * against what the Dockerfile declares, and its root file system run the way a container runtime
 * would run it under the chart — extracted by GNU tar from the archive ctr imports, then, in a
 * private mount namespace, the root bind-mounted read-only, a writable /tmp mounted over it (the
 * chart's emptyDir), `unshare --root` into it as the image's user with only the image's env and
 * working directory. Node then starts with the image's libraries or not at all, so a missing one
 * fails here. The bundle loads its SDKs on demand (STS, SSM, SQS: esbuild once turned those imports
 * into undefined classes), so the commands that use them run against moto and the test bed.
 * Needs `npm run build` first (npm test does it) and root (mount namespaces; CI runs as root).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  access,
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CoreV1Api } from '@kubernetes/client-node';
import { z } from 'zod';
import { type BuiltImage, buildImage, imageConfig, packageVersion } from '../../scripts/image/build.ts';
import { parseDockerfile } from '../../scripts/image/dockerfile.ts';
import { baseImage } from '../../scripts/image/layout.ts';
import type { CheckResult } from '../../src/cli/doctor/checks.ts';
import { connectMoto } from '../harness/moto.ts';
import { connectTestBed } from '../testbed/index.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const dockerfileText = await readFile(join(root, 'Dockerfile'), 'utf8');

const descriptorSchema = z.object({ mediaType: z.string(), digest: z.string(), size: z.number() });
const indexSchema = z.object({
  manifests: z.array(
    descriptorSchema.extend({
      platform: z.object({ architecture: z.string(), os: z.literal('linux') }),
      annotations: z.record(z.string(), z.string()),
    }),
  ),
});
const manifestSchema = z.object({ config: descriptorSchema, layers: z.array(descriptorSchema) });
const configSchema = z.object({
  config: z.object({
    User: z.string(),
    WorkingDir: z.string(),
    Env: z.array(z.string()),
    Entrypoint: z.array(z.string()),
    Cmd: z.array(z.string()),
    Labels: z.record(z.string(), z.string()),
  }),
  rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(z.string()) }),
});
const dockerManifestSchema = z.array(
  z.object({ Config: z.string(), RepoTags: z.array(z.string()), Layers: z.array(z.string()) }),
);

/** One member of the archive, read by GNU tar (not by the code that wrote it). */
async function member(archive: string, name: string): Promise<Buffer> {
  const { stdout } = await run('tar', ['-xOf', archive, name], {
    encoding: 'buffer',
    maxBuffer: 256 * 1024 * 1024,
  });
  return stdout;
}

const blobName = (digest: string): string => `blobs/sha256/${digest.replace(/^sha256:/, '')}`;

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

describe('the smk image (npm run image) matches the Dockerfile and runs from its own root file system', () => {
  let image: BuiltImage;
  let config: z.infer<typeof configSchema>['config'];
  let rootfs: string;
  /** The host side of the container's /tmp (what kubelet bind-mounts for the chart's emptyDir). */
  let tmp: string;
  let work: string;

  /**
   * argv (for `unshare`) and env that run `command` inside the image as its runtime would: the
   * image's user, working directory and env (plus `env`), the root read-only, /tmp writable.
   */
  function inImage(
    command: readonly string[],
    env: Readonly<Record<string, string>> = {},
  ): [string[], NodeJS.ProcessEnv] {
    const [uid, gid = uid] = config.User.split(':');
    const script = [
      'set -e',
      'mount --bind "$1" "$1"',
      'mount -o remount,bind,ro "$1"',
      'mount --bind "$2" "$1/tmp"',
      'root=$1; shift 2',
      'exec unshare --root="$root" --wd="$SMK_TEST_WORKDIR" --setuid "$SMK_TEST_UID" --setgid "$SMK_TEST_GID" "$@"',
    ].join('\n');
    const imageEnv = Object.fromEntries(
      config.Env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    );
    return [
      ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', rootfs, tmp, ...command],
      // The outer sh, mount and unshare are the host's, found on the image's PATH (/usr/bin:/bin).
      {
        ...imageEnv,
        ...env,
        SMK_TEST_WORKDIR: config.WorkingDir,
        SMK_TEST_UID: uid ?? '',
        SMK_TEST_GID: gid ?? '',
      },
    ];
  }

  /** `args` given to the image's entrypoint, as `docker run IMAGE args` / a pod's `args:` would. */
  async function runImage(
    args: readonly string[],
    env?: Readonly<Record<string, string>>,
  ): Promise<{ stdout: string; stderr: string }> {
    const [argv, processEnv] = inImage([...config.Entrypoint, ...args], env);
    return run('unshare', argv, { env: processEnv });
  }

  before(async () => {
    assert.equal(
      process.getuid?.(),
      0,
      'this test runs the image in a mount namespace: run it as root (CI does)',
    );
    await access(join(root, 'dist/smk.mjs')).catch(() => {
      throw new Error('dist/smk.mjs is missing: run `npm run build` (npm test does) before this test');
    });
    image = await buildImage({ root });
    work = await mkdtemp(join(tmpdir(), 'smk-image-'));
    rootfs = join(work, 'rootfs');
    tmp = join(work, 'tmp');
    await mkdir(rootfs);
    await mkdir(tmp);
    await chmod(tmp, 0o1777);
    const index = indexSchema.parse(JSON.parse((await member(image.archive, 'index.json')).toString()));
    const manifestDigest = index.manifests[0]?.digest ?? '';
    const manifest = manifestSchema.parse(
      JSON.parse((await member(image.archive, blobName(manifestDigest))).toString()),
    );
    config = configSchema.parse(
      JSON.parse((await member(image.archive, blobName(manifest.config.digest))).toString()),
    ).config;
    for (const layer of manifest.layers) {
      await writeFile(join(work, 'layer.tgz'), await member(image.archive, blobName(layer.digest)));
      await run('tar', ['--numeric-owner', '-xzpf', join(work, 'layer.tgz'), '-C', rootfs]);
    }
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the archive names the release and local refs for one linux manifest, for containerd and docker alike', async () => {
    const version = await packageVersion(root);
    const index = indexSchema.parse(JSON.parse((await member(image.archive, 'index.json')).toString()));
    assert.deepEqual(
      index.manifests.map((entry) => entry.annotations['io.containerd.image.name']),
      [`ghcr.io/smk-dev/smk:${version}`, 'smk.local/smk:dev'],
    );
    assert.deepEqual(new Set(index.manifests.map((entry) => entry.digest)), new Set([image.digest]));
    assert.equal(
      JSON.parse((await member(image.archive, 'oci-layout')).toString()).imageLayoutVersion,
      '1.0.0',
    );
    const docker = dockerManifestSchema.parse(
      JSON.parse((await member(image.archive, 'manifest.json')).toString()),
    );
    assert.deepEqual(docker[0]?.RepoTags, image.refs);
    // Every blob is what its name says (GNU tar reads it; the digest is recomputed here).
    for (const name of [...(docker[0]?.Layers ?? []), docker[0]?.Config ?? '']) {
      const data = await member(image.archive, name);
      assert.equal(createHash('sha256').update(data).digest('hex'), name.replace('blobs/sha256/', ''));
    }
  });

  test("the config is the Dockerfile's final stage over its base: entrypoint, cmd, numeric non-root user, workdir, env, labels", async () => {
    const declared = parseDockerfile(dockerfileText, { VERSION: await packageVersion(root) });
    const base = baseImage(declared.base);
    assert.deepEqual(config, imageConfig(declared, base));
    // What the Dockerfile itself says, field by field (the merge above could hide a dropped one).
    assert.deepEqual(config.Entrypoint, declared.entrypoint);
    assert.deepEqual(config.Cmd, declared.cmd);
    assert.equal(config.User, declared.user ?? base.user);
    for (const [name, value] of declared.env)
      assert.ok(config.Env.includes(`${name}=${value}`), `${name} in Env`);
    assert.deepEqual(config.Labels, declared.labels);
    // runAsNonRoot (the chart's pods and the injected agent) only accepts a numeric, non-zero user.
    assert.match(config.User, /^[1-9]\d*(:\d+)?$/);
    assert.equal(config.WorkingDir, declared.workdir ?? base.workdir);
    const home = await stat(join(rootfs, config.WorkingDir));
    assert.equal(
      `${home.uid}:${home.gid}`,
      config.User.includes(':') ? config.User : `${config.User}:${config.User}`,
    );
  });

  test('the file layout is what the Dockerfile RUN makes: bundle without maps, shebang at the base node, smk on PATH', async () => {
    // The three layout facts the Dockerfile's build stage writes, read from its text.
    const shebang = /sed -i '1s\|\^#!\.\*\|(#![^|]+)\|'/.exec(dockerfileText)?.[1];
    const link = /ln -s (\S+) \/out(\S+)/.exec(dockerfileText);
    const bundleDir = /cp -R dist\/\. \/out(\S+?)\/?(\s|$)/.exec(dockerfileText)?.[1];
    assert.ok(
      shebang && link?.[1] && link[2] && bundleDir,
      'the Dockerfile still says how it lays out the bundle',
    );
    assert.match(dockerfileText, /-name '\*\.map' -delete/);

    const main = join(rootfs, bundleDir, 'smk.mjs');
    assert.equal((await readFile(main, 'utf8')).split('\n')[0], shebang);
    assert.equal((await stat(main)).mode & 0o777, 0o755);
    assert.equal(await readlink(join(rootfs, link[2])), link[1]);
    assert.equal(
      (await stat(join(rootfs, shebang.slice(2)))).mode & 0o111,
      0o111,
      'the shebang names an executable node',
    );

    const dist = (await walk(join(root, 'dist'))).filter((file) => !file.endsWith('.map'));
    const bundled = await walk(join(rootfs, bundleDir));
    assert.deepEqual(bundled.sort(), dist.sort(), 'the image holds dist/ less the source maps, nothing else');
    const files = await walk(rootfs);
    assert.ok(!files.some((file) => file.includes('node_modules')));
    assert.ok(files.some((file) => file.endsWith('/proto/service.proto')));
  });

  test('a rebuild from nothing gives the same digest (the layer cache and the build are reproducible)', async () => {
    const out = join(work, 'again');
    const again = await buildImage({ root, out });
    assert.equal(again.digest, image.digest);
    assert.ok(again.layers.every((layer) => !layer.cached));
  });

  test('`smk version` runs read-only as the image user with only the image libraries; `smk` resolves on PATH', async () => {
    const { stdout } = await runImage(['version']);
    assert.match(stdout, /^smk \d+\.\d+\.\d+ \(node 24\./);
    // The injected agent's command is `smk agent …`, found through the image's PATH.
    const [argv, env] = inImage(['smk', 'webhook', '--help']);
    const help = await run('unshare', argv, { env });
    assert.match(help.stdout, /--tls-secret NAME/);
  });

  test('the CSI provider serves its socket and passes its own liveness probe, from the image', async () => {
    await mkdir(join(tmp, 'providers'), { mode: 0o1777 });
    await chmod(join(tmp, 'providers'), 0o1777);
    const [argv, env] = inImage(
      [...config.Entrypoint, 'csi-provider', '--provider-volume=/tmp/providers', '--health-port=0'],
      {
        AWS_REGION: 'us-east-1',
      },
    );
    const provider: ChildProcess = spawn('unshare', argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let probed: { stdout: string } | undefined;
      for (let attempt = 0; !probed && attempt < 75; attempt += 1) {
        probed = await runImage(['csi-provider', '--probe', '--provider-volume=/tmp/providers']).catch(
          () => undefined,
        );
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

      await writeFile(
        join(tmp, 'objects.yaml'),
        `- objectName: /image/${id}/p\n  objectType: ssmparameter\n  objectAlias: p\n`,
      );
      await runImage(['fetch', '--objects', '/tmp/objects.yaml', '--dir', `/tmp/fetched-${id}`], awsEnv);
      assert.equal(await readFile(join(tmp, `fetched-${id}`, 'p'), 'utf8'), 'from-ssm');

      await writeFile(join(tmp, 'kubeconfig'), await readFile(bed.kubeConfigPath), { mode: 0o644 });
      const doctor = await runImage(
        [
          'doctor',
          '--json',
          '--timeout=8s',
          `--service-account=${namespace}/app`,
          `--secret=image/${id}/s`,
          `--queue-url=${QueueUrl}`,
        ],
        { ...awsEnv, KUBECONFIG: '/tmp/kubeconfig' },
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
    await writeFile(
      join(tmp, `expression-${id}.yaml`),
      `- objectName: image/${id}/db\n  objectType: secretsmanager\n  objectAlias: db\n  jmesPath:\n    - {path: to_string(port), objectAlias: port}\n`,
    );
    await runImage(
      [
        'fetch',
        '--allow-jmespath-expressions',
        '--objects',
        `/tmp/expression-${id}.yaml`,
        '--dir',
        `/tmp/expression-${id}`,
      ],
      {
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
      },
    );
    assert.equal(await readFile(join(tmp, `expression-${id}`, 'port'), 'utf8'), '5432');
  });
});
