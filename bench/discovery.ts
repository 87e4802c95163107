/**
 * `npm run bench:discovery`: what a discovery costs to keep fresh. N secrets (default 1,000) are
 * matched by `discover` entries of 100 each (the per-entry bound), refreshed every 60 s for one
 * simulated hour with 1 % of the secrets changing in that hour. Every figure is counted by the
 * proxy in front of moto in this run:
 *   smk       resolvePayloads over the whole spec each refresh (the pipeline every role runs),
 *             one process cache whose clock advances 60 s per refresh, so its stage (15 s) and
 *             authorisation (5 min) windows lapse as they would in an hour;
 *   baseline  ESO's `dataFrom.find` pattern, one refresh measured and counted per hour: the same
 *             ListSecrets pages, then one GetSecretValue per matched secret.
 *
 *   node bench/discovery.ts [--secrets N] [--refresh-seconds S]
 */
import { parseArgs } from 'node:util';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { AwsClients, createSecretReader, SecretCache } from '../src/aws/index.ts';
import { maxDiscovered } from '../src/core/discovery.ts';
import { resolvePayloads } from '../src/core/payloads.ts';
import { parseMountSpec } from '../src/core/spec.ts';
import { startAwsProxy } from '../test/harness/aws-proxy.ts';
import { startMoto } from '../test/harness/moto.ts';
import { printTable } from './table.ts';

const { values } = parseArgs({
  options: {
    secrets: { type: 'string', default: '1000' },
    'refresh-seconds': { type: 'string', default: '60' },
  },
});
const secretCount = Number(values.secrets);
const refreshSeconds = Number(values['refresh-seconds']);
const refreshesPerHour = Math.round(3600 / refreshSeconds);
const changesPerHour = Math.max(1, Math.round(secretCount / 100));
const entries = Math.ceil(secretCount / maxDiscovered);
const region = 'us-east-1';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

const moto = await startMoto();
const proxy = await startAwsProxy({ target: moto.endpoint });
try {
  const admin = new SecretsManagerClient({ endpoint: moto.endpoint, region, credentials });
  const names = Array.from(
    { length: secretCount },
    (_, i) => `bench-discovery/p${Math.floor(i / maxDiscovered)}/s${String(i).padStart(5, '0')}`,
  );
  for (let at = 0; at < names.length; at += 20) {
    await Promise.all(
      names
        .slice(at, at + 20)
        .map((name) => admin.send(new CreateSecretCommand({ Name: name, SecretString: `value-0-${name}` }))),
    );
  }

  const spec = parseMountSpec(
    {
      objects: Array.from({ length: entries }, (_, p) => ({
        objectType: 'secretsmanager',
        discover: { namePrefix: `bench-discovery/p${p}/`, stripPrefix: true },
      })),
      region,
    },
    'bench',
  );

  // smk: one simulated hour of refreshes on a clock the cache reads.
  let now = Date.now();
  const cache = new SecretCache({ now: () => now });
  const clients = new AwsClients({ endpoint: proxy.endpoint, maxAttempts: 1 });
  const reader = createSecretReader({ kind: 'static', ...credentials }, { cache, clients });
  await resolvePayloads(spec, reader);
  const cold = proxy.countsByApi();
  proxy.resetCounts();
  const changeEvery = Math.floor(refreshesPerHour / changesPerHour);
  let changed = 0;
  for (let refresh = 1; refresh <= refreshesPerHour; refresh += 1) {
    now += refreshSeconds * 1000;
    if (refresh % changeEvery === 0 && changed < changesPerHour) {
      const name = names[(changed * 97) % names.length] ?? '';
      await admin.send(
        new PutSecretValueCommand({ SecretId: name, SecretString: `value-${refresh}-${name}` }),
      );
      changed += 1;
    }
    const payloads = await resolvePayloads(spec, reader);
    if (payloads.length !== secretCount) throw new Error(`refresh ${refresh}: ${payloads.length} payloads`);
  }
  const hour = proxy.countsByApi();

  // Baseline: one refresh as ESO's find does it, counted per hour.
  proxy.resetCounts();
  const direct = new SecretsManagerClient({ endpoint: proxy.endpoint, region, credentials });
  for (let p = 0; p < entries; p += 1) {
    let nextToken: string | undefined;
    const found: string[] = [];
    do {
      const page = await direct.send(
        new ListSecretsCommand({
          MaxResults: 100,
          Filters: [{ Key: 'name', Values: [`bench-discovery/p${p}/`] }],
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      );
      found.push(...(page.SecretList ?? []).map((entry) => entry.Name ?? ''));
      nextToken = page.NextToken;
    } while (nextToken);
    for (let at = 0; at < found.length; at += 20) {
      await Promise.all(
        found.slice(at, at + 20).map((name) => direct.send(new GetSecretValueCommand({ SecretId: name }))),
      );
    }
  }
  const perRefresh = proxy.countsByApi();

  const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);
  const describe = (counts: Record<string, number>, scale = 1): string =>
    Object.entries(counts)
      .filter(([, count]) => count > 0)
      .map(([api, count]) => `${count * scale} ${api}`)
      .join(', ') || '-';
  printTable(
    `Discovery: Secrets Manager calls per hour, ${secretCount.toLocaleString('en')} matched secrets (${entries} discover entries), ${changesPerHour} changes per hour, refresh every ${refreshSeconds} s`,
    ['pattern', 'calls/h', 'calls per hour', 'first refresh'],
    [
      ['smk (discover, cached)', sum(hour), describe(hour), describe(cold)],
      [
        'baseline (ESO find: list + GetSecretValue each)',
        sum(perRefresh) * refreshesPerHour,
        describe(perRefresh, refreshesPerHour),
        describe(perRefresh),
      ],
    ],
  );
} finally {
  await proxy.stop();
  await moto.stop();
}
