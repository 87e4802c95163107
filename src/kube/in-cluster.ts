/**
 * The pod's in-cluster configuration without client-node: the kubernetes Service from
 * KUBERNETES_SERVICE_HOST/PORT, the cluster CA and the ServiceAccount token from the files the
 * kubelet mounts. The webhook talks to the API server through this alone, so its process never
 * loads client-node's ~40 MiB of modules.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from 'undici';
import { InvalidInputError, TransientError } from '../core/errors.ts';
import { KubeEndpoint } from './endpoint.ts';

/** Where the kubelet mounts the ServiceAccount's token and the cluster CA (client-go reads them there). */
export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/** As PooledKubeConfig's: a request on a connection a middlebox froze fails instead of waiting 300 s. */
const headersTimeoutMs = 60_000;
/** A bound token rotates in its file; it is read again when the file changes, and at least this often (as client-go). */
const tokenRereadMs = 60_000;

function fileProblem(path: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return `${path}: ${typeof code === 'string' ? code : 'unreadable'}`;
}

/** Where the API server is from inside a pod: KUBERNETES_SERVICE_HOST and _PORT (read by src/config.ts). */
export interface InClusterEnvironment {
  readonly host: string;
  readonly port: number;
}

/** The API server at the kubernetes Service, trusted by the mounted CA, as the pod's ServiceAccount. */
export async function inClusterEndpoint(
  environment: InClusterEnvironment,
  dir: string = serviceAccountDir,
): Promise<KubeEndpoint> {
  const caFile = join(dir, 'ca.crt');
  const tokenFile = join(dir, 'token');
  const ca = await readFile(caFile, 'utf8').catch((error: unknown) => {
    throw new InvalidInputError(`in-cluster configuration: ${fileProblem(caFile, error)}`, {
      subject: 'in-cluster configuration',
      field: caFile,
    });
  });
  const dispatcher = new Agent({ connect: { ca }, headersTimeout: headersTimeoutMs });
  // An IPv6 Service address goes in brackets in the URL.
  const host = environment.host.includes(':') ? `[${environment.host}]` : environment.host;

  let token: { readonly value: string; readonly version: string; readonly at: number } | undefined;
  async function currentToken(): Promise<string> {
    try {
      const facts = await stat(tokenFile);
      // The kubelet swaps the file through a symlink, so a new token is a new inode.
      const version = `${facts.ino}:${facts.mtimeMs}:${facts.size}`;
      const now = performance.now();
      if (!token || token.version !== version || now - token.at >= tokenRereadMs) {
        token = { value: (await readFile(tokenFile, 'utf8')).trim(), version, at: now };
      }
    } catch (error) {
      throw new TransientError(`in-cluster configuration: ${fileProblem(tokenFile, error)}`, {
        subject: 'in-cluster configuration',
        cause: error,
      });
    }
    if (!token.value) {
      throw new TransientError(`in-cluster configuration: ${tokenFile} is empty`, {
        subject: 'in-cluster configuration',
      });
    }
    return token.value;
  }

  return new KubeEndpoint(`https://${host}:${environment.port}`, async () => ({
    dispatcher,
    headers: { authorization: `Bearer ${await currentToken()}` },
  }));
}
