import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { createLogger } from '../core/log.ts';
import { registry } from '../core/metrics.ts';
import { conditionGauge, forgetStatus, recordSync } from './status-metrics.ts';
import type { SyncOutcome } from './sync/sync.ts';

/** The Ready series of one object, as `status → value`. */
async function readySeries(kind: string, namespace: string, name: string): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('smk_status_condition')?.get();
  const series = (metric?.values ?? []).filter(
    (v) => v.labels.kind === kind && v.labels.namespace === namespace && v.labels.name === name,
  );
  for (const v of series) assert.equal(v.labels.condition, 'Ready');
  return Object.fromEntries(series.map((v) => [String(v.labels.status), v.value]));
}

async function syncCount(labels: Record<string, string>): Promise<number> {
  const metric = await registry.getSingleMetric('smk_sync_reconciles_total')?.get();
  const found = (metric?.values ?? []).find((v) =>
    Object.entries(labels).every(([key, value]) => v.labels[key] === value),
  );
  return found?.value ?? 0;
}

function capture() {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  return {
    logger,
    lines: () =>
      text
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const failed: SyncOutcome = {
  ok: false,
  reason: 'InvalidSpec',
  message: 'SecretSync team-a/db: spec.objects[0].objectName: expected a secret name or ARN',
  field: 'spec.objects[0].objectName',
  retry: false,
  targets: [],
};
const created: SyncOutcome = {
  ok: true,
  targets: [{ name: 'db', action: 'created' }],
  versions: [],
  roleArn: 'arn:aws:iam::111122223333:role/app',
  keys: 1,
};

describe('status gauge and sync outcome', () => {
  it('a failed sync: Ready False, counted as failed with its reason, a warning naming object, field and reason', async () => {
    const { logger, lines } = capture();
    const object = { kind: 'SecretSync', namespace: 'team-a', name: 'db' } as const;
    const before = await syncCount({ kind: 'SecretSync', outcome: 'failed', reason: 'InvalidSpec' });
    recordSync(object, failed, logger);
    logger.flush();
    assert.deepEqual(await readySeries('SecretSync', 'team-a', 'db'), { True: 0, False: 1 });
    assert.equal(
      await syncCount({ kind: 'SecretSync', outcome: 'failed', reason: 'InvalidSpec' }),
      before + 1,
    );
    const [line] = lines();
    assert.equal(line?.level, 'warn');
    assert.equal(line?.kind, 'SecretSync');
    assert.equal(line?.namespace, 'team-a');
    assert.equal(line?.name, 'db');
    assert.equal(line?.reason, 'InvalidSpec');
    assert.equal(line?.field, 'spec.objects[0].objectName');
    assert.match(String(line?.msg), /^sync failed: SecretSync team-a\/db: spec\.objects\[0\]\.objectName/);

    recordSync(object, created, logger);
    logger.flush();
    assert.deepEqual(await readySeries('SecretSync', 'team-a', 'db'), { True: 1, False: 0 });
    assert.equal((await syncCount({ kind: 'SecretSync', outcome: 'created' })) >= 1, true);
    assert.equal(lines().length, 1, 'a sync that succeeds logs nothing at info');

    forgetStatus(object);
    assert.deepEqual(await readySeries('SecretSync', 'team-a', 'db'), {});
  });

  it('outcome values are snake_case words; reason is only on failures', async () => {
    const { logger } = capture();
    recordSync({ kind: 'SecretProviderClass', namespace: 'team-b', name: 'app' }, created, logger);
    recordSync({ kind: 'SecretProviderClass', namespace: 'team-b', name: 'app' }, failed, logger);
    const metric = await registry.getSingleMetric('smk_sync_reconciles_total')?.get();
    for (const v of metric?.values ?? []) {
      assert.match(String(v.labels.outcome), /^(created|updated|unchanged|failed)$/);
      assert.equal(v.labels.reason !== undefined, v.labels.outcome === 'failed', JSON.stringify(v.labels));
    }
    forgetStatus({ kind: 'SecretProviderClass', namespace: 'team-b', name: 'app' });
  });

  it('a mapping follows its Ready condition from the informer, once the leader activates it, and goes on delete', async () => {
    const gauge = conditionGauge('SecretsRotationMapping');
    const mapping = (status?: string): KubernetesObject & { status?: unknown } => ({
      metadata: { namespace: 'team-c', name: 'rotate' },
      ...(status ? { status: { conditions: [{ type: 'Ready', status }] } } : {}),
    });
    gauge.handlers.add?.(mapping('False'));
    assert.deepEqual(
      await readySeries('SecretsRotationMapping', 'team-c', 'rotate'),
      {},
      'a standby reports nothing',
    );
    gauge.activate();
    assert.deepEqual(await readySeries('SecretsRotationMapping', 'team-c', 'rotate'), { True: 0, False: 1 });
    gauge.handlers.update?.(mapping('True'), mapping('False'));
    assert.deepEqual(await readySeries('SecretsRotationMapping', 'team-c', 'rotate'), { True: 1, False: 0 });
    gauge.handlers.update?.(mapping(), mapping('True'));
    assert.deepEqual(
      await readySeries('SecretsRotationMapping', 'team-c', 'rotate'),
      {},
      'no Ready condition: no series',
    );
    gauge.handlers.update?.(mapping('True'), mapping());
    gauge.handlers.delete?.(mapping('True'));
    assert.deepEqual(await readySeries('SecretsRotationMapping', 'team-c', 'rotate'), {});
  });
});
