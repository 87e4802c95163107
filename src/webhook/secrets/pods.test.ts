import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { resolvePayloads } from '../../core/payloads.ts';
import type { ReadResult, SecretReader, SecretRequest } from '../../core/source.ts';
import { parseMountSpec } from '../../core/spec.ts';
import { encodeSecretData } from '../../core/write-through.ts';
import { reviewAdmission } from '../admission.ts';
import { defaultInjectorConfig, type InjectorConfig } from '../mutate.ts';
import type { Pod } from '../pod.ts';
import { withWriteThroughVolumes } from './pod-review.ts';
import { documentFileName, type SwapResult, swapWriteThroughVolumes, type WriteThroughRef } from './pods.ts';

const config: InjectorConfig = { ...defaultInjectorConfig, agentImage: 'registry.example/smk:test' };
const fixtures = new URL('./fixtures/', import.meta.url);
const refs: Record<string, WriteThroughRef> = {
  'db-creds': {
    region: 'us-east-1',
    secretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-a/db-creds-AbCdEf',
    keys: ['password', 'username'],
    base64Keys: [],
  },
  'api-key': {
    region: 'us-east-1',
    secretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-a/api-key-GhIjKl',
    keys: ['key', 'other'],
    base64Keys: [],
  },
  keystore: {
    region: 'us-east-1',
    secretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kubernetes/team-a/keystore-MnOpQr',
    keys: ['keystore.p12', 'password'],
    base64Keys: ['keystore.p12'],
  },
};
const lookups: string[] = [];
const lookup = (namespace: string, name: string): WriteThroughRef | undefined => {
  lookups.push(`${namespace}/${name}`);
  return namespace === 'team-a' ? refs[name] : undefined;
};

function fixture(name: string): Pod {
  return parseYaml(readFileSync(new URL(name, fixtures), 'utf8')) as Pod;
}

function swapped(result: SwapResult): Pod {
  if ('denied' in result) assert.fail(`denied: ${result.denied}`);
  return result.pod;
}

function denied(result: SwapResult, text: string): void {
  assert.ok('denied' in result, 'expected a denial');
  if ('denied' in result)
    assert.ok(result.denied.includes(text), `"${result.denied}" should include "${text}"`);
}

const appPod = (spec: Partial<Pod['spec']>): Pod => ({
  metadata: { name: 'p' },
  spec: { containers: [{ name: 'app', image: 'app:1' }], ...spec },
});

test('fixture pod-volume: write-through secret volumes become memory volumes filled by an agent per volume', () => {
  const input = fixture('pod-volume.in.yaml');
  const before = structuredClone(input);
  const pod = swapped(swapWriteThroughVolumes(input, 'team-a', lookup, config));
  assert.deepEqual(JSON.parse(JSON.stringify(pod)), fixture('pod-volume.out.yaml'));
  assert.deepEqual(input, before, 'the input is not modified');
});

test('the agent spec writes exactly the files kubelet would (keys, items paths, modes) plus the document dotfile', async () => {
  const pod = swapped(swapWriteThroughVolumes(fixture('pod-volume.in.yaml'), 'team-a', lookup, config));
  const documents: Record<string, string> = {
    [refs['db-creds']?.secretId ?? '']: encodeSecretData(
      new Map([
        ['password', new TextEncoder().encode('pw')],
        ['username', new TextEncoder().encode('app')],
      ]),
      's',
    ).document,
    [refs['api-key']?.secretId ?? '']: '{"key":"k-1","other":"o"}',
  };
  const reader: SecretReader = {
    async read(requests: readonly SecretRequest[]): Promise<ReadResult[]> {
      return requests.map((request) => ({
        ok: true,
        value: {
          request,
          arn: request.id,
          name: request.id,
          versionId: 'v1',
          bytes: new TextEncoder().encode(documents[request.id] ?? ''),
          binary: false,
        },
      }));
    },
    describe: () => Promise.reject(new Error('not used')),
  };
  const files: Record<string, Record<string, string>> = {};
  for (const container of pod.spec.initContainers ?? []) {
    const objects = container.env?.find((variable) => variable.name === 'SMK_OBJECTS')?.value;
    assert.equal(typeof objects, 'string');
    const payloads = await resolvePayloads(
      parseMountSpec({ objects: objects as string }, 'SMK_OBJECTS'),
      reader,
    );
    files[container.name] = Object.fromEntries(
      payloads.map((payload) => [
        `${payload.name} ${payload.mode.toString(8)}`,
        new TextDecoder().decode(payload.bytes),
      ]),
    );
  }
  assert.deepEqual(files, {
    'smk-write-through-0': {
      [`${documentFileName} 644`]: '{"password":"pw","username":"app"}',
      'password 644': 'pw',
      'username 644': 'app',
    },
    'smk-write-through-1': {
      [`${documentFileName} 400`]: '{"key":"k-1","other":"o"}',
      'api.key 400': 'k-1',
    },
  });
});

