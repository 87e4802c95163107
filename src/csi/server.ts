/**
 * The gRPC server on the provider socket (`<provider-volume>/<provider-name>.sock`). It only
 * adapts: each Mount goes to the handler, each failure becomes a status the driver shows in the
 * pod's events. One bad request never stops the server.
 */
import { chmod, lstat, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from '../core/log.ts';
import { counter, histogram } from '../core/metrics.ts';
import {
  type MountRequest,
  type MountResponse,
  protocolVersion,
  providerServiceDefinition,
  type VersionRequest,
  type VersionResponse,
} from './protocol.ts';
import { type MountErrorCode, mountFailure } from './status.ts';

export type MountHandler = (request: MountRequest) => Promise<MountResponse>;

export interface ProviderServerOptions {
  readonly socketPath: string;
  readonly mount: MountHandler;
  readonly logger: Logger;
  readonly runtimeName: string;
  readonly runtimeVersion: string;
}

export interface ProviderServer {
  readonly socketPath: string;
  /** Stops accepting calls, lets running ones finish (up to graceMs), removes the socket. */
  close(graceMs?: number): Promise<void>;
}

const mounts = counter('smk_csi_mounts_total', 'CSI Mount calls by outcome and (for failed) reason', [
  'outcome',
  'reason',
]);
const mountSeconds = histogram(
  'smk_csi_mount_duration_seconds',
  'CSI Mount duration by outcome',
  ['outcome'],
  [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
);

/** A socket left by a previous run would make bind fail; anything else at that path is not ours. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  const stat = await lstat(socketPath).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  });
  if (stat === undefined) return;
  if (!stat.isSocket()) {
    throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  await rm(socketPath, { force: true });
}

export async function startProviderServer(options: ProviderServerOptions): Promise<ProviderServer> {
  const { socketPath, logger } = options;
  await mkdir(dirname(socketPath), { recursive: true });
  await removeStaleSocket(socketPath);

  const server = new Server();
  const implementation: UntypedServiceImplementation = {
    Version(_call: ServerUnaryCall<VersionRequest, VersionResponse>, reply: sendUnaryData<VersionResponse>) {
      reply(null, {
        version: protocolVersion,
        runtime_name: options.runtimeName,
        runtime_version: options.runtimeVersion,
      });
    },
    Mount(call: ServerUnaryCall<MountRequest, MountResponse>, reply: sendUnaryData<MountResponse>) {
      const started = performance.now();
      const finish = (code: 'ok' | MountErrorCode): void => {
        // NotModified is a remount with nothing new, an answer rather than a failure.
        const labels =
          code === 'ok' || code === 'NotModified'
            ? { outcome: code === 'ok' ? 'ok' : 'not_modified' }
            : { outcome: 'failed', reason: code };
        mounts.inc(labels);
        mountSeconds.observe({ outcome: labels.outcome }, (performance.now() - started) / 1000);
      };
      options.mount(call.request).then(
        (response) => {
          finish('ok');
          reply(null, response);
        },
        (error: unknown) => {
          const failure = mountFailure(error);
          finish(failure.errorCode);
          if (failure.errorCode === 'Internal') {
            logger.error(
              { errorClass: error instanceof Error ? error.name : typeof error },
              'mount failed unexpectedly',
            );
          }
          reply({ code: failure.code, details: failure.details, metadata: failure.metadata });
        },
      );
    },
  };
  server.addService(providerServiceDefinition(), implementation);

  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (error) =>
      error ? reject(error) : resolve(),
    );
  });
  // Only root on the node (the driver) may call: the socket hands out secrets.
  await chmod(socketPath, 0o600);
  logger.info({ socketPath }, 'CSI provider listening');

  return {
    socketPath,
    async close(graceMs = 10_000) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await rm(socketPath, { force: true });
    },
  };
}
