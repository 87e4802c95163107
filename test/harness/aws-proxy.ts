/**
 * A loopback HTTP proxy in front of moto, one per test: it counts calls per API (X-Amz-Target
 * of JSON services, `Action=` of query services such as STS) and per access key id, and injects
 * faults a test switches on — throttling, 5xx, latency, connection reset, full outage, and
 * "refuse this access key id" (moto does not evaluate resource-scoped IAM policies, so this is
 * how a test proves a refused identity is not served from a cache).
 */
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { accessKeyIdOf, apiOf } from './moto.ts';

export type Fault =
  /** HTTP 400 ThrottlingException (JSON services) or 400 Throttling (query services). */
  | { readonly kind: 'throttle' }
  /** This HTTP status (5xx) with an error document. */
  | { readonly kind: 'status'; readonly status: number }
  /** Wait this long, then forward as usual. */
  | { readonly kind: 'latency'; readonly ms: number }
  /** Read the request, then destroy the connection without an answer. */
  | { readonly kind: 'reset' }
  /** Every connection is closed as soon as it is accepted (and open ones are dropped). */
  | { readonly kind: 'outage' }
  /**
   * AccessDeniedException (HTTP 400, JSON) for the matching calls; with `xml`, the 403 XML
   * document moto sends, which SDK v3 JSON clients fail to parse (moto.md #6).
   */
  | { readonly kind: 'deny'; readonly xml?: boolean };

export interface FaultRule {
  readonly fault: Fault;
  /** Only calls of this API (e.g. `BatchGetSecretValue`); default all. */
  readonly api?: string;
  /** Only calls signed with this access key id; default all. */
  readonly accessKeyId?: string;
  /** Only this many matching calls, then the rule is spent; default every call. */
  readonly times?: number;
}

export interface ProxyCall {
  readonly api: string | undefined;
  /** Signing service from the credential scope (`secretsmanager`, `ssm`, `sts`). */
  readonly service: string | undefined;
  readonly accessKeyId: string | undefined;
  /** HTTP status answered, or `reset` when the connection was dropped. */
  readonly outcome: number | 'reset';
  /** Ids asked for (SecretId, SecretIdList, Name, Names) — never values. */
  readonly ids: readonly string[];
  /** When the call was answered (Date.now()), for call rates over time. */
  readonly at: number;
}

export interface CallFilter {
  readonly api?: string;
  readonly accessKeyId?: string;
  readonly service?: string;
}

export interface AwsProxy {
  /** Give this to the client as its endpoint. */
  readonly endpoint: string;
  calls(): readonly ProxyCall[];
  count(filter?: CallFilter): number;
  countsByApi(): Record<string, number>;
  countsByAccessKey(): Record<string, number>;
  /** Connections closed on accept during an outage. */
  refusedConnections(): number;
  resetCounts(): void;
  /**
   * Resolves once no call is being forwarded. A call forwarded just before addFault may still be
   * answered by moto after the test's next write to moto; await this between the two.
   */
  idle(): Promise<void>;
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Answer every call signed with this key id with AccessDeniedException. */
  refuseAccessKey(accessKeyId: string): void;
  allowAccessKey(accessKeyId: string): void;
  stop(): Promise<void>;
}

export interface AwsProxyOptions {
  /** Where to forward; default AWS_ENDPOINT_URL. */
  readonly target?: string;
}

interface ActiveRule {
  readonly rule: FaultRule;
  remaining: number;
}

/** The ids a JSON request names; anything else in the body (values) is not kept. */
function idsOf(body: string, json: boolean): string[] {
  if (!json) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  if (typeof parsed !== 'object' || parsed === null) return [];
  const fields = parsed as Record<string, unknown>;
  const ids: string[] = [];
  for (const key of ['SecretId', 'Name', 'SecretIdList', 'Names']) {
    const value = fields[key];
    if (typeof value === 'string') ids.push(value);
    if (Array.isArray(value)) ids.push(...value.filter((item): item is string => typeof item === 'string'));
  }
  return ids;
}

function scopeServiceOf(authorization: string | undefined): string | undefined {
  const match = authorization ? /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(authorization) : null;
  return match?.[1];
}

