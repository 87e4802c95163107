import { smkVersion } from '../core/version.ts';

export async function run(): Promise<number> {
  process.stdout.write(`smk ${smkVersion} (node ${process.versions.node})\n`);
  return 0;
}
