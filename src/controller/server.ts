/**
 * `/healthz` (the process answers), `/readyz` (every controller runs: its caches synced and
 * watching) and `/metrics` (the one registry) for the controller's probes and scrapes. `/readyz`
 * lists one `[+]name ok` / `[-]name what it waits for` line per controller, as the API server's
 * `/readyz?verbose` does; `/readyz/NAME` answers for that controller alone (404 if none).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registry } from '../core/metrics.ts';
import { type ReadinessCheck, readinessReport } from '../kube/gate.ts';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(
  port: number,
  readiness: () => readonly ReadinessCheck[],
  host = '0.0.0.0',
): Promise<HealthServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz' || path?.startsWith('/readyz/')) {
      const name = path === '/readyz' ? undefined : path.slice('/readyz/'.length);
      const checks = readiness().filter((check) => name === undefined || check.name === name);
      if (checks.length === 0 && name !== undefined) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end(`no readiness check named ${name}\n`);
        return;
      }
      const report = readinessReport(checks);
      response.writeHead(report.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(report.text);
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => response.writeHead(500).end(),
      );
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
