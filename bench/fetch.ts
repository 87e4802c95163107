/**
 * `npm run bench:fetch`: `smk fetch` of 10 secrets as a whole process (Node start included) against
 * moto, beside a baseline in the same run — a bundled script making one GetSecretValue per secret —
 * and the bare cost of starting Node. Calls are counted by a proxy in front of moto.
 * Goals (issue 2): median ≤ 250 ms; 1 BatchGetSecretValue call per fetch.
 *   node bench/fetch.ts [--runs N]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { build } from 'esbuild';
import { startAwsProxy } from '../test/harness/aws-proxy.ts';
import { startMoto } from '../test/harness/moto.ts';
import { percentile, printTable } from './table.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '21' } } });
const runs = Number(values.runs);
const root = new URL('..', import.meta.url).pathname;
const secretCount = 10;

function timeProcess(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve(performance.now() - started);
    });
  });
}

const work = await mkdtemp(join(tmpdir(), 'smk-bench-fetch-'));
process.stderr.write('building dist/ and the baseline bundle…\n');
await timeProcess([join(root, 'scripts/build.ts')], process.env);
await build({
  entryPoints: [join(root, 'bench/baseline/get-each.ts')],
  outfile: join(work, 'get-each.mjs'),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  logLevel: 'warning',
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
});

const moto = await startMoto();
const proxy = await startAwsProxy({ target: moto.endpoint });
try {
  const region = 'us-east-1';
  const env = {
    ...process.env,
    AWS_ENDPOINT_URL: proxy.endpoint,
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
  const client = new SecretsManagerClient({
    endpoint: moto.endpoint,
    region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const names: string[] = [];
  for (let index = 0; index < secretCount; index += 1) {
    const name = `bench/fetch/secret-${index}`;
    await client.send(
      new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ index, pad: 'x'.repeat(200) }) }),
    );
    names.push(name);
  }
  client.destroy();
  const specPath = join(work, 'objects.json');
  await writeFile(
    specPath,
    JSON.stringify(names.map((objectName) => ({ objectName, objectType: 'secretsmanager' }))),
  );

  interface Variant {
    readonly name: string;
    readonly args: (run: number) => string[];
  }
  const variants: Variant[] = [
    { name: 'node -e 0 (start-up floor)', args: () => ['-e', '0'] },
    {
      name: 'baseline: GetSecretValue each',
      args: (run) => [join(work, 'get-each.mjs'), join(work, `base-${run}`), region, ...names],
    },
    {
      name: 'smk fetch (dist/smk.mjs)',
      args: (run) => [
        join(root, 'dist/smk.mjs'),
        'fetch',
        '--quiet',
        '--objects',
        specPath,
        '--dir',
        join(work, `smk-${run}`),
      ],
    },
  ];
  const results = new Map<string, { samples: number[]; calls: Record<string, number> }>();
  // Warm the page cache once per variant, then interleave runs so drift hits every variant alike.
  for (const variant of variants) await timeProcess(variant.args(-1), env);
  for (const variant of variants) results.set(variant.name, { samples: [], calls: {} });
  for (let run = 0; run < runs; run += 1) {
    for (const variant of variants) {
      proxy.resetCounts();
      const elapsed = await timeProcess(variant.args(run), env);
      const result = results.get(variant.name);
      if (!result) continue;
      result.samples.push(elapsed);
      result.calls = proxy.countsByApi();
    }
  }
  const baseline = percentile(results.get('baseline: GetSecretValue each')?.samples ?? [], 50);
  const rows = variants.map((variant) => {
    const result = results.get(variant.name) ?? { samples: [], calls: {} };
    const median = percentile(result.samples, 50);
    const calls = Object.entries(result.calls)
      .map(([api, count]) => `${count} ${api}`)
      .join(', ');
    return [variant.name, median, percentile(result.samples, 90), calls || '-', median / baseline] as const;
  });
  printTable(
    `smk fetch of ${secretCount} secrets, ${runs} runs each (goal: median ≤ 250 ms, 1 BatchGetSecretValue)`,
    ['variant', 'median ms', 'p90 ms', 'Secrets Manager calls per run', 'vs baseline'],
    rows,
  );
} finally {
  await proxy.stop();
  await moto.stop();
  await rm(work, { recursive: true, force: true });
}
