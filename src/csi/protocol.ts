/**
 * The driver's provider protocol (v1alpha1.CSIDriverProvider), loaded from ./proto at run time.
 * This module sits directly in src/csi so that `./proto/service.proto` resolves both from the
 * sources and from the bundle (the build copies src/csi/proto to dist/proto, beside the chunks).
 */
import { fileURLToPath } from 'node:url';
import { makeGenericClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export const serviceName = 'v1alpha1.CSIDriverProvider';
export const protocolVersion = 'v1alpha1';

export interface ObjectVersion {
  readonly id: string;
  readonly version: string;
}

export interface VersionRequest {
  readonly version: string;
}

export interface VersionResponse {
  readonly version: string;
  readonly runtime_name: string;
  readonly runtime_version: string;
}

export interface MountRequest {
  readonly attributes: string;
  readonly secrets: string;
  readonly target_path: string;
  readonly permission: string;
  readonly current_object_version: readonly ObjectVersion[];
}

export interface MountFile {
  readonly path: string;
  /** Permission bits as a number (0o644 is sent as 420). */
  readonly mode: number;
  readonly contents: Uint8Array;
}

export interface MountResponse {
  readonly object_version: readonly ObjectVersion[];
  readonly error?: { readonly code: string } | null;
  readonly files: readonly MountFile[];
}

/** The service's two methods, typed: what the server implements and a client calls. */
export interface ProviderService {
  Version: { request: VersionRequest; response: VersionResponse };
  Mount: { request: MountRequest; response: MountResponse };
}

export function protoPath(): string {
  return fileURLToPath(new URL('./proto/service.proto', import.meta.url));
}

let definition: ServiceDefinition | undefined;

/** The service definition (loaded once; field names as in the .proto, bytes as Buffer). */
export function providerServiceDefinition(): ServiceDefinition {
  if (definition) return definition;
  const packageDefinition = loadSync(protoPath(), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const service = packageDefinition[serviceName];
  if (service === undefined || !('Mount' in service) || !('Version' in service)) {
    throw new Error(`${protoPath()} does not define ${serviceName} with Mount and Version`);
  }
  definition = service as ServiceDefinition;
  return definition;
}

/** A generic client constructor for the service (tests, the benchmark, health checks). */
export function providerClientConstructor(): ReturnType<typeof makeGenericClientConstructor> {
  return makeGenericClientConstructor(providerServiceDefinition(), 'CSIDriverProvider');
}
