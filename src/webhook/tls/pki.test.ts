import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import * as tls from 'node:tls';
import { InvalidInputError } from '../../core/errors.ts';
import {
  createCertificateAuthority,
  generateKeyPair,
  issueClientCertificate,
  issueServingCertificate,
} from './pki.ts';

describe('pki', () => {
  it('creates a self-signed CA that may sign certificates', async () => {
    const ca = await createCertificateAuthority({ commonName: 'smk-test-ca', validForDays: 2 });
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.equal(cert.subject, 'CN=smk-test-ca');
    assert.equal(cert.checkIssued(cert), true);
    assert.equal(cert.verify(cert.publicKey), true);
    assert.equal(createPrivateKey(ca.keyPem).asymmetricKeyType, 'ec');
    const days = (new Date(cert.validTo).getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 1.9 && days <= 2, `valid for ${days} days`);
    assert.equal(ca.notAfter.getTime(), new Date(cert.validTo).getTime());
  });

  it('issues a serving certificate with DNS and IP SANs that chains to the CA', async () => {
    const ca = await createCertificateAuthority({ commonName: 'smk-test-ca' });
    const serving = await issueServingCertificate(ca, {
      commonName: 'smk-webhook',
      dnsNames: ['smk-webhook.smk.svc', 'localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    const caCert = new X509Certificate(ca.certPem);
    const leaf = new X509Certificate(serving.certPem);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.checkIssued(caCert), true);
    assert.equal(leaf.verify(caCert.publicKey), true);
    assert.equal(leaf.checkHost('smk-webhook.smk.svc'), 'smk-webhook.smk.svc');
    assert.equal(leaf.checkHost('other.smk.svc'), undefined);
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(leaf.checkIP('::1'), '::1');
    assert.equal(leaf.checkIP('10.0.0.1'), undefined);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    // the key in the pair is the certificate's key
    const signature = sign('sha256', Buffer.from('x'), serving.keyPem);
    assert.equal(verify('sha256', Buffer.from('x'), leaf.publicKey, signature), true);
  });

  it('does not chain to another CA', async () => {
    const ca = await createCertificateAuthority({ commonName: 'smk-test-ca' });
    const other = await createCertificateAuthority({ commonName: 'smk-test-ca' });
    const leaf = new X509Certificate((await issueClientCertificate(ca, { user: 'alice' })).certPem);
    assert.equal(leaf.verify(new X509Certificate(other.certPem).publicKey), false);
  });

  it('issues a client certificate whose CN is the user and whose O attributes are the groups', async () => {
    const ca = await createCertificateAuthority({ commonName: 'smk-test-ca' });
    const client = await issueClientCertificate(ca, {
      user: 'system:serviceaccount:team-a:app',
      groups: ['system:masters', 'team-a'],
    });
    const leaf = new X509Certificate(client.certPem);
    assert.equal(leaf.verify(new X509Certificate(ca.certPem).publicKey), true);
    const subject = leaf.subject.split('\n');
    assert.deepEqual(subject.filter((line) => line.startsWith('O=')).sort(), [
      'O=system:masters',
      'O=team-a',
    ]);
    assert.ok(subject.includes('CN=system:serviceaccount:team-a:app'), leaf.subject);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  });

  it('serves mutual TLS with the issued certificates', async () => {
    const ca = await createCertificateAuthority({ commonName: 'smk-test-ca' });
    const serving = await issueServingCertificate(ca, { commonName: 'server', ipAddresses: ['127.0.0.1'] });
    const client = await issueClientCertificate(ca, { user: 'alice', groups: ['devs'] });
    const server = tls.createServer(
      {
        cert: serving.certPem,
        key: serving.keyPem,
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        socket.end(socket.getPeerX509Certificate()?.subject ?? 'none');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port,
          ca: ca.certPem,
          cert: client.certPem,
          key: client.keyPem,
        });
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          text += chunk;
        });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      assert.equal(reply, 'O=devs\nCN=alice');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('generates a signing key pair as PKCS#8 and SPKI PEM', async () => {
    const pair = await generateKeyPair();
    assert.match(pair.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.match(pair.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
    const signature = sign('sha256', Buffer.from('token'), pair.privateKeyPem);
    assert.equal(verify('sha256', Buffer.from('token'), createPublicKey(pair.publicKeyPem), signature), true);
  });

  it('rejects a serving certificate without names and a malformed IP', async () => {
    const ca = await createCertificateAuthority({ commonName: 'smk-test-ca' });
    await assert.rejects(issueServingCertificate(ca, { commonName: 'x' }), InvalidInputError);
    await assert.rejects(
      issueServingCertificate(ca, { commonName: 'x', ipAddresses: ['127.0.0.1', 'not-an-ip'] }),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'ipAddresses[1]',
    );
    await assert.rejects(issueClientCertificate(ca, { user: ' ' }), InvalidInputError);
    await assert.rejects(
      createCertificateAuthority({ commonName: 'ca', validForDays: 0 }),
      InvalidInputError,
    );
  });
});