/** JSON services carry X-Amz-Target; query services (STS, IAM, SQS query) answer XML. */
function errorAnswer(response: ServerResponse, json: boolean, status: number, code: string, message: string) {
  if (json) {
    const body = JSON.stringify({ __type: code, message });
    response.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(body),
    });
    response.end(body);
    return;
  }
  const type = status >= 500 ? 'Receiver' : 'Sender';
  const body =
    `<ErrorResponse><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error>` +
    '<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>';
  response.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function startAwsProxy(options: AwsProxyOptions = {}): Promise<AwsProxy> {
  const targetText = options.target ?? process.env.AWS_ENDPOINT_URL;
  if (!targetText) throw new Error('startAwsProxy: no target (pass one or set AWS_ENDPOINT_URL)');
  const target = new URL(targetText);
  const upstream = new Agent({ keepAlive: true });
  const calls: ProxyCall[] = [];
  const rules: ActiveRule[] = [];
  const refused = new Set<string>();
  const sockets = new Set<Socket>();
  let outage = false;
  let refusedConnections = 0;
  let forwarding = 0;
  const idleWaiters: (() => void)[] = [];
  const forwardDone = (): void => {
    forwarding -= 1;
    if (forwarding > 0) return;
    for (const wake of idleWaiters.splice(0)) wake();
  };

  const takeFault = (api: string | undefined, accessKeyId: string | undefined): Fault | undefined => {
    for (const active of rules) {
      const { rule } = active;
      if (active.remaining <= 0) continue;
      if (rule.api !== undefined && rule.api !== api) continue;
      if (rule.accessKeyId !== undefined && rule.accessKeyId !== accessKeyId) continue;
      active.remaining -= 1;
      return rule.fault;
    }
    return undefined;
  };

  const handle = async (incoming: IncomingMessage, response: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const header = (name: string): string | undefined => {
      const value = incoming.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const target_ = header('x-amz-target');
    const authorization = header('authorization');
    const api = apiOf(target_, incoming.url ?? '', body.toString('utf8'));
    const accessKeyId = accessKeyIdOf(authorization);
    const service = scopeServiceOf(authorization);
    const json = target_ !== undefined;
    const ids = idsOf(body.toString('utf8'), json);
    const record = (outcome: number | 'reset'): void => {
      calls.push({ api, service, accessKeyId, outcome, ids, at: Date.now() });
    };

    if (outage) {
      record('reset');
      incoming.socket.destroy();
      return;
    }
    if (accessKeyId !== undefined && refused.has(accessKeyId)) {
      record(json ? 400 : 403);
      errorAnswer(
        response,
        json,
        json ? 400 : 403,
        json ? 'AccessDeniedException' : 'AccessDenied',
        'User is not authorized to perform this operation',
      );
      return;
    }
    const fault = takeFault(api, accessKeyId);
    switch (fault?.kind) {
      case 'throttle':
        record(400);
        errorAnswer(response, json, 400, json ? 'ThrottlingException' : 'Throttling', 'Rate exceeded');
        return;
      case 'status':
        record(fault.status);
        errorAnswer(
          response,
          json,
          fault.status,
          fault.status === 503 ? 'ServiceUnavailable' : 'InternalServiceError',
          'injected failure',
        );
        return;
      case 'reset':
        record('reset');
        incoming.socket.destroy();
        return;
      case 'deny':
        if (fault.xml === true || !json) {
          record(403);
          errorAnswer(
            response,
            false,
            403,
            'AccessDenied',
            'User is not authorized to perform this operation',
          );
        } else {
          record(400);
          errorAnswer(
            response,
            true,
            400,
            'AccessDeniedException',
            'User is not authorized to perform this operation',
          );
        }
        return;
      case 'outage':
        record('reset');
        outage = true;
        for (const socket of sockets) socket.destroy();
        return;
      case 'latency':
        await delay(fault.ms);
        if (incoming.socket.destroyed) {
          record('reset');
          return;
        }
        break;
      case undefined:
        break;
    }

    forwarding += 1;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      forwardDone();
    };
    response.once('close', settle);
    const forwarded = request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: incoming.method,
      path: incoming.url,
      headers: incoming.headers,
      agent: upstream,
    });
    forwarded.on('response', (answer) => {
      record(answer.statusCode ?? 502);
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    forwarded.on('error', () => {
      record(502);
      if (!response.headersSent) errorAnswer(response, json, 502, 'InternalFailure', 'upstream failed');
      else response.destroy();
    });
    forwarded.end(body);
  };

  const server = createServer((incoming, response) => {
    handle(incoming, response).catch(() => {
      incoming.socket.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket: Socket) => {
    if (outage) {
      refusedConnections += 1;
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');

  const matches = (call: ProxyCall, filter: CallFilter): boolean =>
    (filter.api === undefined || call.api === filter.api) &&
    (filter.accessKeyId === undefined || call.accessKeyId === filter.accessKeyId) &&
    (filter.service === undefined || call.service === filter.service);
  const tally = (by: (call: ProxyCall) => string | undefined): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const call of calls) {
      const key = by(call) ?? '(none)';
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  };

  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    calls: () => [...calls],
    count: (filter = {}) => calls.filter((call) => matches(call, filter)).length,
    countsByApi: () => tally((call) => call.api),
    countsByAccessKey: () => tally((call) => call.accessKeyId),
    refusedConnections: () => refusedConnections,
    idle: () =>
      forwarding === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            idleWaiters.push(resolve);
          }),
    resetCounts: () => {
      calls.length = 0;
      refusedConnections = 0;
    },
    addFault: (rule) => {
      if (rule.fault.kind === 'outage' && rule.api === undefined && rule.accessKeyId === undefined) {
        outage = true;
        for (const socket of sockets) socket.destroy();
        return;
      }
      rules.push({ rule, remaining: rule.times ?? Number.POSITIVE_INFINITY });
    },
    clearFaults: () => {
      rules.length = 0;
      outage = false;
    },
    refuseAccessKey: (accessKeyId) => {
      refused.add(accessKeyId);
    },
    allowAccessKey: (accessKeyId) => {
      refused.delete(accessKeyId);
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      upstream.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
