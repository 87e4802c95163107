/**
 * A loopback TCP proxy for faults below HTTP: in front of the kube-apiserver it passes TLS through
 * untouched (the serving certificate names 127.0.0.1), so a client cannot tell it is there until
 * a test switches on a fault:
 *   outage   every open connection is dropped and new ones are closed on accept (the API server
 *            restarting, as seen from a client);
 *   stall    open connections stop carrying bytes but stay open (a watch that goes silent, a
 *            half-dead load balancer); new connections work. With `resetOnClientWrite`, a
 *            frozen connection the client writes to again is reset, as a NAT or load balancer
 *            that lost the connection's state answers (so only a connection the client just
 *            listens on — a watch — stays silent);
 *   latency  every chunk is held this long in each direction.
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';

export interface TcpFaultProxy {
  /** host:port to dial instead of the target. */
  readonly address: string;
  setOutage(on: boolean): void;
  /** Freezes the connections open now; those opened later are not affected. */
  stallOpenConnections(options?: { readonly resetOnClientWrite?: boolean }): void;
  /** Drops every open connection once (a reset); new ones are accepted. */
  resetOpenConnections(): void;
  setLatency(ms: number): void;
  /** Connections accepted and forwarded, and closed on accept during an outage. */
  stats(): { accepted: number; refused: number; open: number };
  stop(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  stalled: boolean;
  resetOnClientWrite: boolean;
}

export async function startTcpFaultProxy(target: { host: string; port: number }): Promise<TcpFaultProxy> {
  const pairs = new Set<Pair>();
  let outage = false;
  let latencyMs = 0;
  let accepted = 0;
  let refused = 0;

  const forward = (pair: Pair, from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (pair.stalled && pair.resetOnClientWrite && from === pair.client) {
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
        return;
      }
      if (pair.stalled) return;
      if (latencyMs === 0) to.write(chunk);
      else setTimeout(() => !pair.stalled && !to.destroyed && to.write(chunk), latencyMs);
    });
  };

  const server = createServer((client) => {
    if (outage) {
      refused += 1;
      client.destroy();
      return;
    }
    accepted += 1;
    const upstream = connect(target.port, target.host);
    const pair: Pair = { client, upstream, stalled: false, resetOnClientWrite: false };
    pairs.add(pair);
    forward(pair, client, upstream);
    forward(pair, upstream, client);
    const close = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
      socket.on('end', close);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy has no port');

  const dropAll = (): void => {
    for (const pair of pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    pairs.clear();
  };

  return {
    address: `127.0.0.1:${address.port}`,
    setOutage(on) {
      outage = on;
      if (on) dropAll();
    },
    stallOpenConnections(options = {}) {
      for (const pair of pairs) {
        pair.stalled = true;
        pair.resetOnClientWrite = options.resetOnClientWrite === true;
      }
    },
    resetOpenConnections: dropAll,
    setLatency(ms) {
      latencyMs = ms;
    },
    stats: () => ({ accepted, refused, open: pairs.size }),
    async stop() {
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
