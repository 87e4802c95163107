import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAgentEnvironment, parseEnvironment, parseInClusterEnvironment } from './config.ts';
import { agentEnv } from './core/agent-contract.ts';

describe('parseAgentEnvironment: the agent side of the webhook→agent contract', () => {
  it('reads what the webhook writes, under the contract’s names', () => {
    const parsed = parseAgentEnvironment({
      [agentEnv.dir]: '/smk/secrets',
      [agentEnv.region]: 'eu-west-1',
      [agentEnv.refreshInterval]: '30',
      [agentEnv.jmesPathExpressions]: 'allowed',
      [agentEnv.templates]: '{"dsn":"{{ user }}"}',
    });
    assert.deepEqual(parsed, {
      dir: '/smk/secrets',
      region: 'eu-west-1',
      refreshIntervalSeconds: 30,
      allowExpressions: true,
      templatesText: '{"dsn":"{{ user }}"}',
    });
    assert.equal(
      parseEnvironment({ [agentEnv.objects]: '[{"objectName":"db"}]' }).objects,
      '[{"objectName":"db"}]',
    );
  });

  it('names the variable and what it expected when a value is wrong', () => {
    assert.throws(
      () => parseAgentEnvironment({ [agentEnv.dir]: 'relative/dir' }),
      (error: Error) =>
        error.message ===
        `smk agent: environment variable ${agentEnv.dir} must be an absolute directory path`,
    );
    assert.throws(
      () => parseAgentEnvironment({ [agentEnv.dir]: '/d', [agentEnv.refreshInterval]: '0' }),
      new RegExp(`${agentEnv.refreshInterval} must be at least 1 second`),
    );
  });
});

/** Files other engineers are moving off process.env in their own branches; empty once they have. */
const notYetMoved = new Set(['aws/clients.ts', 'cli/controller.ts']);

describe('environment input', () => {
  it('is read only in src/config.ts', () => {
    const root = new URL('.', import.meta.url).pathname;
    const readers = (readdirSync(root, { recursive: true }) as string[])
      .filter((file) => /\.(ts|mts|mjs)$/.test(file) && !/\.test\.ts$/.test(file) && file !== 'config.ts')
      .filter((file) => readFileSync(join(root, file), 'utf8').includes('process.env'))
      .filter((file) => !notYetMoved.has(file));
    assert.deepEqual(readers, []);
  });
});

describe('parseInClusterEnvironment', () => {
  it('reads the kubernetes Service host and port the kubelet sets', () => {
    assert.deepEqual(
      parseInClusterEnvironment({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }),
      { host: '10.0.0.1', port: 443 },
    );
  });

  it('names the variable that is missing or not a port', () => {
    assert.throws(
      () =>
        parseInClusterEnvironment({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: 'https' }),
      /KUBERNETES_SERVICE_PORT: expected the kubernetes Service's port/,
    );
    assert.throws(
      () => parseInClusterEnvironment({ KUBERNETES_SERVICE_PORT: '443' }),
      /KUBERNETES_SERVICE_HOST: expected the kubernetes Service's host/,
    );
  });
});
