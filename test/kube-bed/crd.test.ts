/** The bed's API server validates custom resources against their OpenAPI schema. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ApiException, ApiextensionsV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { connectTestBed, type TestBed } from '../testbed/index.ts';
import { apiStatus, eventually } from './wait.ts';

describe('custom resource definitions', () => {
  let bed: TestBed;
  let namespace: string;
  const group = `t${randomBytes(3).toString('hex')}.testbed.smk.dev`;
  const crdName = `widgets.${group}`;

  before(async () => {
    bed = await connectTestBed();
    namespace = await bed.newNamespace('crd');
    const extensions = bed.kubeConfig.makeApiClient(ApiextensionsV1Api);
    await extensions.createCustomResourceDefinition({
      body: {
        metadata: { name: crdName },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      required: ['size'],
                      properties: {
                        size: { type: 'integer', minimum: 1, maximum: 10 },
                        color: { type: 'string', _enum: ['red', 'blue'] },
                      },
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    await eventually('the CRD to be established', async () => {
      const crd = await extensions.readCustomResourceDefinition({ name: crdName });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
        ? true
        : undefined;
    });
  });

  after(async () => {
    await bed.kubeConfig.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: crdName });
    await bed.stop();
  });

  function createWidget(name: string, spec: Record<string, unknown>): Promise<unknown> {
    return bed.kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group,
      version: 'v1',
      namespace,
      plural: 'widgets',
      body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name }, spec },
    });
  }

  it('stores a valid object and prunes fields the schema does not know', async () => {
    // The resource's REST handler can lag the Established condition by a moment.
    await eventually('the widgets endpoint to accept objects', async () => {
      try {
        return await createWidget('good', { size: 3, color: 'red', unknown: 'dropped' });
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return undefined;
        throw error;
      }
    });
    const stored = await bed.kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group,
      version: 'v1',
      namespace,
      plural: 'widgets',
      name: 'good',
    });
    assert.deepEqual((stored as { spec: unknown }).spec, { size: 3, color: 'red' });
  });

  const invalid: Array<[string, Record<string, unknown>, string]> = [
    ['a wrong type', { size: 'big' }, 'spec.size'],
    ['a missing required field', { color: 'red' }, 'spec.size'],
    ['a value above the maximum', { size: 11 }, 'spec.size'],
    ['a value outside the enum', { size: 1, color: 'green' }, 'spec.color'],
  ];
  for (const [title, spec, field] of invalid) {
    it(`rejects an object with ${title} (422 naming ${field})`, async () => {
      let caught: unknown;
      try {
        await createWidget(`bad-${randomBytes(2).toString('hex')}`, spec);
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof ApiException, `expected an API error, got ${String(caught)}`);
      assert.equal(caught.code, 422);
      assert.match(String(caught.body), new RegExp(field.replace('.', '\\.')));
    });
  }

  it('does not create the rejected objects', async () => {
    const list = (await bed.kubeConfig
      .makeApiClient(CustomObjectsApi)
      .listNamespacedCustomObject({ group, version: 'v1', namespace, plural: 'widgets' })) as {
      items: Array<{ metadata: { name: string } }>;
    };
    assert.deepEqual(
      list.items.map((item) => item.metadata.name),
      ['good'],
    );
    assert.equal(
      await apiStatus(
        bed.kubeConfig
          .makeApiClient(CustomObjectsApi)
          .getNamespacedCustomObject({ group, version: 'v1', namespace, plural: 'widgets', name: 'bad' }),
      ),
      404,
    );
  });
});
