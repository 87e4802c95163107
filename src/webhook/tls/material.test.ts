import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, describe, test } from 'node:test';
import {
  caBundle,
  materialFacts,
  nextCaSinceAnnotation,
  readMaterial,
  secretKeys,
  type TlsMaterial,
  writeMaterial,
} from './material.ts';
import { type CertificateWithKey, createCertificateAuthority, issueServingCertificate } from './pki.ts';

const pair = (cert: CertificateWithKey): { certPem: string; keyPem: string } => ({
  certPem: cert.certPem,
  keyPem: cert.keyPem,
});

describe('TLS material in a Secret', () => {
  let ca: CertificateWithKey;
  let otherCa: CertificateWithKey;
  let serving: CertificateWithKey;
  let material: TlsMaterial;

  before(async () => {
    ca = await createCertificateAuthority({ commonName: 'test-ca', validForDays: 10 });
    otherCa = await createCertificateAuthority({ commonName: 'other-ca', validForDays: 10 });
    serving = await issueServingCertificate(ca, {
      commonName: 'smk.ns.svc',
      dnsNames: ['smk.ns.svc', 'smk.ns.svc.cluster.local'],
      ipAddresses: ['127.0.0.1'],
      validForDays: 1,
    });
    material = { ca: pair(ca), serving: pair(serving) };
  });

  test('round-trips through Secret data and annotations', () => {
    const full: TlsMaterial = {
      ...material,
      nextCa: { ...pair(otherCa), since: new Date('2030-01-01T00:00:00.000Z') },
      previousCaPem: otherCa.certPem,
    };
    const { data, annotations } = writeMaterial(full);
    assert.deepEqual(Object.keys(data).sort(), Object.values(secretKeys).sort());
    assert.equal(annotations[nextCaSinceAnnotation], '2030-01-01T00:00:00.000Z');
    assert.deepEqual(readMaterial(data, annotations), full);
  });

  test('facts: names, expiry and who signed the serving certificate', () => {
    const facts = materialFacts(material);
    assert.deepEqual(facts.serving.dnsNames, ['smk.ns.svc', 'smk.ns.svc.cluster.local']);
    assert.deepEqual(facts.serving.ipAddresses, ['127.0.0.1']);
    assert.equal(facts.serving.signedByCa, true);
    assert.equal(facts.serving.notAfter, serving.notAfter.getTime() - (serving.notAfter.getTime() % 1000));
    assert.equal(facts.ca.notAfter, ca.notAfter.getTime() - (ca.notAfter.getTime() % 1000));
    const foreign = materialFacts({ ca: pair(otherCa), serving: pair(serving) });
    assert.equal(foreign.serving.signedByCa, false);
  });

  test('missing or broken parts read as absent, so they get replaced rather than served', () => {
    const { data } = writeMaterial(material);
    const without = (key: string): Record<string, string> =>
      Object.fromEntries(Object.entries(data).filter(([name]) => name !== key));
    assert.equal(readMaterial(undefined, undefined), undefined);
    assert.equal(readMaterial({}, undefined), undefined);
    assert.equal(readMaterial(without(secretKeys.caKey), undefined), undefined);
    assert.equal(readMaterial(without(secretKeys.key), undefined), undefined);
    assert.equal(
      readMaterial(
        { ...data, [secretKeys.cert]: Buffer.from('not a certificate').toString('base64') },
        undefined,
      ),
      undefined,
    );
    // a key that belongs to another certificate
    assert.equal(
      readMaterial({ ...data, [secretKeys.key]: Buffer.from(otherCa.keyPem).toString('base64') }, undefined),
      undefined,
    );
    // the serving certificate where the CA should be
    assert.equal(
      readMaterial(
        {
          ...data,
          [secretKeys.caCert]: data[secretKeys.cert] ?? '',
          [secretKeys.caKey]: data[secretKeys.key] ?? '',
        },
        undefined,
      ),
      undefined,
    );
  });

  test('a next CA without its since annotation is dropped, not fatal', () => {
    const { data } = writeMaterial({ ...material, nextCa: { ...pair(otherCa), since: new Date() } });
    assert.deepEqual(readMaterial(data, {}), material);
  });

  test('caBundle: signing CA, next CA, and the previous CA only while it is valid', () => {
    const withAll: TlsMaterial = {
      ...material,
      nextCa: { ...pair(otherCa), since: new Date() },
      previousCaPem: otherCa.certPem,
    };
    const certs = (bundle: string): string[] =>
      bundle
        .split(/(?<=-----END CERTIFICATE-----\n)/)
        .filter((pem) => pem.trim() !== '')
        .map((pem) => new X509Certificate(pem).subject);
    assert.deepEqual(certs(caBundle(material, Date.now())), ['CN=test-ca']);
    assert.deepEqual(certs(caBundle(withAll, Date.now())), ['CN=test-ca', 'CN=other-ca', 'CN=other-ca']);
    assert.deepEqual(certs(caBundle(withAll, otherCa.notAfter.getTime() + 1000)), [
      'CN=test-ca',
      'CN=other-ca',
    ]);
  });
});
