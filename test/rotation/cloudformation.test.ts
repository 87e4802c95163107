/**
 * deploy/aws/rotation.yaml: cfn-lint (from PyPI, in the test venv) must pass it and refuse a broken
 * template, and the template must say what the rotation design relies on: only the two rules may
 * send to the queue, the queue has a dead-letter queue, and the role is assumable only by the
 * controller's ServiceAccount.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse, type Tags } from 'yaml';
import { motoPython } from '../harness/moto.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url);
const template = new URL('deploy/aws/rotation.yaml', root).pathname;
const broken = new URL('test/rotation/fixtures/template-open-queue.yaml', root).pathname;
const cfnLint = join(dirname(motoPython()), 'cfn-lint');

async function lint(path: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(cfnLint, [path], { timeout: 120_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

/** CloudFormation's short-form tags as plain objects (`!Ref X` → `{ Ref: X }`). */
const cfnTags: Tags = ['Ref', 'GetAtt', 'Sub', 'If', 'Not', 'Equals'].flatMap((name) => {
  const key = name === 'Ref' ? 'Ref' : `Fn::${name}`;
  return [
    { tag: `!${name}`, resolve: (value: unknown) => ({ [key]: value }) },
    { tag: `!${name}`, collection: 'seq' as const, resolve: (value: unknown) => ({ [key]: value }) },
  ];
});

test('cfn-lint passes deploy/aws/rotation.yaml and refuses a broken template', async () => {
  const good = await lint(template);
  assert.equal(good.code, 0, good.output);
  const bad = await lint(broken);
  assert.notEqual(bad.code, 0, 'the lint must be able to fail');
  assert.match(bad.output, /QueueNam|MissingQueue/);
});

test('only the rotation rules may send to the queue; DLQ; role trusts only the controller ServiceAccount', async () => {
  const doc = parse(await readFile(template, 'utf8'), { customTags: cfnTags }) as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const { Resources: resources } = doc;
  const props = (name: string): Record<string, unknown> => {
    const resource = resources[name];
    assert.ok(resource, `resource ${name}`);
    return resource.Properties;
  };
  const rules = Object.entries(resources).filter(([, resource]) => resource.Type === 'AWS::Events::Rule');
  assert.deepEqual(rules.map(([name]) => name).sort(), ['LabelEventsRule', 'WriteEventsRule']);
  const statement = (
    props('EventQueuePolicy').PolicyDocument as {
      Statement: { Condition: { ArnEquals: Record<string, unknown> } }[];
    }
  ).Statement;
  assert.equal(statement.length, 1);
  assert.deepEqual(statement[0]?.Condition.ArnEquals['aws:SourceArn'], [
    { 'Fn::GetAtt': 'WriteEventsRule.Arn' },
    { 'Fn::GetAtt': 'LabelEventsRule.Arn' },
  ]);
  const redrive = props('EventQueue').RedrivePolicy as { deadLetterTargetArn: unknown };
  assert.deepEqual(redrive.deadLetterTargetArn, { 'Fn::GetAtt': 'DeadLetterQueue.Arn' });
  const write = props('WriteEventsRule').EventPattern as { detail: { eventName: string[] } };
  for (const name of [
    'PutSecretValue',
    'UpdateSecret',
    'UpdateSecretVersionStage',
    'RotateSecret',
    'DeleteSecret',
    'RestoreSecret',
  ]) {
    assert.ok(write.detail.eventName.includes(name), name);
  }
  const label = props('LabelEventsRule').EventPattern as { 'detail-type': string[] };
  assert.deepEqual(label['detail-type'], ['Secret Label Updated']);
  const trust = JSON.parse(
    (props('ControllerRole').AssumeRolePolicyDocument as { 'Fn::Sub': string })['Fn::Sub'],
  ) as { Statement: { Action: string; Condition: { StringEquals: Record<string, string> } }[] };
  assert.equal(trust.Statement[0]?.Action, 'sts:AssumeRoleWithWebIdentity');
  // CloudFormation substitutions, not JavaScript ones.
  const sub = (text: string): string => text.replaceAll('%', '$');
  assert.equal(
    trust.Statement[0]?.Condition.StringEquals[sub('%{OidcIssuer}:sub')],
    sub('system:serviceaccount:%{ServiceAccountNamespace}:%{ServiceAccountName}'),
  );
  const policy = JSON.stringify(props('ControllerRole').Policies);
  for (const action of [
    'secretsmanager:ListSecrets',
    'secretsmanager:DescribeSecret',
    'secretsmanager:GetSecretValue',
    'secretsmanager:BatchGetSecretValue',
    'sqs:ReceiveMessage',
    'sqs:DeleteMessage',
  ]) {
    assert.ok(policy.includes(`"${action}"`), action);
  }
});
