import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessDeniedError } from '../core/errors.ts';
import { AwsClients } from './clients.ts';
import { createSecretWriter } from './write.ts';

interface Sent {
  readonly command: string;
  readonly input: Record<string, unknown>;
}

/** A writer whose SDK client answers from `answer`; every command sent is recorded. */
function fakeWriter(answer: (command: string, input: Record<string, unknown>) => unknown) {
  const sent: Sent[] = [];
  const clients = new AwsClients({ maxAttempts: 1 });
  const client = {
    async send(command: { constructor: { name: string }; input: Record<string, unknown> }) {
      const name = command.constructor.name.replace(/Command$/, '');
      sent.push({ command: name, input: command.input });
      const result = answer(name, command.input);
      if (result instanceof Error) throw result;
      return result;
    },
  };
  clients.secretsManager = (() => client) as unknown as AwsClients['secretsManager'];
  const writer = createSecretWriter(
    { kind: 'static', accessKeyId: 'AKID', secretAccessKey: 'x' },
    'eu-west-1',
    {
      clients,
    },
  );
  return { writer, sent };
}

function awsError(name: string, status: number): Error {
  return Object.assign(new Error(`${name} with text that must not be echoed: hunter2`), {
    name,
    $metadata: { httpStatusCode: status },
  });
}

const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:kubernetes/a/db-AbCdEf';

test('create sends value, token and tags in one call; an existing name is an answer, not a failure', async () => {
  const { writer, sent } = fakeWriter(() =>
    sent.length === 1
      ? { ARN: arn, Name: 'kubernetes/a/db', VersionId: 't'.repeat(64) }
      : awsError('ResourceExistsException', 400),
  );
  const created = await writer.create({
    name: 'kubernetes/a/db',
    value: '{"k":"v"}',
    clientRequestToken: 't'.repeat(64),
    tags: { 'smk.dev/namespace': 'a' },
    description: 'd',
  });
  assert.deepEqual(created, {
    created: true,
    version: { arn, name: 'kubernetes/a/db', versionId: 't'.repeat(64), stages: ['AWSCURRENT'] },
  });
  assert.deepEqual(sent[0], {
    command: 'CreateSecret',
    input: {
      Name: 'kubernetes/a/db',
      SecretString: '{"k":"v"}',
      ClientRequestToken: 't'.repeat(64),
      Tags: [{ Key: 'smk.dev/namespace', Value: 'a' }],
      Description: 'd',
    },
  });
  assert.deepEqual(
    await writer.create({
      name: 'kubernetes/a/db',
      value: '{}',
      clientRequestToken: 'u'.repeat(64),
      tags: {},
    }),
    { created: false },
  );
});

test('putValue stages the version as asked and reports its labels', async () => {
  const { writer, sent } = fakeWriter(() => ({
    ARN: arn,
    Name: 'n',
    VersionId: 'v2',
    VersionStages: ['smk-pending'],
  }));
  const put = await writer.putValue({
    id: arn,
    value: '{}',
    clientRequestToken: 'v2',
    stages: ['smk-pending'],
  });
  assert.deepEqual(put, { arn, name: 'n', versionId: 'v2', stages: ['smk-pending'] });
  assert.deepEqual(sent[0]?.input.VersionStages, ['smk-pending']);
});

test('describe returns tags and stages, and undefined for a secret that is not there', async () => {
  const { writer } = fakeWriter((_command, input) =>
    input.SecretId === 'gone'
      ? awsError('ResourceNotFoundException', 400)
      : {
          ARN: arn,
          Name: 'kubernetes/a/db',
          Tags: [{ Key: 'smk.dev/name', Value: 'db' }],
          VersionIdsToStages: { v1: ['AWSCURRENT'] },
          DeletedDate: new Date(0),
        },
  );
  const described = await writer.describe(arn);
  assert.equal(described?.tags['smk.dev/name'], 'db');
  assert.deepEqual(described?.versionsToStages.get('v1'), ['AWSCURRENT']);
  assert.deepEqual(described?.deletedDate, new Date(0));
  assert.equal(await writer.describe('gone'), undefined);
});

test('stage moves name the version holding the label only when there is one', async () => {
  const { writer, sent } = fakeWriter(() => ({}));
  await writer.moveStage(arn, 'AWSCURRENT', 'v2', 'v1');
  await writer.moveStage(arn, 'AWSCURRENT', 'v2');
  await writer.removeStage(arn, 'smk-pending', 'v2');
  assert.deepEqual(
    sent.map((call) => call.input),
    [
      { SecretId: arn, VersionStage: 'AWSCURRENT', MoveToVersionId: 'v2', RemoveFromVersionId: 'v1' },
      { SecretId: arn, VersionStage: 'AWSCURRENT', MoveToVersionId: 'v2' },
      { SecretId: arn, VersionStage: 'smk-pending', RemoveFromVersionId: 'v2' },
    ],
  );
});

test('delete schedules with a window or forces; a secret already gone counts as deleted', async () => {
  const { writer, sent } = fakeWriter((_command, input) =>
    input.SecretId === 'gone' ? awsError('ResourceNotFoundException', 400) : {},
  );
  await writer.delete(arn, { recoveryWindowDays: 7 });
  await writer.delete(arn, { force: true });
  await writer.delete('gone', { force: true });
  assert.deepEqual(sent[0]?.input, { SecretId: arn, RecoveryWindowInDays: 7 });
  assert.deepEqual(sent[1]?.input, { SecretId: arn, ForceDeleteWithoutRecovery: true });
});

test('listByTag pages through and keeps only the exact tag pair and prefix', async () => {
  const entry = (name: string, cluster: string) => ({
    ARN: `${arn}-${name}`,
    Name: name,
    Tags: [
      { Key: 'smk.dev/cluster', Value: cluster },
      { Key: 'other', Value: 'prod' },
    ],
  });
  const { writer, sent } = fakeWriter((_command, input) =>
    input.NextToken === undefined
      ? { SecretList: [entry('kubernetes/a/x', 'prod'), entry('kubernetes/a/y', 'dev')], NextToken: 'p2' }
      : { SecretList: [entry('elsewhere/z', 'prod'), entry('kubernetes/b/z', 'prod')] },
  );
  const found = await writer.listByTag({
    tagKey: 'smk.dev/cluster',
    tagValue: 'prod',
    namePrefix: 'kubernetes/',
  });
  assert.deepEqual(
    found.map((secret) => secret.name),
    ['kubernetes/a/x', 'kubernetes/b/z'],
  );
  assert.equal(sent.length, 2);
  assert.equal(sent[0]?.input.IncludePlannedDeletion, true);
});

test('failures are sentinel errors naming the API and secret, never the SDK text', async () => {
  const { writer } = fakeWriter(() => awsError('AccessDeniedException', 400));
  await assert.rejects(
    writer.putValue({ id: arn, value: 'hunter2', clientRequestToken: 'x'.repeat(32) }),
    (error: unknown) =>
      error instanceof AccessDeniedError &&
      error.message.startsWith(`PutSecretValue ${arn} in eu-west-1: access denied`) &&
      !error.message.includes('hunter2'),
  );
});
