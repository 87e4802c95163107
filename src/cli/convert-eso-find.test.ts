import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { discoverOfFind, globOfRegexp } from './convert-eso-find.ts';
import type { ConvertIssue } from './convert-output.ts';

const S = 'ExternalSecret shop/all';
const F = 'spec.dataFrom[0].find';
const unsupported = (issues: readonly ConvertIssue[]): string[] =>
  issues
    .filter((issue) => issue.severity === 'unsupported')
    .map((issue) => `${issue.field}: ${issue.message}`);
const notes = (issues: readonly ConvertIssue[]): string[] =>
  issues.filter((issue) => issue.severity === 'note').map((issue) => issue.field);

/** A reference glob matcher: `*` any run, `?` one character, whole name (core/discovery.ts's rule). */
const globMatches = (glob: string, name: string): boolean =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\/-]/g, '\\$&')
      .replaceAll('*', '.*')
      .replaceAll('?', '.')}$`,
    's',
  ).test(name);

describe('globOfRegexp: a Go regexp → the glob that matches the same names', () => {
  it('anchors, literal text, escapes, . .* .+ (lazy too); an unanchored side becomes *', () => {
    const cases: [string, string][] = [
      ['^prod/payments/.*', 'prod/payments/*'],
      ['^prod/db$', 'prod/db'],
      ['prod', '*prod*'],
      ['^prod/.+-db$', 'prod/?*-db'],
      ['^app\\.v.$', 'app.v?'],
      ['^a/.*?/b', 'a/*/b*'],
      ['.*', '*'],
      ['^team\\-a\\/x', 'team-a/x*'],
    ];
    for (const [regexp, glob] of cases) assert.deepEqual(globOfRegexp(regexp), { glob }, regexp);
  });

  it('matches exactly the names the regexp matches (Go MatchString: unanchored), on a sample of secret names', () => {
    const names = [
      'prod/db',
      'prod/payments/db',
      'prod/payments/',
      'xprod/db',
      'app.v1',
      'app.v12',
      'appxv1',
      'a/b',
      'prod/x-db',
      'prod/-db',
    ];
    for (const regexp of [
      '^prod/payments/.*',
      '^prod/db$',
      'prod',
      '^prod/.+-db$',
      '^app\\.v.$',
      'db$',
      '.*',
    ]) {
      const converted = globOfRegexp(regexp);
      assert.ok('glob' in converted, regexp);
      for (const name of names) {
        assert.equal(
          globMatches(converted.glob, name),
          new RegExp(regexp).test(name),
          `${regexp} on ${name}`,
        );
      }
    }
  });

  it('what a glob cannot say is named', () => {
    const problem = (regexp: string): string => {
      const converted = globOfRegexp(regexp);
      assert.ok('problem' in converted, regexp);
      return converted.problem;
    };
    assert.match(problem('^prod/(a|b)/db'), /groups, classes, alternatives/);
    assert.match(problem('^prod/[ab]'), /groups, classes/);
    assert.match(problem('^prod/\\d+'), /the class \\d/);
    assert.match(problem('^prods?/'), /the quantifier \?/);
    assert.match(problem('^prod/.?x'), /optional or counted/);
    assert.match(problem('^prod/.{2}'), /optional or counted/);
    assert.match(problem('(?i)^prod'), /groups/);
    assert.match(problem('^a\\*'), /a literal \*/);
    assert.match(problem(`^${'a'.repeat(600)}`), /longer than 512/);
  });
});

describe('discoverOfFind: Secrets Manager', () => {
  it('an anchored regexp → namePrefix (+ nameGlob when it says more); keys noted', () => {
    const plain = discoverOfFind({ name: { regexp: '^prod/payments/.*' } }, 'secretsmanager', F, S);
    assert.deepEqual(unsupported(plain.issues), []);
    assert.deepEqual(plain.object, {
      objectType: 'secretsmanager',
      discover: { namePrefix: 'prod/payments/' },
    });
    assert.deepEqual(notes(plain.issues), [F]);
    const narrower = discoverOfFind({ name: { regexp: '^prod/payments/.*-db$' } }, 'secretsmanager', F, S);
    assert.deepEqual(narrower.object?.discover, {
      namePrefix: 'prod/payments/',
      nameGlob: 'prod/payments/*-db',
    });
  });

  it('path → namePrefix (noted: smk checks case); an unanchored regexp under it → nameGlob', () => {
    const { object, issues } = discoverOfFind(
      { path: 'prod/', name: { regexp: 'db' } },
      'secretsmanager',
      F,
      S,
    );
    assert.deepEqual(unsupported(issues), []);
    assert.deepEqual(object?.discover, { namePrefix: 'prod/', nameGlob: '*db*' });
    assert.ok(notes(issues).includes(`${F}.path`));
  });

  it('tags alone → tags (noted: exact match); tags beside a name are ignored, as ESO ignores them', () => {
    const tagged = discoverOfFind({ tags: { team: 'payments' }, path: 'prod/' }, 'secretsmanager', F, S);
    assert.deepEqual(tagged.object?.discover, { namePrefix: 'prod/', tags: { team: 'payments' } });
    assert.ok(notes(tagged.issues).includes(`${F}.tags`));
    const both = discoverOfFind({ name: { regexp: '^prod/' }, tags: { team: 'x' } }, 'secretsmanager', F, S);
    assert.deepEqual(both.object?.discover, { namePrefix: 'prod/' });
    assert.ok(notes(both.issues).includes(`${F}.tags`));
  });

  it('no prefix, decoding, Unicode keys and an empty find are named by field', () => {
    assert.deepEqual(
      unsupported(discoverOfFind({ name: { regexp: 'db$' } }, 'secretsmanager', F, S).issues),
      [
        `${F}.name.regexp: "db$": smk's discover needs a name prefix (or tags) so AWS narrows the listing; anchor the regexp with ^ and literal text, or set find.path`,
      ],
    );
    const refused = discoverOfFind(
      { name: { regexp: '^p/' }, decodingStrategy: 'Base64', conversionStrategy: 'Unicode' },
      'secretsmanager',
      F,
      S,
    );
    assert.equal(refused.object, undefined);
    assert.deepEqual(
      unsupported(refused.issues).map((line) => line.split(':')[0]),
      [`${F}.decodingStrategy`, `${F}.conversionStrategy`],
    );
    assert.deepEqual(unsupported(discoverOfFind({}, 'secretsmanager', F, S).issues), [
      `${F}: find needs name or tags (ESO refuses it too)`,
    ]);
    assert.match(
      unsupported(discoverOfFind({ name: { regexp: '^p/(a|b)' } }, 'secretsmanager', F, S).issues).join(),
      /^spec\.dataFrom\[0\]\.find\.name\.regexp: "\^p\/\(a\|b\)": no glob equivalent for \( /,
    );
  });
});

