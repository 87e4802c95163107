/**
 * The chart's image and AWS endpoint values reach every smk pod and every injected agent. Rendered
 * by a real helm with the values a local image and a local endpoint need (docs/image.md): each
 * smk container's image, pullPolicy and AWS_ENDPOINT_URL; then the webhook's rendered agent flags
 * go through the injector's own flag parser and mutation (the code `smk webhook` runs) on seed
 * 002's pod, so what the chart says is what the injected init container gets.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { injectorConfigFromFlags } from '../../src/webhook/injector-config.ts';
import { mutatePod } from '../../src/webhook/mutate.ts';
import type { Pod } from '../../src/webhook/pod.ts';
import { find, type RenderedObject, renderChart } from './helm.ts';

const seedDeployment = new URL('../../src/webhook/fixtures/seed-002-deployment.in.yaml', import.meta.url);
const endpoint = 'http://aws.smk.test:4566';
const local = {
  'image.repository': 'smk.local/smk',
  'image.tag': 'dev',
  'image.pullPolicy': 'Never',
  'aws.endpointUrl': endpoint,
  'csiProvider.enabled': true,
};

interface Container {
  name: string;
  image: string;
  imagePullPolicy: string;
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
}

function containers(objects: readonly RenderedObject[]): Array<{ owner: string; container: Container }> {
  return objects
    .filter((object) => ['Deployment', 'DaemonSet'].includes(object.kind))
    .flatMap((object) => {
      const spec = (
        object.spec as { template: { spec: { containers: Container[]; initContainers?: Container[] } } }
      ).template.spec;
      return [...spec.containers, ...(spec.initContainers ?? [])].map((container) => ({
        owner: `${object.kind}/${object.metadata.name}`,
        container,
      }));
    });
}

/** `--name=value` of the rendered args, as the CLI's parser reads them. */
function flag(args: readonly string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return args.find((arg) => arg.startsWith(prefix))?.slice(prefix.length);
}

/** The webhook container's args (release "smk": objects are named smk-<role>). */
function webhookArgs(objects: readonly RenderedObject[]): string[] {
  const deployment = find(objects, 'Deployment', 'smk-webhook');
  const [webhook] = containers([deployment]);
  return webhook?.container.args ?? [];
}

async function injectedSeedPod(args: readonly string[]): Promise<Container> {
  const config = injectorConfigFromFlags(
    {
      agentImage: flag(args, 'agent-image'),
      pullPolicy: flag(args, 'agent-pull-policy'),
      awsEndpointUrl: flag(args, 'agent-aws-endpoint-url'),
    },
    'webhook',
  );
  const deployment = parseYaml(await readFile(seedDeployment, 'utf8')) as { spec: { template: Pod } };
  const result = mutatePod(deployment.spec.template, config);
  if ('denied' in result) assert.fail(result.denied);
  const init = result.pod.spec.initContainers?.find((container) => container.name === 'smk-agent-init');
  assert.ok(init, 'the seed pod is injected');
  return init as unknown as Container;
}

describe('Helm chart: a local image and an AWS endpoint for every smk pod and injected agent', () => {
  test('every smk container runs the local image with pullPolicy Never and AWS_ENDPOINT_URL', async () => {
    const { objects } = await renderChart({ release: 'smk', namespace: 'smk', setJson: local });
    const all = containers(objects);
    assert.deepEqual([...new Set(all.map(({ owner }) => owner))].sort(), [
      'DaemonSet/smk-csi-provider',
      'Deployment/smk-controller',
      'Deployment/smk-webhook',
    ]);
    for (const { owner, container } of all) {
      const where = `${owner} ${container.name}`;
      assert.equal(container.image, 'smk.local/smk:dev', where);
      assert.equal(container.imagePullPolicy, 'Never', where);
      assert.deepEqual(
        container.env?.filter((variable) => variable.name === 'AWS_ENDPOINT_URL'),
        [{ name: 'AWS_ENDPOINT_URL', value: endpoint }],
        where,
      );
    }
  });

  test('the injected agent gets the same image, pullPolicy and endpoint through the webhook flags', async () => {
    const { objects } = await renderChart({ release: 'smk', namespace: 'smk', setJson: local });
    const init = await injectedSeedPod(webhookArgs(objects));
    assert.equal(init.image, 'smk.local/smk:dev');
    assert.equal(init.imagePullPolicy, 'Never');
    assert.ok(
      init.env?.some((variable) => variable.name === 'AWS_ENDPOINT_URL' && variable.value === endpoint),
    );
  });

  test('defaults: the release image, IfNotPresent, and no endpoint anywhere (AWS itself)', async () => {
    const { objects, text } = await renderChart({ release: 'smk', namespace: 'smk' });
    assert.doesNotMatch(text, /AWS_ENDPOINT_URL|agent-aws-endpoint-url/);
    const init = await injectedSeedPod(webhookArgs(objects));
    assert.match(init.image, /^ghcr\.io\/smk-dev\/smk:\d+\.\d+\.\d+/);
    assert.equal(init.imagePullPolicy, 'IfNotPresent');
    assert.ok(!init.env?.some((variable) => variable.name === 'AWS_ENDPOINT_URL'));
  });

  test('webhook.agent.image and pullPolicy still override for the agent alone', async () => {
    const { objects } = await renderChart({
      release: 'smk',
      namespace: 'smk',
      setJson: {
        ...local,
        'webhook.agent.image': 'registry.example/smk-agent:1',
        'webhook.agent.pullPolicy': 'Always',
      },
    });
    const init = await injectedSeedPod(webhookArgs(objects));
    assert.equal(init.image, 'registry.example/smk-agent:1');
    assert.equal(init.imagePullPolicy, 'Always');
  });

  test('an endpoint that is not an http(s) URL fails the render, naming the value', async () => {
    for (const bad of ['localstack:4566', 'http://host name', 'file:///etc/passwd']) {
      await assert.rejects(
        renderChart({ release: 'smk', namespace: 'smk', setJson: { 'aws.endpointUrl': bad } }),
        /endpointUrl/,
        bad,
      );
    }
  });
});
