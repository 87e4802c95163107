/**
 * A small promise client for the provider socket, as the driver dials it (insecure, unix
 * socket). Used by tests, the benchmark and `smk csi-provider --probe`.
 */
import { type Client, credentials, type Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  type MountRequest,
  type MountResponse,
  protocolVersion,
  providerClientConstructor,
  type VersionResponse,
} from './protocol.ts';
import { errorCodeTrailer } from './status.ts';

export interface ProviderClient {
  version(): Promise<VersionResponse>;
  mount(request: Partial<MountRequest>, timeoutMs?: number): Promise<MountResponse>;
  close(): void;
}

/** A failed call: the gRPC status, its message, and smk's error code from the trailers. */
export class MountCallError extends Error {
  readonly code: number;
  readonly details: string;
  readonly errorCode: string | undefined;

  constructor(error: ServiceError) {
    super(`${error.code} ${error.details}`);
    this.name = 'MountCallError';
    this.code = error.code;
    this.details = error.details;
    this.errorCode = trailer(error.metadata, errorCodeTrailer);
  }
}

function trailer(metadata: Metadata | undefined, key: string): string | undefined {
  const value = metadata?.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

type Callback<T> = (error: ServiceError | null, value?: T) => void;
type UnaryMethod<Q, R> = (request: Q, options: { deadline: number }, callback: Callback<R>) => void;

function unary<Q, R>(client: Client, name: string): UnaryMethod<Q, R> {
  const method = (client as unknown as Record<string, UnaryMethod<Q, R>>)[name];
  if (typeof method !== 'function') throw new Error(`client has no ${name} method`);
  return method.bind(client);
}

export function connectProvider(socketPath: string): ProviderClient {
  const Constructor = providerClientConstructor();
  const client = new Constructor(`unix://${socketPath}`, credentials.createInsecure());
  const call = <Q, R>(name: string, request: Q, timeoutMs: number): Promise<R> =>
    new Promise((resolve, reject) => {
      unary<Q, R>(client, name)(request, { deadline: Date.now() + timeoutMs }, (error, value) => {
        if (error) reject(new MountCallError(error));
        else if (value === undefined) reject(new Error(`${name}: empty reply`));
        else resolve(value);
      });
    });
  return {
    version: () => call<{ version: string }, VersionResponse>('Version', { version: protocolVersion }, 5_000),
    mount: (request, timeoutMs = 30_000) =>
      call<Partial<MountRequest>, MountResponse>('Mount', request, timeoutMs),
    close: () => client.close(),
  };
}
