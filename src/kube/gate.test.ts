import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeHttpError } from './api-errors.ts';
import {
  type CacheState,
  type ControllerState,
  controllerCheck,
  failureText,
  mayStart,
  readinessReport,
} from './gate.ts';

const listed = (resource: string): CacheState => ({
  resource,
  synced: true,
  healthy: true,
  problem: undefined,
});
const refused = (resource: string): CacheState => ({
  resource,
  synced: false,
  healthy: false,
  problem: failureText(
    'list',
    resource,
    new KubeHttpError('GET', `/${resource}`, 403, { reason: 'Forbidden' }),
  ),
});

const controller = (overrides: Partial<ControllerState>): ControllerState => ({
  name: 'rotation',
  phase: 'waiting',
  caches: [],
  probes: [],
  selfReady: true,
  ...overrides,
});

describe('gate: when a controller may start', () => {
  it('starts once every cache it reads has listed, whatever the caches it does not read', () => {
    assert.equal(mayStart({ phase: 'waiting', caches: [listed('secrets in namespace a')] }), true);
    assert.equal(mayStart({ phase: 'waiting', caches: [] }), true, 'it reads no cache');
    assert.equal(
      mayStart({ phase: 'waiting', caches: [listed('secrets in namespace a'), refused('deployments.apps')] }),
      false,
      'one refused list of its own holds it',
    );
  });

  it('does not start while preparing (probes running) or once it runs', () => {
    assert.equal(mayStart({ phase: 'preparing', caches: [listed('x')] }), false);
    assert.equal(mayStart({ phase: 'running', caches: [listed('x')] }), false, 'starts once');
  });

  it('holds every controller reading a kind refused to them all (a shared kind), and only those', () => {
    const secrets = refused('secrets in namespace a');
    const controllers = {
      sync: [secrets, listed('secretsyncs.smk.dev in namespace a')],
      rotation: [secrets, listed('deployments.apps in namespace a')],
      'write-through': [listed('secrets in namespace a (label selector smk.dev/write-through=true)')],
    };
    const startable = Object.entries(controllers)
      .filter(([, caches]) => mayStart({ phase: 'waiting', caches }))
      .map(([name]) => name);
    assert.deepEqual(startable, ['write-through']);
  });
});

describe('gate: what a controller waits for', () => {
  it('names the resource and the RBAC verb refused, for a controller waiting for its caches', () => {
    const check = controllerCheck(
      controller({ caches: [listed('secrets in namespace a'), refused('deployments.apps in namespace a')] }),
    );
    assert.equal(check.ok, false);
    assert.equal(
      check.detail,
      'waiting for its caches: forbidden: this identity may not list deployments.apps in namespace a; it needs RBAC list and watch there (retrying)',
    );
  });

  it('names a CRD probe that has not answered, and the caches listing meanwhile', () => {
    const check = controllerCheck(
      controller({
        phase: 'preparing',
        probes: [
          { resource: 'secretsrotationmappings.awssecretsoperator.secretoperator', problem: undefined },
        ],
        caches: [
          { resource: 'configmaps in namespace a', synced: false, healthy: false, problem: undefined },
        ],
      }),
    );
    assert.equal(
      check.detail,
      'waiting to learn whether secretsrotationmappings.awssecretsoperator.secretoperator is served; waiting for its caches: configmaps in namespace a (listing)',
    );
  });

  it('once running: ok while its caches are healthy and it says it is ready', () => {
    assert.deepEqual(controllerCheck(controller({ phase: 'running', caches: [listed('x')] })), {
      name: 'rotation',
      ok: true,
      detail: 'ok',
    });
    const restarting = controllerCheck(
      controller({
        phase: 'running',
        caches: [
          {
            resource: 'x',
            synced: true,
            healthy: false,
            problem: failureText('watch', 'x', new KubeHttpError('GET', '/x', 500, undefined)),
          },
        ],
      }),
    );
    assert.equal(restarting.detail, 'a cache is restarting: watch x failed (HTTP 500) (retrying)');
    const own = controllerCheck(controller({ name: 'write-through', phase: 'running', selfReady: false }));
    assert.deepEqual(own, {
      name: 'write-through',
      ok: false,
      detail: 'running, not ready by its own check',
    });
  });
});

describe('gate: the process readiness', () => {
  it('is ready only when every controller is; one line per controller either way', () => {
    const sync = controllerCheck(controller({ name: 'sync', phase: 'running' }));
    const rotation = controllerCheck(controller({ caches: [refused('deployments.apps in namespace a')] }));
    const waiting = readinessReport([sync, rotation]);
    assert.equal(waiting.ready, false);
    assert.equal(
      waiting.text,
      '[+]sync ok\n[-]rotation waiting for its caches: forbidden: this identity may not list deployments.apps in namespace a; it needs RBAC list and watch there (retrying)\nnot ready\n',
    );
    const all = readinessReport([sync, controllerCheck(controller({ phase: 'running' }))]);
    assert.deepEqual(all, { ready: true, text: '[+]sync ok\n[+]rotation ok\nok\n' });
  });

  it('says what a failure is without the response body: refusals by verb, others by status', () => {
    assert.equal(
      failureText('watch', 'secrets in all namespaces', new KubeHttpError('GET', '/x', 401, undefined)),
      "unauthorized: the API server refused this identity's credentials to watch secrets in all namespaces (retrying)",
    );
    assert.match(
      failureText(
        'list',
        'rollouts.argoproj.io in namespace a',
        new KubeHttpError('GET', '/x', 404, undefined),
      ),
      /not found \(HTTP 404; is its CRD installed\?\)/,
    );
    assert.equal(
      failureText('list', 'x', new Error('socket hang up: token=abc')),
      'list x failed (Error: unexpected error) (retrying)',
    );
  });
});