test('a swapped pod swapped again is unchanged; a later identity webhook is copied into the agents', () => {
  const once = swapped(swapWriteThroughVolumes(fixture('pod-volume.in.yaml'), 'team-a', lookup, config));
  const twice = swapped(swapWriteThroughVolumes(once, 'team-a', lookup, config));
  assert.deepEqual(fastJsonPatch.compare(once, twice), []);
  const withIdentity = structuredClone(once);
  const app = withIdentity.spec.containers[0];
  assert.ok(app);
  app.env = [...(app.env ?? []), { name: 'AWS_REGION', value: 'eu-west-1' }];
  const again = swapped(swapWriteThroughVolumes(withIdentity, 'team-a', lookup, config));
  for (const agent of again.spec.initContainers ?? []) {
    assert.ok(
      agent.env?.some((variable) => variable.name === 'AWS_REGION' && variable.value === 'eu-west-1'),
    );
    assert.equal(agent.env?.[0]?.name, 'SMK_OBJECTS');
  }
  assert.equal(again.spec.initContainers?.length, 2);
});

test("write-through agents get the cluster's AWS endpoint, once, also after a swap again", () => {
  const endpoint = 'http://aws.smk.test:4566';
  const withEndpoint: InjectorConfig = { ...config, awsEndpointUrl: endpoint };
  const once = swapped(
    swapWriteThroughVolumes(fixture('pod-volume.in.yaml'), 'team-a', lookup, withEndpoint),
  );
  const twice = swapped(swapWriteThroughVolumes(once, 'team-a', lookup, withEndpoint));
  assert.deepEqual(fastJsonPatch.compare(once, twice), []);
  assert.equal(twice.spec.initContainers?.length, 2);
  for (const agent of twice.spec.initContainers ?? []) {
    assert.deepEqual(
      agent.env?.filter((variable) => variable.name === 'AWS_ENDPOINT_URL'),
      [{ name: 'AWS_ENDPOINT_URL', value: endpoint }],
    );
  }
});

