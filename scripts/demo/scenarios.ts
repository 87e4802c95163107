/**
 * The demo's scenarios, one per seed design, each a short story and a check that it worked.
 * A scenario returns a one-line result or throws with what went wrong. Every scenario after the
 * first runs against smk installed from the rendered chart (release.ts) and uses the manifests in
 * examples/ — the same files test/examples applies to the bed.
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type V1Container,
} from '@kubernetes/client-node';
import { writeThroughAnnotations } from '../../src/core/write-through.ts';
import { connectProvider } from '../../src/csi/client.ts';
import { mountRequestFor } from '../../test/examples/csi-request.ts';
import { applyExample } from '../../test/examples/examples.ts';
import { runCommand } from '../../test/harness/run.ts';
import { adopted, cloudTrailEvent, readMapping, waitFor } from '../../test/rotation/harness.ts';
import { type DemoRelease, demoQueueUrl } from './release.ts';
import type { DemoWorld } from './world.ts';

export interface Scenario {
  readonly title: string;
  readonly story: string;
  /** Runs against the installed release (every scenario but the first needs one). */
  readonly needsRelease: boolean;
  run(world: DemoWorld, release: DemoRelease | undefined): Promise<string>;
}

const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const indent = (text: string, by = '    '): string =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => `${by}${line}`)
    .join('\n');

function expectEqual(what: string, actual: string, expected: string): void {
  if (actual !== expected)
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

function needRelease(release: DemoRelease | undefined): DemoRelease {
  if (!release) throw new Error('smk is not installed (the chart step failed)');
  return release;
}

/** Creates the secret, or puts the value as a new AWSCURRENT version when it exists (a reused world). */
async function upsertSecret(client: SecretsManagerClient, name: string, value: string): Promise<string> {
  try {
    const created = await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
    return created.ARN ?? '';
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
    const put = await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
    return put.ARN ?? '';
  }
}

function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    try {
      return (JSON.parse(String(error.body)) as { message?: string }).message ?? String(error.body);
    } catch {
      return String(error.body);
    }
  }
  return error instanceof Error ? error.message : String(error);
}

const fetchSeed001: Scenario = {
  title: "smk fetch: the ASCP guide's objects spec",
  needsRelease: false,
  story:
    'The ASCP guide mounts two secrets through the CSI provider: MySecret split into dbusername/dbpassword by\n' +
    'JMESPath, and MySecret2 whole as "foobar". The same objects spec, given to `smk fetch`, writes the\n' +
    'same files — fetched with one BatchGetSecretValue call and swapped in atomically.',
  async run(world) {
    const suffix = randomUUID().slice(0, 6);
    const db = await world.secretsManager.send(
      new CreateSecretCommand({
        Name: `MySecret-${suffix}`,
        SecretString: JSON.stringify({ user: { username: 'john.doe', password: '123456' } }),
      }),
    );
    const whole = await world.secretsManager.send(
      new CreateSecretCommand({ Name: `MySecret2-${suffix}`, SecretString: 'the-whole-value' }),
    );
    const dir = await world.tempDir('fetch');
    const specPath = join(dir, '..', `objects-${suffix}.yaml`);
    const spec = [
      `- objectName: "${db.ARN}"`,
      '  jmesPath:',
      '    - path: user.username',
      '      objectAlias: dbusername',
      '    - path: user.password',
      '      objectAlias: dbpassword',
      `- objectName: "${whole.ARN}"`,
      '  objectAlias: foobar',
      '',
    ].join('\n');
    await writeFile(specPath, spec);
    process.stdout.write(`$ smk fetch --objects objects.yaml --dir ${dir}\n${spec}`);
    const result = await world.smk(['fetch', '--objects', specPath, '--dir', dir]);
    process.stdout.write(result.stderr);
    if (result.code !== 0) throw new Error(`smk fetch exited ${result.code}`);
    const files = (await readdir(dir)).filter((name) => !name.startsWith('..')).sort();
    for (const name of ['dbusername', 'dbpassword', 'foobar']) {
      process.stdout.write(`$ cat ${name}\n${await readFile(join(dir, name), 'utf8')}\n`);
    }
    expectEqual('dbusername', await readFile(join(dir, 'dbusername'), 'utf8'), 'john.doe');
    expectEqual('dbpassword', await readFile(join(dir, 'dbpassword'), 'utf8'), '123456');
    expectEqual('foobar', await readFile(join(dir, 'foobar'), 'utf8'), 'the-whole-value');
    return `${files.length} files written: ${files.join(', ')}`;
  },
};

