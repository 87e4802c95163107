import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseArn, parseObjectArn } from './arn.ts';

describe('parseArn', () => {
  test('reads partition, service, region, account and resource of any ARN', () => {
    assert.deepEqual(parseArn('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf'), {
      partition: 'aws',
      service: 'secretsmanager',
      region: 'eu-west-1',
      account: '123456789012',
      resource: 'secret:prod/db-AbCdEf',
    });
    assert.equal(parseArn('prod/db'), undefined);
    assert.equal(parseArn('arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x')?.partition, 'aws-cn');
    assert.equal(parseArn('arn:aws:ssm:eu-west-1:[111122223333]:parameter/x')?.region, 'eu-west-1');
  });
});

describe('parseObjectArn', () => {
  const cases: [string, ReturnType<typeof parseObjectArn>][] = [
    [
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:database-password-hlRvvF',
      {
        partition: 'aws',
        objectType: 'secretsmanager',
        region: 'us-east-1',
        account: '123456789012',
        resourceName: 'database-password-hlRvvF',
      },
    ],
    [
      'arn:aws-us-gov:secretsmanager:us-gov-west-1:[111122223333]:secret:prod/db-AbCdEf',
      {
        partition: 'aws-us-gov',
        objectType: 'secretsmanager',
        region: 'us-gov-west-1',
        account: '[111122223333]',
        resourceName: 'prod/db-AbCdEf',
      },
    ],
    [
      'arn:aws-cn:ssm:cn-north-1:123456789012:parameter/prod/db',
      {
        partition: 'aws-cn',
        objectType: 'ssmparameter',
        region: 'cn-north-1',
        account: '123456789012',
        resourceName: '/prod/db',
      },
    ],
    [
      'arn:aws:ssm:eu-west-1:123456789012:parameter/flag',
      {
        partition: 'aws',
        objectType: 'ssmparameter',
        region: 'eu-west-1',
        account: '123456789012',
        resourceName: 'flag',
      },
    ],
    ['arn:aws:secretsmanager:us-east-1:1:secret:', undefined],
    ['arn:aws:ssm:us-east-1:1:document/x', undefined],
    ['arn:azure:secretsmanager:us-east-1:1:secret:x', undefined],
    ['db', undefined],
  ];
  for (const [input, expected] of cases) {
    test(input, () => assert.deepEqual(parseObjectArn(input), expected));
  }
});
