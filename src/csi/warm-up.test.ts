import assert from 'node:assert/strict';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { NotFoundError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import { registry } from '../core/metrics.ts';
import type { ServiceAccountRef, ServiceAccounts } from '../kube/service-accounts.ts';
import { rehearsalRounds, warmUp } from './warm-up.ts';

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

test('warmUp: rehearses whole mounts against a loopback AWS, reaches no AWS endpoint, counts no AWS call', async () => {
  // Where the SDK would send calls without an endpoint of its own: the rehearsal must not go there.
  let connections = 0;
  const aws = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => aws.listen(0, '127.0.0.1', resolve));
  const saved = process.env.AWS_ENDPOINT_URL;
  process.env.AWS_ENDPOINT_URL = `http://127.0.0.1:${(aws.address() as AddressInfo).port}`;
  const { serviceAccounts, asked } = serviceAccountsAnswering(() => Promise.resolve(undefined));
  const { logger, lines } = capturedLogger();
  try {
    await warmUp({ serviceAccounts, logger });
  } finally {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = saved;
    aws.close();
  }
  assert.deepEqual(asked, [{ namespace: 'kube-system', name: 'default' }]);
  const logged = lines.at(-1);
  assert.equal(logged?.rehearsal, 'ready', 'every rehearsed mount produced its files');
  assert.equal(logged?.rehearsedMounts, rehearsalRounds);
  assert.equal(logged?.apiServer, 'ready');
  assert.equal(connections, 0);
  const calls = (await registry.getSingleMetric('smk_aws_calls_total')?.get())?.values ?? [];
  assert.deepEqual(
    calls.filter((sample) => sample.value > 0),
    [],
    'the rehearsal is not counted as AWS calls',
  );
});

test('warmUp: an API server that refuses or does not answer does not stop the start', async () => {
  for (const answer of [
    () =>
      Promise.reject(new NotFoundError('ServiceAccount kube-system/default: not found', { subject: 'x' })),
    () => new Promise<undefined>(() => {}),
  ]) {
    const { serviceAccounts } = serviceAccountsAnswering(answer);
    const { logger, lines } = capturedLogger();
    await warmUp({ serviceAccounts, logger, kubeTimeoutMs: 50 });
    assert.notEqual(lines.at(-1)?.apiServer, 'ready');
    assert.equal(lines.at(-1)?.rehearsal, 'ready');
  }
});
