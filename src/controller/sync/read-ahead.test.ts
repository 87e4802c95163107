import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SecretRequest } from '../../core/source.ts';
import { type SyncJob, secretSyncJob } from '../jobs.ts';
import { createReadAhead } from './read-ahead.ts';

interface Spec {
  readonly serviceAccountName?: string;
  readonly objects: readonly {
    objectName: string;
    objectType?: string;
    jmesPath?: { path: string; objectAlias: string }[];
  }[];
  readonly region?: string;
  readonly refreshPolicy?: string;
  readonly assumeRole?: { roleArn: string };
}

function secretSync(namespace: string, name: string, spec: Spec): object {
  return {
    apiVersion: 'smk.dev/v1alpha1',
    kind: 'SecretSync',
    metadata: { namespace, name, uid: `uid-${name}`, generation: 1 },
    spec: {
      serviceAccountName: spec.serviceAccountName ?? 'app',
      objects: spec.objects.map((object) => ({ objectType: 'secretsmanager', ...object })),
      ...(spec.region ? { region: spec.region } : {}),
      ...(spec.refreshPolicy ? { refreshPolicy: spec.refreshPolicy } : {}),
      ...(spec.assumeRole ? { assumeRole: spec.assumeRole } : {}),
    },
  };
}

/** A queue of SecretSyncs by key (`SecretSync/namespace/name`), in hand-out order per namespace. */
function world(objects: Record<string, object>, now: () => number = () => 0) {
  const jobCalls = new Map<string, number>();
  const readAhead = createReadAhead({
    now,
    queued: (namespace, limit) =>
      Object.keys(objects)
        .filter((key) => key.split('/')[1] === namespace)
        .slice(0, limit),
    jobOf: (key) => {
      const object = objects[key];
      if (!object) return undefined;
      return {
        object,
        job: () => {
          jobCalls.set(key, (jobCalls.get(key) ?? 0) + 1);
          return secretSyncJob(object);
        },
      };
    },
    defaultRegion: 'us-east-1',
    allowExpressions: false,
  });
  return { readAhead, jobCalls };
}

const request = (id: string, region = 'us-east-1'): SecretRequest => ({
  objectType: 'secretsmanager',
  id,
  region,
  versionStage: 'AWSCURRENT',
});

const ids = (requests: readonly SecretRequest[]): string[] => requests.map((r) => r.id);

/** What the identity's cache holds (or has in flight), by id. */
const holding =
  (...held: string[]) =>
  (r: SecretRequest): boolean =>
    held.includes(r.id);
const nothingHeld = holding();

function runningJob(namespace: string, spec: Spec): SyncJob {
  return secretSyncJob(secretSync(namespace, 'running', spec));
}

