import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MaterialFacts } from './material.ts';
import { planTls, type RotationPolicy, type ServingNames, type TlsAction } from './plan.ts';

const day = 24 * 60 * 60 * 1000;
const now = Date.parse('2030-01-01T00:00:00Z');
const policy: RotationPolicy = {
  caValidityMs: 300 * day,
  servingValidityMs: 30 * day,
  caOverlapMs: 10 * 60 * 1000,
};
const names: ServingNames = { dnsNames: ['smk.ns.svc', 'smk.ns.svc.cluster.local'], ipAddresses: [] };

function facts(overrides: {
  caLeft?: number;
  servingLeft?: number;
  dnsNames?: string[];
  ipAddresses?: string[];
  signedByCa?: boolean;
  nextSince?: number;
  previousLeft?: number;
}): MaterialFacts {
  return {
    ca: { notAfter: now + (overrides.caLeft ?? 200 * day) },
    ...(overrides.nextSince === undefined ? {} : { nextCa: { since: now - overrides.nextSince } }),
    ...(overrides.previousLeft === undefined
      ? {}
      : { previousCa: { notAfter: now + overrides.previousLeft } }),
    serving: {
      notAfter: now + (overrides.servingLeft ?? 25 * day),
      dnsNames: overrides.dnsNames ?? [...names.dnsNames],
      ipAddresses: overrides.ipAddresses ?? [],
      signedByCa: overrides.signedByCa ?? true,
    },
  };
}

const cases: Array<{
  name: string;
  facts: MaterialFacts | undefined;
  want: TlsAction;
  wanted?: ServingNames;
}> = [
  {
    name: 'nothing stored',
    facts: undefined,
    want: { kind: 'initialize', reason: 'no usable CA and serving certificate stored' },
  },
  { name: 'fresh material', facts: facts({}), want: { kind: 'keep' } },
  {
    name: 'CA expired',
    facts: facts({ caLeft: 0 }),
    want: { kind: 'initialize', reason: 'the CA has expired' },
  },
  {
    name: 'CA in its last third: stage the next one',
    facts: facts({ caLeft: 99 * day }),
    want: { kind: 'stage-next-ca' },
  },
  { name: 'CA with a third left exactly: keep', facts: facts({ caLeft: 100 * day }), want: { kind: 'keep' } },
  {
    name: 'next CA staged, overlap not over: keep serving from the current CA',
    facts: facts({ caLeft: 99 * day, nextSince: 9 * 60 * 1000 }),
    want: { kind: 'keep' },
  },
  {
    name: 'next CA staged for the whole overlap: promote',
    facts: facts({ caLeft: 99 * day, nextSince: 10 * 60 * 1000 }),
    want: { kind: 'promote-next-ca' },
  },
  {
    name: 'serving certificate in its last third',
    facts: facts({ servingLeft: 9 * day }),
    want: { kind: 'reissue-serving', reason: 'expires soon' },
  },
  {
    name: 'serving certificate expired',
    facts: facts({ servingLeft: -day }),
    want: { kind: 'reissue-serving', reason: 'expires soon' },
  },
  {
    name: 'serving certificate near the end of its CA: a new one would not last longer',
    facts: facts({ caLeft: 5 * day, servingLeft: 5 * day, nextSince: 0 }),
    want: { kind: 'keep' },
  },
  {
    name: 'serving certificate from another CA',
    facts: facts({ signedByCa: false }),
    want: { kind: 'reissue-serving', reason: 'not signed by the current CA' },
  },
  {
    name: 'a name is missing (Service renamed, or a url-mode host)',
    facts: facts({ dnsNames: ['smk.ns.svc'] }),
    want: { kind: 'reissue-serving', reason: 'missing names smk.ns.svc.cluster.local' },
  },
  {
    name: 'an IP address is missing',
    facts: facts({}),
    wanted: { dnsNames: names.dnsNames, ipAddresses: ['127.0.0.1'] },
    want: { kind: 'reissue-serving', reason: 'missing names 127.0.0.1' },
  },
  {
    name: 'extra names are fine',
    facts: facts({ dnsNames: [...names.dnsNames, 'old.ns.svc'] }),
    want: { kind: 'keep' },
  },
  {
    name: 'previous CA expired: drop it',
    facts: facts({ previousLeft: 0 }),
    want: { kind: 'drop-previous-ca' },
  },
  {
    name: 'previous CA still valid: keep it in the bundle',
    facts: facts({ previousLeft: day }),
    want: { kind: 'keep' },
  },
];

describe('planTls', () => {
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(planTls(c.facts, c.wanted ?? names, now, policy), c.want);
    });
  }

  test('a reissued certificate is not due again at once (no rotation loop)', () => {
    const issued = facts({ servingLeft: policy.servingValidityMs });
    assert.deepEqual(planTls(issued, names, now, policy), { kind: 'keep' });
  });
});
