/**
 * What the demo's scenarios run against: the local world (moto + the Kubernetes test bed, the same
 * one the integration tests use), an AWS client for setting up demo secrets, and a way to run the
 * `smk` binary as a user would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type CommandResult, runCommand } from '../../test/harness/run.ts';
import { startWorld } from '../../test/harness/world.ts';

export interface DemoWorld {
  readonly env: Readonly<Record<string, string>>;
  readonly secretsManager: SecretsManagerClient;
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

export async function startDemoWorld(): Promise<DemoWorld> {
  process.stdout.write('Starting the local world: moto (AWS endpoint) and the Kubernetes test bed…\n');
  const world = await startWorld();
  const root = await mkdtemp(join(tmpdir(), 'smk-demo-'));
  const secretsManager = new SecretsManagerClient({
    endpoint: world.env.AWS_ENDPOINT_URL,
    region: world.env.AWS_REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  return {
    env: world.env,
    secretsManager,
    async tempDir(name) {
      return mkdtemp(join(root, `${name}-`));
    },
    smk(args, options = {}) {
      return runCommand(process.execPath, [smkBinary, ...args], {
        env: { ...process.env, ...world.env, ...options.env },
        ...(options.input === undefined ? {} : { input: options.input }),
      });
    },
    async stop() {
      secretsManager.destroy();
      await world.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
