import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnswerCache, sameSpecBesidesTokenVolumes, tokenVolumeNames } from './answer-cache.ts';

const tokenSources = { sources: [{ serviceAccountToken: { path: 'token' } }] };

/** A pod spec as the ServiceAccount plugin leaves it: its token volume, mounted by each container. */
function spec(token: string, containers: readonly string[] = ['app', 'worker']): Record<string, unknown> {
  return {
    volumes: [
      { name: token, projected: tokenSources },
      { name: 'cache', emptyDir: {} },
    ],
    containers: containers.map((name, index) => ({
      name,
      image: `registry.example/image-${index}:1`,
      volumeMounts: [{ name: token, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
    })),
  };
}

interface TestContainer {
  name: string;
  image: string;
  volumeMounts: Array<{ name: string; mountPath: string }>;
}

function container(made: Record<string, unknown>, index: number): TestContainer {
  const found = (made.containers as TestContainer[])[index];
  assert.ok(found);
  return found;
}

function same(a: unknown, b: unknown): boolean {
  return sameSpecBesidesTokenVolumes(a, tokenVolumeNames(a), b, tokenVolumeNames(b));
}

describe('sameSpecBesidesTokenVolumes', () => {
  test('two pods of a ReplicaSet are the same but for their token volume names', () => {
    assert.ok(same(spec('kube-api-access-aaaaa'), spec('kube-api-access-bbbbb')));
    assert.ok(same(spec('kube-api-access-aaaaa'), spec('kube-api-access-aaaaa')));
  });

  test('any other difference is another spec', () => {
    const base = spec('kube-api-access-aaaaa');
    const otherImage = spec('kube-api-access-bbbbb');
    container(otherImage, 1).image = 'registry.example/worker:2';
    assert.ok(!same(base, otherImage));
    assert.ok(!same(base, spec('kube-api-access-bbbbb', ['app'])));
    assert.ok(!same(base, spec('kube-api-access-bbbbbb')), 'a 6-character suffix is not generated');
    assert.ok(!same(base, spec('own-api-access-bbbbb')));
    assert.ok(!same(spec('own-api-access-bbbbb'), base));
    // Types count: "1" is not 1.
    assert.ok(!same({ ...base, priority: 1 }, { ...base, priority: '1' }));
  });

  test('a field moved to another level, or a field more or fewer, is another spec', () => {
    const base = { ...spec('kube-api-access-aaaaa'), x: { a: 1, b: 2 } };
    const { x: _x, ...rest } = base;
    assert.ok(!same(base, { ...rest, x: { a: 1 }, b: 2 }), 'the same parts in the same order, one level up');
    assert.ok(!same({ ...rest, x: { a: 1 }, b: 2 }, base));
    assert.ok(!same(base, { ...rest, x: { a: 1 } }));
    assert.ok(!same(base, { ...rest, x: { a: 1, b: 2, c: 3 } }));
    assert.ok(!same(base, { ...base, y: 1 }));
    assert.ok(!same({ ...base, y: 1 }, base));
    assert.ok(same(base, { ...spec('kube-api-access-bbbbb'), x: { a: 1, b: 2 } }));
  });

  test('key order counts, as it did for the JSON digest before', () => {
    const { volumes, containers } = spec('kube-api-access-aaaaa');
    assert.ok(!same({ volumes, containers }, { containers, volumes }));
  });

  test('containers named like the token volume are not stood in for', () => {
    // Each pod names a container like its own token volume: spelled alike, but a container is the
    // pod's own choice (smk.dev/containers may name it), so the two specs differ.
    const a = spec('kube-api-access-aaaaa', ['kube-api-access-aaaaa', 'worker']);
    const b = spec('kube-api-access-bbbbb', ['kube-api-access-bbbbb', 'worker']);
    assert.ok(!same(a, b));
    // And a mount of a volume other than the token volume keeps its own name.
    const mountsOther = (token: string, mounted: string) => {
      const made = spec(token);
      (made.volumes as unknown[]).push({ name: mounted, emptyDir: {} });
      container(made, 0).volumeMounts.push({
        name: mounted,
        mountPath: '/data',
      });
      return made;
    };
    assert.ok(!same(mountsOther('kube-api-access-aaaaa', 'x'), mountsOther('kube-api-access-bbbbb', 'y')));
  });

  test('a name stands in only where it is a generated token volume of that pod', () => {
    // Pod b mounts a volume named like a's token volume, but b's token volume is another one.
    const a = spec('kube-api-access-aaaaa');
    const b = spec('kube-api-access-bbbbb');
    const mount = container(b, 0).volumeMounts[0];
    assert.ok(mount);
    mount.name = 'kube-api-access-aaaaa';
    assert.ok(!same(a, b));
    // A volume named like a token volume but not projected is not one.
    const notProjected = spec('kube-api-access-ccccc');
    (notProjected.volumes as Array<Record<string, unknown>>)[0] = {
      name: 'kube-api-access-ccccc',
      emptyDir: {},
    };
    assert.equal(tokenVolumeNames(notProjected).size, 0);
    assert.ok(!same(a, notProjected));
  });
});

describe('AnswerCache', () => {
  test('answers a sibling, not another spec or other annotations', () => {
    const cache = new AnswerCache<string>();
    const first = spec('kube-api-access-aaaaa');
    cache.set('["smk.dev/inject","true"]', first, tokenVolumeNames(first), 'answer');
    const sibling = spec('kube-api-access-bbbbb');
    assert.equal(cache.get('["smk.dev/inject","true"]', sibling, tokenVolumeNames(sibling)), 'answer');
    assert.equal(cache.get('["smk.dev/inject","false"]', sibling, tokenVolumeNames(sibling)), undefined);
    const other = spec('kube-api-access-bbbbb', ['app']);
    assert.equal(cache.get('["smk.dev/inject","true"]', other, tokenVolumeNames(other)), undefined);
  });

  test('keeps a copy: a request object changed after the answer does not change what it matches', () => {
    const cache = new AnswerCache<string>();
    const first = spec('kube-api-access-aaaaa');
    cache.set('a', first, tokenVolumeNames(first), 'answer');
    container(first, 0).image = 'changed';
    const sibling = spec('kube-api-access-bbbbb');
    assert.equal(cache.get('a', sibling, tokenVolumeNames(sibling)), 'answer');
  });

  test('is bounded: 256 answers, 8 specs per annotations, no spec over 64 KiB or 64 levels deep', () => {
    const cache = new AnswerCache<number>();
    for (let i = 0; i < 300; i += 1) {
      const made = spec('kube-api-access-aaaaa', [`app-${i}`]);
      cache.set(`annotations-${i}`, made, tokenVolumeNames(made), i);
    }
    assert.equal(cache.size, 256);
    const oldest = spec('kube-api-access-aaaaa', ['app-0']);
    assert.equal(cache.get('annotations-0', oldest, tokenVolumeNames(oldest)), undefined);
    const newest = spec('kube-api-access-aaaaa', ['app-299']);
    assert.equal(cache.get('annotations-299', newest, tokenVolumeNames(newest)), 299);

    const shared = new AnswerCache<number>();
    for (let i = 0; i < 10; i += 1) {
      const made = spec('kube-api-access-aaaaa', [`app-${i}`]);
      shared.set('same', made, tokenVolumeNames(made), i);
    }
    assert.equal(shared.size, 8);
    const first = spec('kube-api-access-aaaaa', ['app-0']);
    assert.equal(shared.get('same', first, tokenVolumeNames(first)), undefined);
    const last = spec('kube-api-access-aaaaa', ['app-9']);
    assert.equal(shared.get('same', last, tokenVolumeNames(last)), 9);

    const large = spec('kube-api-access-aaaaa');
    large.containers = [{ name: 'app', image: 'x', args: ['a'.repeat(70 * 1024)] }];
    shared.set('large', large, tokenVolumeNames(large), 1);
    assert.equal(shared.get('large', large, tokenVolumeNames(large)), undefined);
    assert.equal(shared.size, 8);

    // Nor one nested past 64 levels (a walk of thousands would exhaust the stack).
    const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : [nested(depth - 1)]);
    const deep = { ...spec('kube-api-access-aaaaa'), deep: nested(65) };
    shared.set('deep', deep, tokenVolumeNames(deep), 1);
    assert.equal(shared.get('deep', deep, tokenVolumeNames(deep)), undefined);
    const fine = { ...spec('kube-api-access-aaaaa'), deep: nested(60) };
    shared.set('deep', fine, tokenVolumeNames(fine), 2);
    assert.equal(shared.get('deep', fine, tokenVolumeNames(fine)), 2);
  });
});
