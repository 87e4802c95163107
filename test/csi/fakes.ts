/**
 * Two small loopback servers for the identity tests: a recorder in front of the AWS endpoint that
 * notes each AssumeRoleWithWebIdentity (which role, which session, which token) and forwards
 * everything, and a Pod Identity agent that hands out fixed credentials for one expected token.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';

export interface AssumedRole {
  readonly roleArn: string | null;
  readonly sessionName: string | null;
  readonly token: string | null;
}

/** One sts:AssumeRole (role chaining): what was asked and which access key signed it. */
export interface ChainedRole {
  readonly roleArn: string | null;
  readonly sessionName: string | null;
  readonly externalId: string | null;
  readonly tags: Readonly<Record<string, string>>;
  readonly signedBy: string | undefined;
}

export interface StsRecorder {
  readonly endpoint: string;
  /** Where requests go on to (set before the first request). */
  target: string;
  readonly assumed: AssumedRole[];
  readonly chained: ChainedRole[];
  /** Access key ids STS issued (AssumeRoleWithWebIdentity and AssumeRole answers), by role ARN asked for. */
  readonly issued: Map<string, string[]>;
  stop(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

async function body(incoming: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startStsRecorder(): Promise<StsRecorder> {
  const assumed: AssumedRole[] = [];
  const chained: ChainedRole[] = [];
  const issued = new Map<string, string[]>();
  const recorder = { target: '' };
  const server = createServer((incoming, response) => {
    void (async () => {
      const payload = await body(incoming);
      const form = new URLSearchParams(payload.toString('utf8'));
      if (form.get('Action') === 'AssumeRoleWithWebIdentity') {
        assumed.push({
          roleArn: form.get('RoleArn'),
          sessionName: form.get('RoleSessionName'),
          token: form.get('WebIdentityToken'),
        });
      }
      const action = form.get('Action');
      if (action === 'AssumeRole') {
        const tags: Record<string, string> = {};
        for (let n = 1; form.has(`Tags.member.${n}.Key`); n++) {
          tags[form.get(`Tags.member.${n}.Key`) ?? ''] = form.get(`Tags.member.${n}.Value`) ?? '';
        }
        chained.push({
          roleArn: form.get('RoleArn'),
          sessionName: form.get('RoleSessionName'),
          externalId: form.get('ExternalId'),
          tags,
          signedBy: /Credential=([^/]+)\//.exec(incoming.headers.authorization ?? '')?.[1],
        });
      }
      const roleArn = form.get('RoleArn');
      const noteIssued = (answer: Buffer): void => {
        const key = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(answer.toString('utf8'))?.[1];
        if (key === undefined || roleArn === null) return;
        issued.set(roleArn, [...(issued.get(roleArn) ?? []), key]);
      };
      const target = new URL(recorder.target);
      const forwarded = request(
        {
          hostname: target.hostname,
          port: target.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          if (action === 'AssumeRole' || action === 'AssumeRoleWithWebIdentity') {
            void body(answer).then((answered) => {
              noteIssued(answered);
              response.end(answered);
            });
            return;
          }
          answer.pipe(response);
        },
      );
      forwarded.on('error', () => response.destroy());
      forwarded.end(payload);
    })();
  });
  const endpoint = await listen(server);
  return {
    endpoint,
    get target() {
      return recorder.target;
    },
    set target(value: string) {
      recorder.target = value;
    },
    assumed,
    chained,
    issued,
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export interface PodIdentityAgent {
  readonly endpoint: string;
  readonly accessKeyId: string;
  /** Authorization headers received, in order. */
  readonly tokens: string[];
  /** Hand out credentials for this token from now on. */
  allow(token: string): void;
  stop(): Promise<void>;
}

/** Answers like the EKS Pod Identity agent: credentials for an allowed token, 401 otherwise. */
export async function startPodIdentityAgent(accessKeyId: string): Promise<PodIdentityAgent> {
  const tokens: string[] = [];
  const allowed = new Set<string>();
  const server = createServer((incoming, response) => {
    const token = incoming.headers.authorization ?? '';
    tokens.push(token);
    if (!allowed.has(token)) {
      response.writeHead(401).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        AccessKeyId: accessKeyId,
        SecretAccessKey: 'pod-identity-secret',
        Token: 'pod-identity-session',
        AccountId: '123456789012',
        Expiration: new Date(Date.now() + 3600_000).toISOString(),
      }),
    );
  });
  const base = await listen(server);
  return {
    endpoint: `${base}/v1/credentials`,
    accessKeyId,
    tokens,
    allow(token) {
      allowed.add(token);
    },
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
