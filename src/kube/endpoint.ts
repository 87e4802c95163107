/**
 * Where the undici transport (./http.ts) sends requests and with which credentials, without
 * client-node: a KubeConfig (./client.ts) or the pod's in-cluster ServiceAccount (./in-cluster.ts)
 * becomes one of these.
 */
import type { Dispatcher } from 'undici';
import type { KubeConfig } from './client.ts';

/** The connection pool and the headers (Authorization) for the next requests. */
export interface KubeConnection {
  readonly dispatcher: Dispatcher | undefined;
  readonly headers: Record<string, string>;
}

export class KubeEndpoint {
  /** The API server's URL (`https://10.0.0.1:443`). */
  readonly server: string;
  /** The pool and the current credentials: asked again at most once a second by the transport, so a rotated token is picked up. */
  readonly connection: () => Promise<KubeConnection>;

  constructor(server: string, connection: () => Promise<KubeConnection>) {
    this.server = server;
    this.connection = connection;
  }
}

/** What a role talks to the API server with: a kubeconfig (client-node), or an endpoint that needs none. */
export type KubeAccess = KubeConfig | KubeEndpoint;