describe('read-ahead', () => {
  it("carries the next queued syncs' secrets of the same identity, up to one batch, own and duplicates left out", () => {
    const objects: Record<string, object> = {};
    for (let i = 0; i < 30; i++) {
      objects[`SecretSync/team-a/s${i}`] = secretSync('team-a', `s${i}`, {
        objects: [{ objectName: `db-${i % 25}` }],
      });
    }
    const { readAhead } = world(objects);
    const job = runningJob('team-a', { objects: [{ objectName: 'db-0' }] });
    const ahead = readAhead(job, [request('db-0')], nothingHeld);
    assert.deepEqual(
      ids(ahead),
      Array.from({ length: 19 }, (_, i) => `db-${i + 1}`),
      'db-0 is read by the sync itself; 1 + 19 make one BatchGetSecretValue',
    );
    assert.ok(ahead.every((r) => r.versionStage === 'AWSCURRENT' && r.region === 'us-east-1'));
    assert.deepEqual(
      readAhead(
        job,
        Array.from({ length: 20 }, (_, i) => request(`own-${i}`)),
        nothingHeld,
      ),
      [],
    );
    assert.deepEqual(readAhead(job, [], nothingHeld), [], 'a sync that reads nothing carries nothing');
  });

  it("never carries another ServiceAccount's, another role chain's or another namespace's secrets (tenant rule)", () => {
    const { readAhead } = world({
      'SecretSync/team-a/other-account': secretSync('team-a', 'other-account', {
        serviceAccountName: 'admin',
        objects: [{ objectName: 'admin-only' }],
      }),
      'SecretSync/team-a/chained': secretSync('team-a', 'chained', {
        assumeRole: { roleArn: 'arn:aws:iam::111122223333:role/cross' },
        objects: [{ objectName: 'cross-account' }],
      }),
      'SecretSync/team-b/same-name': secretSync('team-b', 'same-name', { objects: [{ objectName: 'b-db' }] }),
      'SecretSync/team-a/mine': secretSync('team-a', 'mine', { objects: [{ objectName: 'a-db' }] }),
    });
    const job = runningJob('team-a', { objects: [{ objectName: 'first' }] });
    assert.deepEqual(ids(readAhead(job, [request('first')], nothingHeld)), ['a-db']);
    const chained = runningJob('team-a', {
      assumeRole: { roleArn: 'arn:aws:iam::111122223333:role/cross' },
      objects: [{ objectName: 'first' }],
    });
    assert.deepEqual(ids(readAhead(chained, [request('first')], nothingHeld)), ['cross-account']);
  });

  it('only requests that join the same call: same object type and region', () => {
    const { readAhead } = world({
      'SecretSync/team-a/west': secretSync('team-a', 'west', {
        region: 'us-west-2',
        objects: [{ objectName: 'west-db' }],
      }),
      'SecretSync/team-a/param': secretSync('team-a', 'param', {
        objects: [{ objectName: '/app/param', objectType: 'ssmparameter' }],
      }),
      'SecretSync/team-a/east': secretSync('team-a', 'east', { objects: [{ objectName: 'east-db' }] }),
    });
    const job = runningJob('team-a', { objects: [{ objectName: 'first' }] });
    assert.deepEqual(ids(readAhead(job, [request('first')], nothingHeld)), ['east-db']);
  });

  it('leaves out CreatedOnce specs and those the sync refuses, and plans each object once', () => {
    const { readAhead, jobCalls } = world({
      'SecretSync/team-a/once': secretSync('team-a', 'once', {
        refreshPolicy: 'CreatedOnce',
        objects: [{ objectName: 'created-once' }],
      }),
      'SecretSync/team-a/broken': secretSync('team-a', 'broken', { objects: [{ objectName: '' }] }),
      // The administrator did not enable expressions: this sync will be refused, so reads nothing.
      'SecretSync/team-a/expression': secretSync('team-a', 'expression', {
        objects: [{ objectName: 'expression-db', jmesPath: [{ path: 'to_string(a)', objectAlias: 'a' }] }],
      }),
      'SecretSync/team-a/fine': secretSync('team-a', 'fine', { objects: [{ objectName: 'fine-db' }] }),
    });
    const job = runningJob('team-a', { objects: [{ objectName: 'first' }] });
    assert.deepEqual(ids(readAhead(job, [request('first')], nothingHeld)), ['fine-db']);
    assert.deepEqual(ids(readAhead(job, [request('second')], nothingHeld)), [], 'chosen just now');
    assert.deepEqual(Object.fromEntries(jobCalls), {
      'SecretSync/team-a/once': 1,
      'SecretSync/team-a/broken': 1,
      'SecretSync/team-a/expression': 1,
      'SecretSync/team-a/fine': 1,
    });
  });

  it('syncs running side by side carry the secrets after the last one chose; what the cache holds is never read ahead', () => {
    const objects: Record<string, object> = {};
    for (let i = 0; i < 60; i++) {
      objects[`SecretSync/team-a/s${i}`] = secretSync('team-a', `s${i}`, {
        objects: [{ objectName: `db-${i}` }],
      });
    }
    let clock = 0;
    const { readAhead } = world(objects, () => clock);
    const job = runningJob('team-a', { objects: [{ objectName: 'own' }] });
    const first = ids(readAhead(job, [request('own')], nothingHeld));
    const second = ids(readAhead(job, [request('own-2')], nothingHeld));
    assert.deepEqual(
      first,
      Array.from({ length: 19 }, (_, i) => `db-${i}`),
    );
    assert.deepEqual(
      second,
      Array.from({ length: 19 }, (_, i) => `db-${i + 19}`),
      'not yet in flight: chosen within 1 s',
    );
    clock = 999;
    assert.deepEqual(ids(readAhead(job, [request('own-3')], nothingHeld)).slice(0, 1), ['db-38']);
    clock = 2_000;
    const cached = Array.from({ length: 41 }, (_, i) => `db-${i}`);
    assert.deepEqual(
      ids(readAhead(job, [request('own-4')], holding(...cached))),
      Array.from({ length: 19 }, (_, i) => `db-${i + 41}`),
      'after 1 s only what the cache holds is left out',
    );
  });

  it('a sync whose own secrets the cache holds makes no call: nothing rides along and no queue is looked at', () => {
    let looked = 0;
    const readAhead = createReadAhead({
      queued: () => {
        looked += 1;
        return ['SecretSync/team-a/next'];
      },
      jobOf: () => {
        const object = secretSync('team-a', 'next', { objects: [{ objectName: 'next-db' }] });
        return { object, job: () => secretSyncJob(object) };
      },
      defaultRegion: 'us-east-1',
      allowExpressions: false,
      now: () => 0,
    });
    const job = runningJob('team-a', { objects: [{ objectName: 'first' }] });
    assert.deepEqual(readAhead(job, [request('first')], holding('first')), []);
    assert.equal(looked, 0);
    assert.deepEqual(ids(readAhead(job, [request('first')], nothingHeld)), ['next-db']);
    assert.equal(looked, 1);
  });
});
