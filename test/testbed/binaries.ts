/**
 * Where the control-plane binaries are: the dir the caller names, else whatever build.sh prints
 * (it reuses its cache and only builds the first time, streaming its progress to us).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Binaries {
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
}

const buildScript = fileURLToPath(new URL('./build.sh', import.meta.url));

export async function resolveBinaries(
  progress: (line: string) => void,
  givenDir?: string,
): Promise<Binaries> {
  const binDir = givenDir ?? (await runBuildScript(progress));
  const binaries = {
    etcd: join(binDir, 'etcd'),
    kubeApiserver: join(binDir, 'kube-apiserver'),
    kubeControllerManager: join(binDir, 'kube-controller-manager'),
  };
  for (const path of Object.values(binaries)) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new Error(
        `test bed binary ${path} is missing or not executable (bin dir from ${givenDir === undefined ? buildScript : 'binDir / SMK_TESTBED_BIN'})`,
      );
    }
  }
  return binaries;
}

async function runBuildScript(progress: (line: string) => void): Promise<string> {
  const child = spawn('bash', [buildScript], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderrTail: string[] = [];
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('go: downloading')) continue;
      progress(line);
    }
    stderrTail = [...stderrTail, ...lines].slice(-40);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const binDir = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0 || binDir === '') {
    throw new Error(
      `${buildScript} failed (exit ${code}); its last output:\n${[...stderrTail, partial].join('\n')}`,
    );
  }
  return binDir;
}