/**
 * Runs an injected container's command here, as test/webhook does: `smk` is the bundle, every
 * absolute path in its env moves under `root`, and the AWS endpoint and keys stand in for IRSA.
 */
function runContainerLocally(world: DemoWorld, container: V1Container, root: string) {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    AWS_ENDPOINT_URL: world.awsEndpoint,
    AWS_REGION: world.region,
    AWS_ACCESS_KEY_ID: world.env.AWS_ACCESS_KEY_ID ?? 'testing',
    AWS_SECRET_ACCESS_KEY: world.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
  };
  for (const variable of container.env ?? []) {
    if (variable.valueFrom !== undefined)
      throw new Error(`${container.name}: env ${variable.name} is a reference`);
    const value = variable.value ?? '';
    env[variable.name] = value.startsWith('/') ? join(root, value) : value;
  }
  const [program, ...args] = container.command ?? [];
  if (program !== 'smk') throw new Error(`${container.name}: command is ${String(program)}, expected smk`);
  return runCommand(process.execPath, [world.smkBinary, ...args], { env });
}

const seedArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:database-password-hlRvvF';

const injectSeed002: Scenario = {
  title: 'aws-secret-sidecar-injector: init container writes /tmp/secret',
  needsRelease: true,
  story:
    "The aws-secret-sidecar-injector post's webserver Deployment, unchanged (annotations secrets.k8s.aws/sidecarInjectorWebhook and\n" +
    'secrets.k8s.aws/secret-arn). The API server sends its pod to smk webhook, which adds an init\n' +
    'container (smk agent init) and a memory volume at /tmp. The demo runs that init container here, with\n' +
    'exactly the env the webhook gave it, and the file appears.',
  async run(world) {
    const core = world.bed.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = await world.bed.newNamespace('seed-002');
    const value = JSON.stringify({
      username: 'admin',
      password: 'P@$$word1024',
      engine: 'mysql',
      host: 'database-1.cluster.us-east-1.rds.amazonaws.com',
      port: 3306,
      dbClusterIdentifier: 'database-1',
    });
    // moto resolves the article's ARN by its last segment as the name.
    await upsertSecret(world.secretsManager, 'database-password-hlRvvF', value);
    say(`$ aws secretsmanager create-secret --name database-password-hlRvvF --secret-string '${value}'`);
    // The API server picks up a new webhook configuration asynchronously: wait until a dry run is injected.
    await waitFor('the webhook configuration to take effect', 30_000, async () => {
      const probe = await core.createNamespacedPod({
        namespace,
        dryRun: 'All',
        body: {
          metadata: {
            name: 'probe',
            annotations: {
              'secrets.k8s.aws/sidecarInjectorWebhook': 'enabled',
              'secrets.k8s.aws/secret-arn': seedArn,
            },
          },
          spec: { containers: [{ name: 'app', image: 'busybox:1.28' }] },
        },
      });
      return (probe.spec?.initContainers?.length ?? 0) > 0;
    });
    say(`$ kubectl -n ${namespace} apply -f examples/injection-sidecar-injector/`);
    await applyExample(world.bed.kubeConfig, 'injection-sidecar-injector', namespace);
    const pod = await waitFor('the Deployment controller to create the pod', 30_000, async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'run=webserver' });
      return pods.items[0];
    });
    const init = pod.spec?.initContainers?.[0];
    if (!init) throw new Error(`pod ${pod.metadata?.name} has no init container: it was not injected`);
    const app = pod.spec?.containers?.find((container) => container.name === 'webserver');
    const mount = app?.volumeMounts?.find((volumeMount) => volumeMount.mountPath === '/tmp');
    const volume = pod.spec?.volumes?.find((candidate) => candidate.name === mount?.name);
    say(
      `pod ${pod.metadata?.name} as stored by the API server (annotation smk.dev/status=${pod.metadata?.annotations?.['smk.dev/status']}):`,
    );
    say(`  initContainers: ${init.name}  image ${init.image}  command ${JSON.stringify(init.command)}`);
    say(`    env: ${(init.env ?? []).map((variable) => variable.name).join(', ')}`);
    say(`  volume ${volume?.name}: emptyDir ${JSON.stringify(volume?.emptyDir)}`);
    say(`  container webserver mounts it at ${mount?.mountPath} (readOnly ${String(mount?.readOnly)})`);
    if (!mount || volume?.emptyDir?.medium !== 'Memory') throw new Error('no memory volume mounted at /tmp');

    const root = await world.tempDir('seed-002-pod');
    say(`$ smk agent init      # the init container's command and env, paths under ${root}`);
    const result = await runContainerLocally(world, init, root);
    say(indent(result.stderr || '(no output)'));
    if (result.code !== 0) throw new Error(`the init container exited ${result.code}`);
    const written = await readFile(join(root, 'tmp', 'secret'), 'utf8');
    say('$ cat /tmp/secret     # what the webserver prints at start (echo $(cat /tmp/secret))');
    say(written);
    expectEqual('/tmp/secret', written, value);
    return `pod ${pod.metadata?.name}: ${init.name} injected by the webhook; the agent wrote /tmp/secret (${Buffer.byteLength(written)} bytes)`;
  },
};

