/**
 * Doctor's checks outside the cluster: the rotation SQS queue (with the user's own AWS credentials)
 * and the CSI provider's socket on this node.
 */
import { readQueueState } from '../../aws/index.ts';
import { isSmkError } from '../../core/errors.ts';
import { connectProvider } from '../../csi/client.ts';
import { describeCliError } from '../errors.ts';
import {
  type CheckResult,
  type DoctorDeps,
  type DoctorOptions,
  fail,
  pass,
  skip,
  withDeadline,
} from './verdict.ts';

export async function checkQueue(deps: DoctorDeps, options: DoctorOptions, ms: number): Promise<CheckResult> {
  const name = 'rotation queue reachable';
  if (!options.queueUrl) return skip(name, 'give --queue-url URL (the controller’s --rotation-queue-url)');
  const region = /sqs\.([a-z0-9-]+)\.amazonaws/.exec(options.queueUrl)?.[1] ?? options.region;
  if (!region)
    return fail(name, `no region for ${options.queueUrl}`, 'give --region REGION or set AWS_REGION');
  try {
    const state = await withDeadline(
      name,
      ms * 2,
      readQueueState({ kind: 'default' }, deps, options.queueUrl, region),
    );
    return pass(
      name,
      `${options.queueUrl}: ${state.visible} waiting, ${state.inFlight} in flight${state.deadLetterQueueArn ? `, dead letters to ${state.deadLetterQueueArn}` : ', no dead-letter queue'} (as your own AWS credentials)`,
    );
  } catch (error) {
    const kind = isSmkError(error) ? error.kind : undefined;
    return fail(
      name,
      `${options.queueUrl}: ${describeCliError(error)}`,
      kind === 'NotFound'
        ? 'no such queue: deploy/aws/rotation.yaml creates it; pass its QueueUrl output'
        : kind === 'AccessDenied'
          ? 'your credentials may not sqs:GetQueueAttributes on it (the controller itself needs sqs:ReceiveMessage and sqs:DeleteMessage)'
          : 'SQS could not be reached: check the region and the network',
    );
  }
}

export async function checkCsiSocket(options: DoctorOptions, ms: number): Promise<CheckResult> {
  const name = 'CSI provider socket answers Version';
  if (!options.csiSocket)
    return skip(name, 'give --csi-socket PATH (on a node: /var/run/secrets-store-csi-providers/aws.sock)');
  const client = connectProvider(options.csiSocket);
  try {
    const version = await withDeadline(name, ms, client.version());
    return pass(
      name,
      `${options.csiSocket}: ${version.runtime_name} ${version.runtime_version} (protocol ${version.version})`,
    );
  } catch (error) {
    return fail(
      name,
      `${options.csiSocket}: ${error instanceof Error ? error.message : String(error)}`,
      'is smk csi-provider running on this node (the chart’s DaemonSet, csiProvider.enabled=true)? The socket is <providers dir>/<provider name>.sock, where the driver looks',
    );
  } finally {
    client.close();
  }
}
