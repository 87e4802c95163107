import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { InvalidInputError, ThrottledError, TransientError } from '../core/errors.ts';
import { silentLogger } from '../core/log.ts';
import { connectProvider, MountCallError, type ProviderClient } from './client.ts';
import type { MountRequest, MountResponse } from './protocol.ts';
import { type ProviderServer, startProviderServer } from './server.ts';

describe('provider server', () => {
  let directory: string;
  let server: ProviderServer;
  let client: ProviderClient;
  const seen: MountRequest[] = [];

  async function mount(request: MountRequest): Promise<MountResponse> {
    seen.push(request);
    switch (request.attributes) {
      case 'invalid':
        throw new InvalidInputError('SecretProviderClass x (pod a/b): objects[0] (db): objectType is wrong', {
          field: 'objectType',
        });
      case 'throttled':
        throw new ThrottledError('db: throttled');
      case 'transient':
        throw new TransientError('db: unreachable');
      case 'bug':
        throw new TypeError('value "hunter2" is not a function');
      default:
        return {
          object_version: [{ id: 'db', version: 'v1' }],
          files: [{ path: 'dir/db', mode: 0o640, contents: Buffer.from([0, 255, 1]) }],
        };
    }
  }

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'smk-csi-server-'));
    server = await startProviderServer({
      socketPath: join(directory, 'providers', 'aws.sock'),
      mount,
      logger: silentLogger(),
      runtimeName: 'smk',
      runtimeVersion: '1.2.3',
    });
    client = connectProvider(server.socketPath);
  });

  after(async () => {
    client.close();
    await server.close(1000);
    await rm(directory, { recursive: true, force: true });
  });

  it('answers Version with the protocol and its runtime', async () => {
    assert.deepEqual(await client.version(), {
      version: 'v1alpha1',
      runtime_name: 'smk',
      runtime_version: '1.2.3',
    });
  });

  it('listens on a socket only its owner may use', async () => {
    const info = await stat(server.socketPath);
    assert.ok(info.isSocket());
    assert.equal(info.mode & 0o777, 0o600);
  });

  it('passes the request through and returns files byte for byte', async () => {
    const response = await client.mount({
      attributes: '{}',
      target_path: '/var/lib/kubelet/pods/x',
      permission: '420',
      current_object_version: [{ id: 'db', version: 'v0' }],
    });
    assert.deepEqual(response.object_version, [{ id: 'db', version: 'v1' }]);
    assert.equal(response.files.length, 1);
    assert.equal(response.files[0]?.path, 'dir/db');
    assert.equal(response.files[0]?.mode, 0o640);
    assert.deepEqual([...(response.files[0]?.contents ?? [])], [0, 255, 1]);
    const last = seen.at(-1);
    assert.equal(last?.permission, '420');
    assert.deepEqual(last?.current_object_version, [{ id: 'db', version: 'v0' }]);
  });

  const cases: Array<[string, status, string, RegExp]> = [
    ['invalid', status.INVALID_ARGUMENT, 'InvalidInput', /objects\[0\] \(db\): objectType is wrong/],
    ['throttled', status.RESOURCE_EXHAUSTED, 'Throttled', /db: throttled/],
    ['transient', status.UNAVAILABLE, 'Transient', /db: unreachable/],
    ['bug', status.INTERNAL, 'Internal', /^TypeError: unexpected error$/],
  ];
  for (const [attributes, code, errorCode, message] of cases) {
    it(`reports ${errorCode} as gRPC ${status[code]} with the code in the trailers`, async () => {
      const error = await client.mount({ attributes }).then(
        () => assert.fail('mount should fail'),
        (failure: unknown) => failure,
      );
      assert.ok(error instanceof MountCallError);
      assert.equal(error.code, code);
      assert.equal(error.errorCode, errorCode);
      assert.match(error.details, message);
      assert.doesNotMatch(error.details, /hunter2/);
    });
  }

  it('keeps serving after failures', async () => {
    await assert.rejects(client.mount({ attributes: 'bug' }));
    const response = await client.mount({ attributes: '{}' });
    assert.equal(response.object_version.length, 1);
  });

  it('replaces a stale socket but refuses to replace a regular file', async () => {
    // A provider killed with SIGKILL leaves its socket file behind.
    const stalePath = join(directory, 'stale.sock');
    const script = `require('node:net').createServer().listen(${JSON.stringify(stalePath)}, () => process.kill(process.pid, 'SIGKILL'))`;
    spawnSync(process.execPath, ['-e', script]);
    assert.ok((await stat(stalePath)).isSocket());
    const second = await startProviderServer({
      socketPath: stalePath,
      mount,
      logger: silentLogger(),
      runtimeName: 'smk',
      runtimeVersion: '0',
    });
    const probe = connectProvider(stalePath);
    assert.equal((await probe.version()).runtime_version, '0');
    probe.close();
    await second.close(100);

    const file = join(directory, 'not-a-socket');
    await writeFile(file, 'keep me');
    await assert.rejects(
      startProviderServer({
        socketPath: file,
        mount,
        logger: silentLogger(),
        runtimeName: 'smk',
        runtimeVersion: '0',
      }),
      /is not a socket/,
    );
  });
});