test('env, envFrom and projected uses of a write-through Secret are refused with how to consume it', () => {
  denied(
    swapWriteThroughVolumes(
      appPod({
        containers: [
          {
            name: 'app',
            env: [
              { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db-creds', key: 'password' } } },
            ],
          },
        ],
      }),
      'team-a',
      lookup,
      config,
    ),
    'container "app" env DB_PASSWORD: Secret "db-creds" is write-through (its value lives in Secrets Manager, not in the Secret); mount it as a secret volume (smk fills the volume from Secrets Manager) or sync it into a plain Secret with a SecretSync',
  );
  denied(
    swapWriteThroughVolumes(
      appPod({ initContainers: [{ name: 'migrate', envFrom: [{ secretRef: { name: 'api-key' } }] }] }),
      'team-a',
      lookup,
      config,
    ),
    'container "migrate" envFrom: Secret "api-key" is write-through',
  );
  denied(
    swapWriteThroughVolumes(
      appPod({ volumes: [{ name: 'all', projected: { sources: [{ secret: { name: 'db-creds' } }] } }] }),
      'team-a',
      lookup,
      config,
    ),
    'volume "all": projected source: Secret "db-creds" is write-through',
  );
});

test('volumes the agent cannot lay out like kubelet are refused; optional missing keys are left out', () => {
  denied(
    swapWriteThroughVolumes(
      appPod({ volumes: [{ name: 'ks', secret: { secretName: 'keystore' } }] }),
      'team-a',
      lookup,
      config,
    ),
    'volume "ks" (Secret "keystore"): key "keystore.p12" is binary',
  );
  const onlyText = swapped(
    swapWriteThroughVolumes(
      appPod({
        volumes: [
          { name: 'ks', secret: { secretName: 'keystore', items: [{ key: 'password', path: 'pw' }] } },
        ],
      }),
      'team-a',
      lookup,
      config,
    ),
  );
  assert.equal(onlyText.spec.initContainers?.length, 1);
  denied(
    swapWriteThroughVolumes(
      appPod({
        volumes: [{ name: 'v', secret: { secretName: 'api-key', items: [{ key: 'nope', path: 'x' }] } }],
      }),
      'team-a',
      lookup,
      config,
    ),
    'items names key "nope", which the Secret does not have (it has key, other)',
  );
  const optional = swapped(
    swapWriteThroughVolumes(
      appPod({
        volumes: [
          {
            name: 'v',
            secret: {
              secretName: 'api-key',
              optional: true,
              items: [
                { key: 'nope', path: 'x' },
                { key: 'key', path: 'k' },
              ],
            },
          },
        ],
      }),
      'team-a',
      lookup,
      config,
    ),
  );
  const objects = JSON.parse(String(optional.spec.initContainers?.[0]?.env?.[0]?.value)) as [
    { jmesPath: unknown[] },
  ];
  assert.equal(objects[0].jmesPath.length, 1);
  denied(
    swapWriteThroughVolumes(
      appPod({
        volumes: [{ name: 'v', secret: { secretName: 'api-key', items: [{ key: 'key', path: 'sub/key' }] } }],
      }),
      'team-a',
      lookup,
      config,
    ),
    'item path "sub/key" is not supported',
  );
});

test('pods using other Secrets, or the same name in another namespace, pass untouched', () => {
  const pod = appPod({ volumes: [{ name: 'v', secret: { secretName: 'db-creds' } }] });
  const result = swapWriteThroughVolumes(pod, 'team-b', lookup, config);
  assert.ok(!('denied' in result) && result.pod === pod && !result.changed);
});

const review = (pod: unknown, namespace = 'team-a') => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    operation: 'CREATE',
    namespace,
    object: pod,
  },
});

test('admission: the injector and the swap answer with one patch that applies to the pod as sent', () => {
  const pod = {
    ...fixture('pod-volume.in.yaml'),
    metadata: {
      name: 'shop',
      annotations: {
        'smk.dev/inject': 'true',
        'smk.dev/objects': '- objectName: other-secret\n  objectType: secretsmanager',
      },
    },
  };
  const body = review(pod);
  const result = withWriteThroughVolumes(body, reviewAdmission(body, config), lookup, config);
  assert.equal(result.status, 200);
  if (result.status !== 200) return;
  assert.equal(result.outcome, 'mutated');
  const patch = JSON.parse(
    Buffer.from(result.body.response.patch ?? '', 'base64').toString(),
  ) as fastJsonPatch.Operation[];
  const out = fastJsonPatch.applyPatch(structuredClone(pod), patch, true, false).newDocument as Pod;
  const names = (out.spec.initContainers ?? []).map((container) => container.name);
  assert.deepEqual(names.slice(0, 3), ['smk-write-through-0', 'smk-write-through-1', 'smk-agent-init']);
  assert.ok(out.spec.volumes?.some((volume) => volume.name === 'smk-secrets'));
  assert.deepEqual(
    (out.spec.volumes ?? []).find((volume) => volume.name === 'db'),
    {
      name: 'db',
      emptyDir: { medium: 'Memory', sizeLimit: '4Mi' },
    },
  );
});

test('admission: env use is denied with the message; pods naming no Secret are not even parsed', () => {
  const body = review(
    appPod({ containers: [{ name: 'app', envFrom: [{ secretRef: { name: 'db-creds' } }] }] }),
  );
  const result = withWriteThroughVolumes(body, reviewAdmission(body, config), lookup, config);
  assert.equal(result.status === 200 && result.outcome, 'denied');
  lookups.length = 0;
  const plain = review({
    metadata: { name: 'x' },
    spec: { containers: [{ name: 'app', env: [{ name: 'A', value: 'b' }] }] },
  });
  const untouched = reviewAdmission(plain, config);
  assert.equal(withWriteThroughVolumes(plain, untouched, lookup, config), untouched);
  assert.deepEqual(lookups, []);
});
