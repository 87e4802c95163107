/**
 * A stand-in for AWS on the loopback interface, for a role's rehearsal before it reports ready:
 * requests go through the real clients, HTTP handler, signing, (de)serialisers, reader and cache
 * code, so the first real request after a start finds all of it loaded and compiled. It answers
 * the calls a read makes (STS AssumeRoleWithWebIdentity, Secrets Manager BatchGetSecretValue and
 * GetSecretValue, SSM GetParameters) with made-up values: no credentials, nothing of a tenant's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RehearsalAws {
  /** http://127.0.0.1:PORT, for AwsClients' `endpoint`. */
  readonly endpoint: string;
  close(): Promise<void>;
}

const versionId = '00000000-0000-4000-8000-000000000000';
const rehearsalValue = JSON.stringify({ username: 'rehearsal', password: 'rehearsal' });

const assumeRoleAnswer =
  '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>' +
  '<Credentials><AccessKeyId>rehearsal</AccessKeyId><SecretAccessKey>rehearsal</SecretAccessKey>' +
  '<SessionToken>rehearsal</SessionToken><Expiration>2100-01-01T00:00:00Z</Expiration></Credentials>' +
  '</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>';

function secretEntry(id: string) {
  return {
    ARN: `arn:aws:secretsmanager:us-east-1:000000000000:secret:${id}-AbCdEf`,
    Name: id,
    VersionId: versionId,
    SecretString: rehearsalValue,
    VersionStages: ['AWSCURRENT'],
    CreatedDate: 1_700_000_000,
  };
}

/** The JSON answer to one Secrets Manager or SSM call, by its X-Amz-Target; undefined: not one we rehearse. */
function jsonAnswer(target: string, body: Record<string, unknown>): unknown {
  const strings = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  switch (target) {
    case 'secretsmanager.BatchGetSecretValue':
      return { SecretValues: strings(body.SecretIdList).map(secretEntry), Errors: [] };
    case 'secretsmanager.GetSecretValue':
      return secretEntry(String(body.SecretId));
    case 'AmazonSSM.GetParameters':
      return {
        Parameters: strings(body.Names).map((name) => ({
          Name: name,
          ARN: `arn:aws:ssm:us-east-1:000000000000:parameter/${name.replace(/^\//, '')}`,
          Type: 'SecureString',
          Value: rehearsalValue,
          Version: 1,
        })),
        InvalidParameters: [],
      };
    default:
      return undefined;
  }
}

function answer(request: IncomingMessage, text: string, response: ServerResponse): void {
  const target = request.headers['x-amz-target'];
  if (typeof target === 'string') {
    const body = (() => {
      try {
        return JSON.parse(text) as Record<string, unknown>;
      } catch {
        return {};
      }
    })();
    const json = jsonAnswer(target, body);
    if (json !== undefined) {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(json));
      return;
    }
  } else if (new URLSearchParams(text).get('Action') === 'AssumeRoleWithWebIdentity') {
    response.writeHead(200, { 'content-type': 'text/xml' }).end(assumeRoleAnswer);
    return;
  }
  response
    .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
    .end(JSON.stringify({ __type: 'ValidationException', message: 'not rehearsed' }));
}

/** Starts the stand-in on 127.0.0.1 (a free port); close() ends it and its connections. */
export async function startRehearsalAws(): Promise<RehearsalAws> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => answer(request, Buffer.concat(chunks).toString('utf8'), response));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
