/**
 * What `AwsClients.preload` rehearses with: request handlers that answer from memory, so the SDK's
 * modules, first client and first call are paid for at start-up (before readiness) without a byte
 * sent to AWS and without credentials.
 */
import { Readable } from 'node:stream';

/** An SDK request handler that answers every request with `body`, for `preload`'s rehearsal. */
export function answerFromMemory(contentType: string, body: string) {
  return {
    handle: () =>
      Promise.resolve({
        response: {
          statusCode: 200,
          reason: 'OK',
          headers: { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) },
          body: Readable.from([Buffer.from(body)]),
        },
      }),
    updateHttpClientConfig: (): void => {},
    httpHandlerConfigs: () => ({}),
    destroy: (): void => {},
  };
}

export const rehearsalAssumeRoleAnswer =
  '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>' +
  '<Credentials><AccessKeyId>rehearsal</AccessKeyId><SecretAccessKey>rehearsal</SecretAccessKey>' +
  '<SessionToken>rehearsal</SessionToken><Expiration>2100-01-01T00:00:00Z</Expiration></Credentials>' +
  '</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>';

export function rehearsalBatchAnswer(region: string): string {
  return JSON.stringify({
    SecretValues: [
      {
        ARN: `arn:aws:secretsmanager:${region}:000000000000:secret:rehearsal-AbCdEf`,
        Name: 'rehearsal',
        VersionId: '00000000-0000-4000-8000-000000000000',
        SecretString: '{"rehearsal":"rehearsal"}',
        VersionStages: ['AWSCURRENT'],
        CreatedDate: 1_700_000_000,
      },
    ],
    Errors: [],
  });
}