const csiSeed001: Scenario = {
  title: 'ASCP drop-in: CSI provider Mount writes dbusername, dbpassword, foobar',
  needsRelease: true,
  story:
    "The ASCP guide's SecretProviderClass and pod. On a node, the Secrets Store CSI driver calls the provider's\n" +
    'Mount over its unix socket with the class parameters, the pod and its ServiceAccount token. The demo\n' +
    "makes that same gRPC call to smk's provider (started from the chart's DaemonSet): it assumes the pod's\n" +
    'IRSA role with the token, reads both secrets (eu-west-1, from their ARNs) and answers with the files.',
  async run(world, release) {
    const { csiSocket } = needRelease(release);
    const core = world.bed.kubeConfig.makeApiClient(CoreV1Api);
    const custom = world.bed.kubeConfig.makeApiClient(CustomObjectsApi);
    const namespace = await world.bed.newNamespace('seed-001');
    const euWest1 = world.secretsManagerIn('eu-west-1');
    const user = JSON.stringify({ user: { username: 'john.doe', password: '123456' } });
    const whole = 'MySecret2: the whole value, whatever its format';
    await upsertSecret(euWest1, 'MySecret-00AACC', user);
    await upsertSecret(euWest1, 'MySecret2-00AABB', whole);
    say(
      `$ aws --region eu-west-1 secretsmanager create-secret --name MySecret-00AACC --secret-string '${user}'`,
    );
    say(
      `$ aws --region eu-west-1 secretsmanager create-secret --name MySecret2-00AABB --secret-string '${whole}'`,
    );
    say(`$ kubectl -n ${namespace} apply -f examples/csi-ascp/`);
    await applyExample(world.bed.kubeConfig, 'csi-ascp', namespace);
    const pod = await core.readNamespacedPod({ namespace, name: 'test-secrets' });
    const spc = (await custom.getNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      plural: 'secretproviderclasses',
      namespace,
      name: 'aws-secrets',
    })) as { spec: { parameters: Record<string, string> } };
    // The driver's CSIDriver tokenRequests: a token for the pod's ServiceAccount, audience sts.amazonaws.com.
    const token = await world.bed.serviceAccountToken(
      namespace,
      pod.spec?.serviceAccountName ?? 'default',
      'sts.amazonaws.com',
    );
    const request = mountRequestFor(pod, spc.spec.parameters, token);
    say(
      `Mount over ${csiSocket} for pod ${namespace}/test-secrets (ServiceAccount default, target ${request.target_path})`,
    );
    const client = connectProvider(csiSocket);
    let reply: Awaited<ReturnType<typeof client.mount>>;
    try {
      reply = await client.mount(request);
    } finally {
      client.close();
    }
    const files = Object.fromEntries(
      reply.files.map((file) => [file.path, Buffer.from(file.contents).toString('utf8')]),
    );
    const width = Math.max(...reply.files.map((file) => file.path.length));
    for (const file of reply.files) {
      say(
        `  ${file.path.padEnd(width)}  mode ${file.mode.toString(8).padStart(4, '0')}  ${files[file.path]}`,
      );
    }
    say(
      `  object versions: ${reply.object_version.map((entry) => `${entry.id}@${entry.version.slice(0, 8)}`).join(', ')}`,
    );
    expectEqual('dbusername', files.dbusername ?? '(missing)', 'john.doe');
    expectEqual('dbpassword', files.dbpassword ?? '(missing)', '123456');
    expectEqual('foobar', files.foobar ?? '(missing)', whole);
    return `Mount answered ${reply.files.length} files: ${reply.files.map((file) => file.path).join(', ')}`;
  },
};

