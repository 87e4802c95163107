/**
 * smk's own output on the node bed, for the leak scan (test/leak/run.ts scans the capture dir):
 * every container of the pods named smk-* (the release's webhook, controller and CSI provider)
 * and every container named smk-* (the agents it injects into other pods). App containers are
 * left out: printing their secret is their job. The kubelet removes a pod's logs with the pod, so
 * node tests copy before they delete their namespaces, and the world once more at the end.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostPaths } from '../testbed/node/config.ts';
import { captureMarker } from './capture-format.ts';

/**
 * smk's own output on the node, for the leak scan: every container of the pods named smk-* (the
 * release's webhook, controller and CSI provider) and every container named smk-* (the agents it
 * injects into other pods). App containers are left out: printing their secret is their job.
 */
export async function copySmkContainerLogs(captureDir: string): Promise<string> {
  const root = hostPaths.podLogs;
  let copied = 0;
  for (const podDir of await readdir(root).catch(() => [] as string[])) {
    // <namespace>_<pod>_<uid>
    const [namespace = '', pod = ''] = podDir.split('_');
    for (const container of await readdir(join(root, podDir)).catch(() => [] as string[])) {
      if (!pod.startsWith('smk-') && !container.startsWith('smk-')) continue;
      for (const file of await readdir(join(root, podDir, container)).catch(() => [] as string[])) {
        const text = await readFile(join(root, podDir, container, file), 'utf8').catch(() => '');
        await writeFile(
          join(captureDir, `pod-log-${podDir}-${container}-${file}`),
          `${captureMarker} container log ${namespace}/${pod}/${container} (${file})\n${text}`,
        );
        copied++;
      }
    }
  }
  return `${copied} smk container logs from the node (${root})`;
}
