import { smkVersion } from '../core/version.ts';
import { parseCommandArgs } from './args.ts';

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('version', args, {
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write('Usage: smk version\n\nPrint the version of smk and of the Node it runs on.\n');
    return 0;
  }
  process.stdout.write(`smk ${smkVersion} (node ${process.versions.node})\n`);
  return 0;
}