const syncSeed004: Scenario = {
  title: 'secretObjects sync: foosecret gets SECRET_API_KEY',
  needsRelease: true,
  story:
    "The sync blog post's SecretProviderClass with secretObjects (Secret foosecret, key SECRET_API_KEY) plus smk's\n" +
    'two annotations (smk.dev/sync, smk.dev/service-account). smk controller keeps the Secret in step,\n' +
    'acting as nginx-deployment-sa (its IRSA role) — no pod has to mount the class first.',
  async run(world) {
    const core = world.bed.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = await world.bed.newNamespace('seed-004');
    await upsertSecret(world.secretsManager, 'CSI-driver-test-secret', 'secretkey');
    say(
      "$ aws --region us-east-1 secretsmanager create-secret --name CSI-driver-test-secret --secret-string 'secretkey'",
    );
    say(`$ kubectl -n ${namespace} apply -f examples/sync-secretproviderclass/`);
    await applyExample(world.bed.kubeConfig, 'sync-secretproviderclass', namespace);
    const secret = await waitFor('Secret foosecret', 30_000, async () =>
      core.readNamespacedSecret({ namespace, name: 'foosecret' }).catch(() => undefined),
    );
    const value = Buffer.from(secret.data?.SECRET_API_KEY ?? '', 'base64').toString('utf8');
    const owner = secret.metadata?.ownerReferences?.[0];
    say(`$ kubectl -n ${namespace} get secret foosecret -o jsonpath='{.data.SECRET_API_KEY}' | base64 -d`);
    say(value);
    say(
      `  type ${secret.type}; keys ${Object.keys(secret.data ?? {}).join(', ')}; owner ${owner?.kind}/${owner?.name}`,
    );
    say(`  what the seed's nginx pods get: SECRET_API_KEY=${value}`);
    const events = await core.listNamespacedEvent({
      namespace,
      fieldSelector: 'involvedObject.name=nginx-deployment-aws-secrets',
    });
    for (const event of events.items) say(`  event ${event.type} ${event.reason}: ${event.message}`);
    expectEqual('SECRET_API_KEY', value, 'secretkey');
    return `Secret foosecret synced by smk controller (SECRET_API_KEY, owner ${owner?.kind ?? 'none'})`;
  },
};

