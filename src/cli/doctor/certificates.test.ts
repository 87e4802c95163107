import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  type CertificateAuthority,
  type CertificateWithKey,
  createCertificateAuthority,
  issueServingCertificate,
} from '../../webhook/tls/pki.ts';
import { parsePemBundle, verifyServingCertificate } from './certificates.ts';

describe('verifyServingCertificate', () => {
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let serving: CertificateWithKey;
  const service = 'smk-webhook.smk-system.svc';

  before(async () => {
    [ca, otherCa] = await Promise.all([
      createCertificateAuthority({ commonName: 'smk-webhook-ca' }),
      createCertificateAuthority({ commonName: 'someone-else' }),
    ]);
    serving = await issueServingCertificate(ca, {
      commonName: service,
      dnsNames: [service, `${service}.cluster.local`],
      ipAddresses: ['127.0.0.1'],
    });
  });

  it('passes a certificate signed by a CA of the bundle that names the host', () => {
    const verdict = verifyServingCertificate(`${otherCa.certPem}\n${ca.certPem}`, serving.certPem, service);
    assert.equal(verdict.ok, true, verdict.detail);
    assert.match(verdict.detail, /signed by CA "smk-webhook-ca"/);
    assert.equal(verifyServingCertificate(ca.certPem, serving.certPem, '127.0.0.1').ok, true);
  });

  it('fails when no CA of the bundle signed it (a stale caBundle after a rotation)', () => {
    const verdict = verifyServingCertificate(otherCa.certPem, serving.certPem, service);
    assert.equal(verdict.ok, false);
    assert.match(verdict.detail, /not signed by any of the 1 CA certificate\(s\) in the caBundle/);
  });

  it('fails when the certificate does not name the host the API server dials', () => {
    const verdict = verifyServingCertificate(ca.certPem, serving.certPem, 'smk-webhook.other.svc');
    assert.equal(verdict.ok, false);
    assert.match(verdict.detail, /does not name smk-webhook\.other\.svc \(SANs: DNS:smk-webhook/);
  });

  it('fails on an expired or not yet valid certificate', () => {
    const later = new Date(Date.now() + 3 * 365 * 24 * 3600_000);
    assert.match(verifyServingCertificate(ca.certPem, serving.certPem, service, later).detail, /expired on/);
    const earlier = new Date(Date.now() - 24 * 3600_000);
    assert.match(
      verifyServingCertificate(ca.certPem, serving.certPem, service, earlier).detail,
      /not valid before/,
    );
  });

  it('fails on an empty or garbled caBundle, and with no serving certificate', () => {
    assert.equal(
      verifyServingCertificate('', serving.certPem, service).detail,
      'the caBundle holds no PEM certificate',
    );
    const garbled = '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n';
    assert.equal(parsePemBundle(garbled).length, 0);
    assert.equal(verifyServingCertificate(ca.certPem, '', service).detail, 'no serving certificate to check');
  });
});
