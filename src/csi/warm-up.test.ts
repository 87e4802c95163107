import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AwsClients } from '../aws/clients.ts';
import { NotFoundError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import type { ServiceAccountRef, ServiceAccounts } from '../kube/service-accounts.ts';
import { warmUp } from './warm-up.ts';

function serviceAccountsAnswering(roleArnIfAny: (ref: ServiceAccountRef) => Promise<string | undefined>) {
  const asked: ServiceAccountRef[] = [];
  const serviceAccounts: ServiceAccounts = {
    roleArn: () => Promise.reject(new Error('not expected')),
    roleArnIfAny: (ref) => {
      asked.push(ref);
      return roleArnIfAny(ref);
    },
    token: () => Promise.reject(new Error('not expected')),
  };
  return { serviceAccounts, asked };
}

function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    name: 'test',
    level: 'info',
    destination: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

test('warmUp: rehearses a mount and reads kube-system/default the way mounts read ServiceAccounts', async () => {
  const { serviceAccounts, asked } = serviceAccountsAnswering(() => Promise.resolve(undefined));
  const { logger, lines } = capturedLogger();
  const clients = new AwsClients({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
  try {
    await warmUp({ clients, serviceAccounts, logger });
  } finally {
    clients.destroy();
  }
  assert.deepEqual(asked, [{ namespace: 'kube-system', name: 'default' }]);
  assert.equal(lines.at(-1)?.apiServer, 'ready');
});

test('warmUp: an API server that refuses or does not answer does not stop the start', async () => {
  const clients = new AwsClients({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
  try {
    for (const answer of [
      () =>
        Promise.reject(new NotFoundError('ServiceAccount kube-system/default: not found', { subject: 'x' })),
      () => new Promise<undefined>(() => {}),
    ]) {
      const { serviceAccounts } = serviceAccountsAnswering(answer);
      const { logger, lines } = capturedLogger();
      await warmUp({ clients, serviceAccounts, logger, kubeTimeoutMs: 50 });
      assert.notEqual(lines.at(-1)?.apiServer, 'ready');
    }
  } finally {
    clients.destroy();
  }
});