interface ReplicaSetRow {
  readonly name: string;
  readonly hash: string;
  readonly created: string;
  readonly restartedAt: string;
}

async function replicaSetRows(
  world: DemoWorld,
  namespace: string,
  deployment: string,
): Promise<ReplicaSetRow[]> {
  const apps = world.bed.kubeConfig.makeApiClient(AppsV1Api);
  const owner = await apps.readNamespacedDeployment({ namespace, name: deployment });
  const list = await apps.listNamespacedReplicaSet({ namespace });
  return list.items
    .filter((rs) => rs.metadata?.ownerReferences?.some((ref) => ref.uid === owner.metadata?.uid))
    .map((rs) => ({
      name: rs.metadata?.name ?? '',
      hash: rs.metadata?.labels?.['pod-template-hash'] ?? '',
      created: rs.metadata?.creationTimestamp?.toISOString().slice(11, 19) ?? '',
      restartedAt: rs.spec?.template?.metadata?.annotations?.['smk.dev/restartedAt'] ?? '-',
    }))
    .sort((a, b) => a.created.localeCompare(b.created));
}

function printReplicaSets(rows: readonly ReplicaSetRow[]): void {
  say(`  ${'REPLICASET'.padEnd(30)} ${'CREATED'.padEnd(9)} smk.dev/restartedAt`);
  for (const row of rows) say(`  ${row.name.padEnd(30)} ${row.created.padEnd(9)} ${row.restartedAt}`);
}

const rotationSeed003: Scenario = {
  title: 'rotation operator — mapping rolls the Deployment',
  needsRelease: true,
  story:
    "The rotation operator post's SecretsRotationMapping (SecretID eks-controller-test-secret, Labels environment:\n" +
    'operatortest), unchanged, and its labelled Deployment, which reads the secret through a Secret that a\n' +
    'SecretSync keeps. A put-secret-value reaches the controller as an SQS event; smk confirms it with\n' +
    'DescribeSecret, re-syncs the Secret first, then restarts the Deployment once: a new ReplicaSet.',
  async run(world) {
    const core = world.bed.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = await world.bed.newNamespace('seed-003');
    const secretName = 'eks-controller-test-secret';
    const arn = await upsertSecret(world.secretsManager, secretName, 'testsqssec:oldsecret');
    say(`$ aws secretsmanager create-secret --name ${secretName} --secret-string testsqssec:oldsecret`);
    say(`$ kubectl -n ${namespace} apply -f examples/rotation-mapping/`);
    await applyExample(world.bed.kubeConfig, 'rotation-mapping', namespace);
    const secretValue = async (): Promise<string | undefined> => {
      const secret = await core
        .readNamespacedSecret({ namespace, name: 'app-secret' })
        .catch(() => undefined);
      const data = secret?.data?.VALUE;
      return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
    };
    await waitFor(
      'Secret app-secret synced',
      30_000,
      async () => (await secretValue()) === 'testsqssec:oldsecret',
    );
    await waitFor('the Deployment adopted by rotation', 30_000, () =>
      adopted(world.bed.kubeConfig, namespace, 'operatortest'),
    );
    const before = await waitFor('the first ReplicaSet', 30_000, async () => {
      const rows = await replicaSetRows(world, namespace, 'operatortest');
      return rows.length === 1 ? rows : undefined;
    });
    say(`app-secret VALUE=${await secretValue()}; ReplicaSets of Deployment operatortest:`);
    printReplicaSets(before);

    say(
      `$ aws secretsmanager put-secret-value --secret-id ${secretName} --secret-string testsqssec:newsecret`,
    );
    await world.secretsManager.send(
      new PutSecretValueCommand({ SecretId: secretName, SecretString: 'testsqssec:newsecret' }),
    );
    // moto records no CloudTrail events: put the one the EventBridge rule of deploy/aws/rotation.yaml would deliver.
    await world.sqs.send(
      new SendMessageCommand({
        QueueUrl: demoQueueUrl,
        MessageBody: await cloudTrailEvent('PutSecretValue', secretName, arn),
      }),
    );
    say(`  (EventBridge → SQS: the CloudTrail PutSecretValue event sent to ${demoQueueUrl})`);
    const started = performance.now();
    await waitFor(
      'app-secret to carry the new value',
      30_000,
      async () => (await secretValue()) === 'testsqssec:newsecret',
    );
    const synced = performance.now();
    const after = await waitFor('a new ReplicaSet', 30_000, async () => {
      const rows = await replicaSetRows(world, namespace, 'operatortest');
      return rows.length === 2 ? rows : undefined;
    });
    const rolled = performance.now();
    say(
      `app-secret VALUE=${await secretValue()} after ${((synced - started) / 1000).toFixed(1)} s; ` +
        `the rollout ${((rolled - started) / 1000).toFixed(1)} s after the event:`,
    );
    printReplicaSets(after);
    const mapping = await waitFor('the mapping status to show the rollout', 15_000, async () => {
      const current = await readMapping(world.bed.kubeConfig, namespace, 'secretsrotationmapping-sample');
      return (current.status?.workloadsRolled?.length ?? 0) > 0 ? current : undefined;
    });
    const change = mapping.status?.lastChange;
    say(
      `SecretsRotationMapping status: lastChange ${change?.reason} via ${change?.source} → version ${change?.versionId?.slice(0, 8)}; ` +
        `rolled ${mapping.status?.workloadsRolled?.map((workload) => `${workload.kind}/${workload.name}`).join(', ')}`,
    );
    const newest = after.at(-1);
    return `new ReplicaSet ${newest?.name} (restartedAt ${newest?.restartedAt}); app-secret re-synced first`;
  },
};