describe('discoverOfFind: Parameter Store', () => {
  it('path (default /) with a regexp that adds nothing → path, recursive (ESO reads recursively)', () => {
    assert.deepEqual(discoverOfFind({ path: '/prod', name: { regexp: '.*' } }, 'ssmparameter', F, S).object, {
      objectType: 'ssmparameter',
      discover: { path: '/prod', recursive: true },
    });
    assert.deepEqual(discoverOfFind({ name: { regexp: '^/prod/app/.*' } }, 'ssmparameter', F, S).object, {
      objectType: 'ssmparameter',
      discover: { path: '/prod/app', recursive: true },
    });
  });

  it('a regexp that narrows further, tags alone and a path without / are named', () => {
    assert.match(
      unsupported(
        discoverOfFind({ path: '/prod', name: { regexp: 'db' } }, 'ssmparameter', F, S).issues,
      ).join(),
      /takes a path only; the regexp narrows it further/,
    );
    assert.match(
      unsupported(discoverOfFind({ tags: { a: 'b' } }, 'ssmparameter', F, S).issues).join(),
      /no tag filter/,
    );
    assert.match(
      unsupported(
        discoverOfFind({ path: 'prod', name: { regexp: '.*' } }, 'ssmparameter', F, S).issues,
      ).join(),
      /starts with \//,
    );
  });
});
