/**
 * The whole local world for one integration run: moto (AWS wire endpoint for Secrets Manager, SSM,
 * STS, SQS) and the Kubernetes test bed. Started once by scripts/test.ts (and `npm run testbed`);
 * the environment it returns is what every integration test process inherits.
 */
import { auditPaths } from '../testbed/control-plane.ts';
import { startTestBed } from '../testbed/index.ts';
import { startMoto } from './moto.ts';

export interface World {
  /** Variables for child processes: AWS endpoint and dummy credentials, the bed's kubeconfig and info file. */
  readonly env: Readonly<Record<string, string>>;
  /** The API server's audit log (every write, request and response), which the leak scan reads. */
  readonly auditLogPath: string;
  /** The last lines of every server's log (the bed's processes and moto), for failure reports. */
  logs(): string;
  /**
   * Copies more output for the leak scan into its capture dir (the node world: smk's container logs
   * on the node). Called once the tests are done, before the scan; says what it added.
   */
  collectForLeakScan?(captureDir: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startWorld(): Promise<World> {
  const moto = await startMoto();
  let bed: Awaited<ReturnType<typeof startTestBed>>;
  try {
    bed = await startTestBed();
  } catch (error) {
    await moto.stop();
    throw error;
  }
  return {
    env: {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      KUBECONFIG: bed.kubeConfigPath,
      SMK_TEST_BED: bed.infoPath,
    },
    auditLogPath: auditPaths(bed.dir).log,
    logs() {
      return `${bed.logs()}\n--- moto ---\n${moto.log().split('\n').slice(-40).join('\n')}`;
    },
    async stop() {
      await bed.stop();
      await moto.stop();
    },
  };
}