const writeThrough: Scenario = {
  title: 'write-through (NASE): labelled Secret lands in Secrets Manager',
  needsRelease: true,
  story:
    'The NASE idea of the aws-secret-sidecar-injector post: `kubectl create secret` as usual, the value stored in Secrets Manager. A\n' +
    'Secret labelled smk.dev/write-through: "true" goes to the webhook\'s /mutate/secrets (the chart\'s\n' +
    'write-through, on here); only Secrets with that label are ever sent. The webhook seals the keys to\n' +
    "the controller's key, Kubernetes stores the Secret without data, and the controller writes what was\n" +
    'stored to Secrets Manager, then keeps only the reference.',
  async run(world, release) {
    const installed = needRelease(release);
    const core = world.bed.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = await world.bed.newNamespace('write-through');
    say(`$ kubectl -n ${namespace} apply -f examples/write-through/secret.yaml`);
    try {
      await applyExample(world.bed.kubeConfig, 'write-through', namespace);
    } catch (error) {
      const cause = error instanceof Error ? error.cause : undefined;
      const webhook = JSON.stringify(
        installed.rendered.find(
          (object) => object.kind === 'Deployment' && object.metadata.name === `${installed.name}-webhook`,
        ),
      );
      const why = webhook.includes('--write-through')
        ? ''
        : ' (the rendered webhook Deployment has no --write-through flag: the chart does not turn the feature on yet)';
      throw new Error(`the API server refused the Secret: ${apiMessage(cause ?? error)}${why}`);
    }
    const stored = await core.readNamespacedSecret({ namespace, name: 'payment-api' });
    const suffix = `${namespace}/payment-api`;
    // Where the Secret says its value lives (src/core/write-through.ts), else the default name.
    const annotatedArn = stored.metadata?.annotations?.[writeThroughAnnotations.arn];
    const found = annotatedArn
      ? { ARN: annotatedArn, Name: annotatedArn }
      : await waitFor(`a Secrets Manager secret named …${suffix}`, 15_000, async () => {
          const list = await world.secretsManager.send(new ListSecretsCommand({ MaxResults: 100 }));
          return list.SecretList?.find((secret) => secret.Name?.endsWith(suffix));
        }).catch(() => undefined);
    if (!found) {
      const keys = Object.keys(stored.data ?? {}).join(', ');
      throw new Error(
        `the Secret was stored as a plain Kubernetes Secret (data keys: ${keys || 'none'}) and no Secrets Manager ` +
          `secret named …${suffix} exists: write-through (issue 8) is not in this build`,
      );
    }
    // The controller writes the sealed value once it sees the stored Secret.
    const value = await waitFor(`${found.Name} at AWSCURRENT with the Secret's keys`, 20_000, async () => {
      const current = await world.secretsManager
        .send(new GetSecretValueCommand({ SecretId: found.ARN, VersionStage: 'AWSCURRENT' }))
        .catch(() => undefined);
      return current?.SecretString?.includes('example-not-a-real-key') ? current : undefined;
    });
    say(`$ aws secretsmanager get-secret-value --secret-id ${found.Name}`);
    say(value.SecretString ?? '(binary)');
    // Once written, the controller replaces the sealed copy by the ARN and version.
    const written = await waitFor('the sealed copy replaced by the reference', 20_000, async () => {
      const secret = await core.readNamespacedSecret({ namespace, name: 'payment-api' });
      return secret.metadata?.annotations?.[writeThroughAnnotations.sealed] === undefined
        ? secret
        : undefined;
    });
    say(`stored Secret: data keys [${Object.keys(written.data ?? {}).join(', ')}]; annotations:`);
    for (const [key, annotation] of Object.entries(written.metadata?.annotations ?? {})) {
      if (key.startsWith('smk.dev/')) say(`  ${key}: ${annotation}`);
    }
    const leftInEtcd = [stored, written].some(
      (secret) =>
        JSON.stringify(secret).includes(Buffer.from('example-not-a-real-key').toString('base64')) ||
        JSON.stringify(secret).includes('example-not-a-real-key'),
    );
    if (leftInEtcd) throw new Error('the value is still in the stored Kubernetes Secret');
    return `Secret ${namespace}/payment-api stored as ${found.Name}; etcd keeps only the reference`;
  },
};

