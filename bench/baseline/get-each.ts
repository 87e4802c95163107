/**
 * Baseline for bench/fetch.ts: what a plain script does — one GetSecretValue per secret (in
 * parallel), each written to a file. Bundled like smk so both pay the same start-up costs.
 *   node get-each.mjs DIR REGION ID...
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const [dir, region, ...ids] = process.argv.slice(2);
if (dir === undefined || region === undefined) throw new Error('usage: get-each DIR REGION ID...');
const client = new SecretsManagerClient({ region });
await mkdir(dir, { recursive: true });
await Promise.all(
  ids.map(async (id) => {
    const value = await client.send(new GetSecretValueCommand({ SecretId: id, VersionStage: 'AWSCURRENT' }));
    await writeFile(join(dir, id.replaceAll('/', '_')), value.SecretString ?? '');
  }),
);
client.destroy();
