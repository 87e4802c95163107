/**
 * In-process X.509: a certificate authority, serving certificates (DNS and IP SANs) and client
 * certificates whose CN/O are a Kubernetes user and groups. Keys are ECDSA P-256 (fast to make,
 * accepted by kube-apiserver, etcd and Node's TLS), all material is PEM so it can be written to
 * files or stored in a Secret. No I/O.
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs this polyfill first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { InvalidInputError } from '../../core/errors.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const crypto = webcrypto;
const keyAlgorithm: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
/** Tolerates a peer whose clock is slightly behind ours. */
const backdateMs = 5 * 60 * 1000;
const dayMs = 24 * 60 * 60 * 1000;

export interface KeyPairPem {
  /** PKCS#8 `PRIVATE KEY`. */
  readonly privateKeyPem: string;
  /** SPKI `PUBLIC KEY`. */
  readonly publicKeyPem: string;
}

/** A certificate and its private key. Plain data: persist it and pass it back to issue more. */
export interface CertificateWithKey {
  readonly certPem: string;
  /** PKCS#8 `PRIVATE KEY`. */
  readonly keyPem: string;
  readonly notAfter: Date;
}

export type CertificateAuthority = CertificateWithKey;

export interface CertificateAuthorityOptions {
  readonly commonName: string;
  readonly validForDays?: number;
}

export interface ServingCertificateOptions {
  readonly commonName: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly validForDays?: number;
}

export interface ClientCertificateOptions {
  /** The Kubernetes user name (certificate CN). */
  readonly user: string;
  /** The Kubernetes groups (certificate O attributes). */
  readonly groups?: readonly string[];
  readonly validForDays?: number;
}

export async function generateKeyPair(): Promise<KeyPairPem> {
  const keys = await newKeys();
  return {
    privateKeyPem: await privateKeyToPem(keys.privateKey),
    publicKeyPem: await publicKeyToPem(keys.publicKey),
  };
}

export async function createCertificateAuthority(
  options: CertificateAuthorityOptions,
): Promise<CertificateAuthority> {
  requireName(options.commonName, 'commonName');
  const keys = await newKeys();
  const validity = validityWindow(options.validForDays ?? 3650);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: [{ CN: [options.commonName] }],
      keys,
      ...validity,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certPem: cert.toString('pem'),
    keyPem: await privateKeyToPem(keys.privateKey),
    notAfter: cert.notAfter,
  };
}

/** A TLS server certificate; clients check the host they dial against `dnsNames`/`ipAddresses`. */
export async function issueServingCertificate(
  ca: CertificateAuthority,
  options: ServingCertificateOptions,
): Promise<CertificateWithKey> {
  requireName(options.commonName, 'commonName');
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  dnsNames.forEach((name, i) => {
    requireName(name, `dnsNames[${i}]`);
  });
  ipAddresses.forEach((ip, i) => {
    if (isIP(ip) === 0) {
      throw new InvalidInputError(`ipAddresses[${i}] must be an IPv4 or IPv6 address`, {
        subject: options.commonName,
        field: `ipAddresses[${i}]`,
      });
    }
  });
  if (dnsNames.length + ipAddresses.length === 0) {
    throw new InvalidInputError('a serving certificate needs at least one DNS name or IP address', {
      subject: options.commonName,
      field: 'dnsNames',
    });
  }
  const san = new x509.SubjectAlternativeNameExtension([
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ]);
  return issue(ca, [{ CN: [options.commonName] }], options.validForDays ?? 365, [
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    san,
  ]);
}

/** A TLS client certificate; kube-apiserver reads the user from CN and the groups from O. */
export async function issueClientCertificate(
  ca: CertificateAuthority,
  options: ClientCertificateOptions,
): Promise<CertificateWithKey> {
  requireName(options.user, 'user');
  const groups = options.groups ?? [];
  groups.forEach((group, i) => {
    requireName(group, `groups[${i}]`);
  });
  const subject: x509.JsonName = [...groups.map((group) => ({ O: [group] })), { CN: [options.user] }];
  return issue(ca, subject, options.validForDays ?? 365, [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  ]);
}

async function issue(
  ca: CertificateAuthority,
  subject: x509.JsonName,
  validForDays: number,
  extensions: x509.Extension[],
): Promise<CertificateWithKey> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKey(ca.keyPem);
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject,
      issuer: caCert.subjectName,
      publicKey: keys.publicKey,
      signingKey: caKey,
      ...validityWindow(validForDays),
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        ...extensions,
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certPem: cert.toString('pem'),
    keyPem: await privateKeyToPem(keys.privateKey),
    notAfter: cert.notAfter,
  };
}

function validityWindow(days: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0) {
    throw new InvalidInputError('validForDays must be a positive number', { field: 'validForDays' });
  }
  const now = Date.now();
  return { notBefore: new Date(now - backdateMs), notAfter: new Date(now + days * dayMs) };
}

function requireName(value: string, field: string): void {
  if (value.trim() === '') throw new InvalidInputError(`${field} must not be empty`, { field });
}

async function newKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']);
}

async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function publicKeyToPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('spki', key), 'PUBLIC KEY');
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const [der] = x509.PemConverter.decode(pem);
  if (der === undefined) {
    throw new InvalidInputError('the CA key is not PEM', {
      subject: 'certificate authority',
      field: 'keyPem',
    });
  }
  return crypto.subtle.importKey('pkcs8', der, keyAlgorithm, false, ['sign']);
}