const doctor: Scenario = {
  title: 'smk doctor: every check against the demo install',
  needsRelease: true,
  story:
    'The checks a platform team runs after installing: cluster, CRDs, the webhook configuration (caBundle\n' +
    "against the certificate the webhook serves), a ServiceAccount's IRSA role reading a secret, the\n" +
    'rotation queue, the CSI socket.',
  async run(world, release) {
    const installed = needRelease(release);
    const namespace = await world.bed.newNamespace('doctor');
    const core = world.bed.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({
      namespace,
      body: {
        metadata: {
          name: 'webserver-service-account',
          annotations: {
            'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/webserver-secrets-role',
          },
        },
      },
    });
    const args = [
      'doctor',
      `--webhook-config=${installed.webhookConfigurationName}`,
      `--service-account=${namespace}/webserver-service-account`,
      `--secret=${seedArn}`,
      `--queue-url=${demoQueueUrl}`,
      `--csi-socket=${installed.csiSocket}`,
    ];
    say(`$ smk ${args.join(' ')}`);
    const result = await world.smk(args, { env: { KUBECONFIG: world.bed.kubeConfigPath } });
    say(indent(result.stdout + result.stderr, '  '));
    if (result.code !== 0) throw new Error(`smk doctor exited ${result.code}`);
    const passed = result.stdout.split('\n').filter((line) => line.includes('✔')).length;
    return `${passed} checks passed`;
  },
};

export const scenarios: readonly Scenario[] = [
  fetchSeed001,
  injectSeed002,
  csiSeed001,
  syncSeed004,
  rotationSeed003,
  writeThrough,
  doctor,
];
