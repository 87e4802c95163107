import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { parseDockerfile } from './dockerfile.ts';

const fixture = await readFile(new URL('fixtures/stages.Dockerfile', import.meta.url), 'utf8');

describe('parseDockerfile: the final stage', () => {
  test('base, env, labels, user, workdir, entrypoint and cmd, with ARG defaults substituted', () => {
    const image = parseDockerfile(fixture);
    assert.equal(image.base, 'example.org/base:24');
    assert.deepEqual(image.env, [
      ['A', 'again'],
      ['B', 'two words'],
      ['PATH', '/opt/bin:/usr/bin'],
      ['LEGACY', 'value with spaces'],
      ['NODE', '24'],
      ['UNSET', 'fallback'],
      ['SET', 'yes'],
    ]);
    assert.deepEqual(image.labels, {
      'org.opencontainers.image.title': 'app',
      'org.opencontainers.image.version': '0.0.1',
      quoted: 'single $VERSION',
      spaced: 'a b"c',
    });
    assert.equal(image.user, '65532:65532');
    assert.equal(image.workdir, '/home/app');
    assert.deepEqual(image.entrypoint, ['/usr/local/bin/app']);
    // CMD set in the same stage survives a later ENTRYPOINT.
    assert.deepEqual(image.cmd, ['--help']);
  });

  test('build args win over ARG defaults', () => {
    const image = parseDockerfile(fixture, { VERSION: '9.9.9', BASE: 'other/base:1' });
    assert.equal(image.base, 'other/base:1');
    assert.equal(image.labels['org.opencontainers.image.version'], '9.9.9');
  });

  test('a continuation goes on over empty and comment lines, and ends at the end of the file', () => {
    const image = parseDockerfile('FROM base\nENV A=1 \\\n\n# note\n    B=2 \\\n');
    assert.deepEqual(image.env, [
      ['A', '1'],
      ['B', '2'],
    ]);
  });

  test("ENTRYPOINT without CMD in the stage drops the base's CMD; nothing set stays undefined", () => {
    const image = parseDockerfile('FROM base\nENTRYPOINT ["/app"]\n');
    assert.deepEqual(image.cmd, []);
    const bare = parseDockerfile('FROM base\n');
    assert.equal(bare.cmd, undefined);
    assert.equal(bare.entrypoint, undefined);
    assert.equal(bare.user, undefined);
  });

  test('what would change the config unseen is refused with its line', () => {
    const cases: [string, RegExp][] = [
      ['FROM base\nENTRYPOINT /app --flag\n', /line 2: ENTRYPOINT must use the JSON \(exec\) form/],
      ['FROM base\nENV X=$UNDECLARED\n', /line 2: \$UNDECLARED is not declared/],
      ['FROM base\nVOLUME /data\n', /line 2: VOLUME in the final stage is not understood/],
      ['FROM base\nWORKDIR relative\n', /line 2: WORKDIR must be absolute/],
      ['FROM base\nENV X="open\n', /line 2: unterminated double quote/],
      ['ENV X=1\n', /no FROM/],
    ];
    for (const [text, message] of cases) assert.throws(() => parseDockerfile(text), message, text);
  });

  test("the repository's Dockerfile parses", async () => {
    const text = await readFile(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const image = parseDockerfile(text, { VERSION: '1.2.3' });
    assert.match(image.base, /distroless/);
    assert.equal(image.labels['org.opencontainers.image.version'], '1.2.3');
  });
});
