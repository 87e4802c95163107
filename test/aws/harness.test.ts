import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { connectMoto, startMoto } from '../harness/moto.ts';
import { moto, uniquePrefix } from './support.ts';

test('connectMoto fails loudly without AWS_ENDPOINT_URL (integration tests never skip)', () => {
  const saved = process.env.AWS_ENDPOINT_URL;
  delete process.env.AWS_ENDPOINT_URL;
  try {
    assert.throws(() => connectMoto(), /AWS_ENDPOINT_URL is not set: integration tests need moto/);
  } finally {
    process.env.AWS_ENDPOINT_URL = saved;
  }
  assert.equal(connectMoto().endpoint, moto.endpoint);
});

test('startMoto runs its own server; the recorder counts calls by API and access key; stop ends it', async (t) => {
  // A private server: the shared one's recorder is global and other test files run alongside.
  const own = await startMoto();
  t.after(() => own.stop());
  const credentials = { accessKeyId: 'AKIDRECORDER', secretAccessKey: 'testing' };
  const secrets = new SecretsManagerClient({ region: 'us-east-1', endpoint: own.endpoint, credentials });
  const sts = new STSClient({ region: 'us-east-1', endpoint: own.endpoint, credentials });
  t.after(() => {
    secrets.destroy();
    sts.destroy();
  });
  const name = uniquePrefix('recorder');
  await secrets.send(new CreateSecretCommand({ Name: name, SecretString: 'v' }));
  await own.recorder.reset();
  await own.recorder.start();
  await secrets.send(new GetSecretValueCommand({ SecretId: name, VersionStage: 'AWSCURRENT' }));
  await sts.send(
    new AssumeRoleWithWebIdentityCommand({
      RoleArn: 'arn:aws:iam::123456789012:role/r',
      RoleSessionName: 's',
      WebIdentityToken: 't',
    }),
  );
  await own.recorder.stop();
  const calls = await own.recorder.download();
  assert.deepEqual(
    calls.map((call) => [call.api, call.accessKeyId]),
    [
      ['GetSecretValue', 'AKIDRECORDER'],
      ['AssumeRoleWithWebIdentity', undefined],
    ],
  );
  await own.stop();
  await assert.rejects(fetch(`${own.endpoint}/moto-api/`), 'the server is gone');
});

test('startMoto with a missing python says how to fix it', async () => {
  await assert.rejects(
    startMoto({ python: '/nonexistent/python' }),
    /could not run \/nonexistent\/python.*SMK_MOTO_PYTHON/s,
  );
});
