/**
 * A loopback TCP balancer standing in for a Service: each new connection goes to the next backend
 * in turn (kube-proxy balances connections, not requests); a backend that refuses the connection
 * is skipped, as a not-ready endpoint would be. TLS passes through untouched.
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';

export interface Balancer {
  readonly port: number;
  /** Connections handed to each backend port. */
  connectionsByBackend(): Record<number, number>;
  stop(): Promise<void>;
}

export async function startBalancer(backends: readonly number[]): Promise<Balancer> {
  const counts: Record<number, number> = {};
  const sockets = new Set<Socket>();
  let next = 0;

  const dial = (client: Socket, attempt: number): void => {
    if (attempt >= backends.length) {
      client.destroy();
      return;
    }
    const port = backends[next % backends.length] ?? 0;
    next += 1;
    const upstream = connect(port, '127.0.0.1');
    let connected = false;
    upstream.once('error', () => {
      if (!connected) dial(client, attempt + 1);
      else client.destroy();
    });
    upstream.once('connect', () => {
      connected = true;
      counts[port] = (counts[port] ?? 0) + 1;
      sockets.add(upstream);
      upstream.once('close', () => sockets.delete(upstream));
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
    });
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    dial(client, 0);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('balancer has no port');
  return {
    port: address.port,
    connectionsByBackend: () => ({ ...counts }),
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
