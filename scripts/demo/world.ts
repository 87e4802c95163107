/**
 * What the demo's scenarios run against: the local world (moto + the Kubernetes test bed, the same
 * one the integration tests use), AWS clients for setting up demo secrets, and a way to run the
 * `smk` binary as a user would. With SMK_TEST_BED and AWS_ENDPOINT_URL already set (the `export`
 * lines of `npm run testbed`), the demo attaches to that world instead of starting one, and leaves
 * it running afterwards (its namespaces are deleted).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type CommandResult, runCommand } from '../../test/harness/run.ts';
import { startWorld } from '../../test/harness/world.ts';
import { connectTestBed, type TestBed } from '../../test/testbed/index.ts';

export interface DemoWorld {
  readonly env: Readonly<Record<string, string>>;
  /** The AWS endpoint (moto) every AWS call of the demo goes to. */
  readonly awsEndpoint: string;
  readonly region: string;
  readonly bed: TestBed;
  readonly secretsManager: SecretsManagerClient;
  readonly sqs: SQSClient;
  /** dist/smk.mjs: the bundle the image ships. */
  readonly smkBinary: string;
  /** A Secrets Manager client for another region (seed 001 lives in eu-west-1). */
  secretsManagerIn(region: string): SecretsManagerClient;
  /** A fresh directory under the demo's temp root. */
  tempDir(name: string): Promise<string>;
  /** Runs the bundled `smk` (dist/smk.mjs) with the world's environment. */
  smk(
    args: readonly string[],
    options?: { input?: string; env?: Record<string, string> },
  ): Promise<CommandResult>;
  stop(): Promise<void>;
}

const smkBinary = new URL('../../dist/smk.mjs', import.meta.url).pathname;
const worldVariables = [
  'AWS_ENDPOINT_URL',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'KUBECONFIG',
  'SMK_TEST_BED',
] as const;

async function startOrAttach(): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
  const { SMK_TEST_BED: bedInfo, AWS_ENDPOINT_URL: endpoint } = process.env;
  if (bedInfo && endpoint) {
    process.stdout.write(`Using the running local world (SMK_TEST_BED=${bedInfo}, moto at ${endpoint}).\n`);
    const env: Record<string, string> = {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    };
    for (const name of worldVariables) {
      const value = process.env[name];
      if (value) env[name] = value;
    }
    return { env, stop: async () => {} };
  }
  process.stdout.write(
    'Starting the local world: moto (the AWS endpoint) and the Kubernetes test bed (etcd, kube-apiserver,\n' +
      'kube-controller-manager). The first run builds the bed from the Go module proxy (15–25 minutes on\n' +
      '2 cores; progress below); later runs start in seconds.\n',
  );
  const world = await startWorld();
  return { env: { ...world.env }, stop: world.stop };
}

export async function startDemoWorld(): Promise<DemoWorld> {
  const world = await startOrAttach();
  const { env } = world;
  let bed: TestBed;
  try {
    // connectTestBed reads the bed's info file from the environment, as every test process does.
    process.env.SMK_TEST_BED = env.SMK_TEST_BED;
    bed = await connectTestBed();
  } catch (error) {
    await world.stop();
    throw error;
  }
  const root = await mkdtemp(join(tmpdir(), 'smk-demo-'));
  const awsEndpoint = env.AWS_ENDPOINT_URL ?? '';
  const region = env.AWS_REGION ?? 'us-east-1';
  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const clients = new Map<string, SecretsManagerClient>();
  const secretsManagerIn = (name: string): SecretsManagerClient => {
    let client = clients.get(name);
    if (!client) {
      client = new SecretsManagerClient({ endpoint: awsEndpoint, region: name, credentials });
      clients.set(name, client);
    }
    return client;
  };
  const sqs = new SQSClient({ endpoint: awsEndpoint, region, credentials });
  return {
    env,
    awsEndpoint,
    region,
    bed,
    secretsManager: secretsManagerIn(region),
    sqs,
    smkBinary,
    secretsManagerIn,
    async tempDir(name) {
      return mkdtemp(join(root, `${name}-`));
    },
    smk(args, options = {}) {
      return runCommand(process.execPath, [smkBinary, ...args], {
        env: { ...process.env, ...env, ...options.env },
        ...(options.input === undefined ? {} : { input: options.input }),
      });
    },
    async stop() {
      for (const client of clients.values()) client.destroy();
      sqs.destroy();
      await bed.stop().catch(() => undefined);
      await world.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
