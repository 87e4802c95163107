/** smk.dev/assume-role-* annotations → the agent's SMK_ASSUME_ROLE_* environment. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseNamedRoleChain } from '../aws/role-chain.ts';
import { agentRoleChainEnv, initContainerName } from '../core/agent-contract.ts';
import { planFromAnnotations } from './annotations.ts';
import { defaultInjectorConfig, type InjectorConfig, mutatePod } from './mutate.ts';
import type { Pod } from './pod.ts';

const config: InjectorConfig = { ...defaultInjectorConfig, agentImage: 'registry.example/smk:test' };
const target = 'arn:aws:iam::222233334444:role/shared-secrets';

function annotationsOf(extra: Record<string, string>): Record<string, string> {
  return {
    'smk.dev/inject': 'true',
    'smk.dev/objects': '[{"objectName": "db", "objectType": "secretsmanager"}]',
    ...extra,
  };
}

function pod(extra: Record<string, string>): Pod {
  return {
    metadata: {
      name: 'api',
      annotations: annotationsOf(extra),
    },
    spec: { containers: [{ name: 'api', image: 'busybox:1.36' }] },
  };
}

describe('injector: role chaining annotations', () => {
  it('hands the chain to the agent as env, which parses back to the same chain', () => {
    const result = mutatePod(
      pod({
        'smk.dev/assume-role-arn': target,
        'smk.dev/assume-role-external-id': 'shop-7f3a',
        'smk.dev/assume-role-session-tags': 'team=shop,env=prod',
        'smk.dev/assume-role-duration-seconds': '900',
      }),
      config,
    );
    if ('denied' in result) assert.fail(result.denied);
    const init = result.pod.spec.initContainers?.find((c) => c.name === initContainerName);
    const env: Record<string, string | undefined> = Object.fromEntries(
      (init?.env ?? []).map((variable) => [
        variable.name,
        typeof variable.value === 'string' ? variable.value : undefined,
      ]),
    );
    assert.equal(env[agentRoleChainEnv.roleArn], target);
    assert.equal(env[agentRoleChainEnv.sessionTags], 'env=prod,team=shop');
    assert.deepEqual(parseNamedRoleChain(env, agentRoleChainEnv, 'smk agent'), {
      roleArn: target,
      externalId: 'shop-7f3a',
      durationSeconds: 900,
      sessionTags: { env: 'prod', team: 'shop' },
    });
  });

  it('no chain: no SMK_ASSUME_ROLE_* env', () => {
    const result = mutatePod(pod({}), config);
    if ('denied' in result) assert.fail(result.denied);
    const init = result.pod.spec.initContainers?.find((c) => c.name === initContainerName);
    assert.ok(!(init?.env ?? []).some((variable) => variable.name.startsWith('SMK_ASSUME_ROLE')));
  });

  it('denies a bad setting naming the annotation', () => {
    const bad = planFromAnnotations(annotationsOf({ 'smk.dev/assume-role-external-id': 'x1' }));
    assert.equal(bad.kind, 'invalid');
    if (bad.kind !== 'invalid') return;
    assert.match(bad.message, /smk\.dev\/assume-role-external-id: needs smk\.dev\/assume-role-arn/);
    const arn = planFromAnnotations(annotationsOf({ 'smk.dev/assume-role-arn': 'arn:aws:iam::1:role/x' }));
    assert.equal(arn.kind, 'invalid');
    if (arn.kind === 'invalid')
      assert.match(arn.message, /smk\.dev\/assume-role-arn: expected an IAM role ARN/);
  });
});
