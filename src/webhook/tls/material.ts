/**
 * The webhook's TLS material as kept in its Secret: the signing CA, an optional next CA (trusted in
 * the caBundle before it signs anything, so the bundle is always ahead of the serving certificate),
 * the previous CA (trusted until it expires) and the serving certificate. Reading never throws:
 * broken material reads as absent so it is replaced rather than served. No I/O.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';

/** Data keys of the Secret. `tls.crt`/`tls.key` follow the kubernetes.io/tls convention. */
export const secretKeys = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  nextCaCert: 'ca-next.crt',
  nextCaKey: 'ca-next.key',
  previousCaCert: 'ca-previous.crt',
  cert: 'tls.crt',
  key: 'tls.key',
} as const;

/** When the next CA entered the caBundle (ISO time); it signs only after the overlap has passed. */
export const nextCaSinceAnnotation = 'smk.dev/ca-next-since';

export interface PemPair {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface TlsMaterial {
  readonly ca: PemPair;
  readonly nextCa?: PemPair & { readonly since: Date };
  readonly previousCaPem?: string;
  readonly serving: PemPair;
}

/** What the rotation plan needs to know about the material, as plain numbers and names. */
export interface MaterialFacts {
  readonly ca: { readonly notAfter: number };
  readonly nextCa?: { readonly since: number };
  readonly previousCa?: { readonly notAfter: number };
  readonly serving: {
    readonly notAfter: number;
    readonly dnsNames: readonly string[];
    readonly ipAddresses: readonly string[];
    /** Issued by the signing CA and its signature verifies with the CA's key. */
    readonly signedByCa: boolean;
  };
}

export type SecretData = Readonly<Record<string, string>>;

function decode(data: SecretData | undefined, key: string): string | undefined {
  const value = data?.[key];
  if (value === undefined || value === '') return undefined;
  return Buffer.from(value, 'base64').toString('utf8');
}

function certificate(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** The certificate parses, is a CA when it should be, and the key belongs to it. */
function validPair(pair: PemPair, ca: boolean): boolean {
  const cert = certificate(pair.certPem);
  if (cert === undefined || cert.ca !== ca) return false;
  try {
    return cert.checkPrivateKey(createPrivateKey(pair.keyPem));
  } catch {
    return false;
  }
}

/**
 * The material in a Secret's `data` (base64 values), or undefined when any required part is
 * missing or broken. A broken optional part (next or previous CA) is dropped, not fatal.
 */
export function readMaterial(
  data: SecretData | undefined,
  annotations: Readonly<Record<string, string>> | undefined,
): TlsMaterial | undefined {
  const caCert = decode(data, secretKeys.caCert);
  const caKey = decode(data, secretKeys.caKey);
  const cert = decode(data, secretKeys.cert);
  const key = decode(data, secretKeys.key);
  if (caCert === undefined || caKey === undefined || cert === undefined || key === undefined)
    return undefined;
  const ca = { certPem: caCert, keyPem: caKey };
  const serving = { certPem: cert, keyPem: key };
  if (!validPair(ca, true) || !validPair(serving, false)) return undefined;

  const nextCert = decode(data, secretKeys.nextCaCert);
  const nextKey = decode(data, secretKeys.nextCaKey);
  const since = Date.parse(annotations?.[nextCaSinceAnnotation] ?? '');
  const nextCa =
    nextCert !== undefined &&
    nextKey !== undefined &&
    Number.isFinite(since) &&
    validPair({ certPem: nextCert, keyPem: nextKey }, true)
      ? { certPem: nextCert, keyPem: nextKey, since: new Date(since) }
      : undefined;
  const previous = decode(data, secretKeys.previousCaCert);
  const previousCaPem = previous !== undefined && certificate(previous)?.ca === true ? previous : undefined;
  return {
    ca,
    serving,
    ...(nextCa ? { nextCa } : {}),
    ...(previousCaPem ? { previousCaPem } : {}),
  };
}

/** The Secret's `data` and annotations for the material. */
export function writeMaterial(material: TlsMaterial): {
  data: Record<string, string>;
  annotations: Record<string, string>;
} {
  const entries: Array<[string, string]> = [
    [secretKeys.caCert, material.ca.certPem],
    [secretKeys.caKey, material.ca.keyPem],
    [secretKeys.cert, material.serving.certPem],
    [secretKeys.key, material.serving.keyPem],
  ];
  if (material.nextCa) {
    entries.push(
      [secretKeys.nextCaCert, material.nextCa.certPem],
      [secretKeys.nextCaKey, material.nextCa.keyPem],
    );
  }
  if (material.previousCaPem) entries.push([secretKeys.previousCaCert, material.previousCaPem]);
  return {
    data: Object.fromEntries(entries.map(([name, pem]) => [name, Buffer.from(pem).toString('base64')])),
    annotations: material.nextCa ? { [nextCaSinceAnnotation]: material.nextCa.since.toISOString() } : {},
  };
}

/** `DNS:a, IP Address:1.2.3.4` → names and addresses. */
function subjectAltNames(cert: X509Certificate): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) dnsNames.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) ipAddresses.push(entry.slice(11));
  }
  return { dnsNames, ipAddresses };
}

/** Facts of material that readMaterial accepted (so every certificate parses). */
export function materialFacts(material: TlsMaterial): MaterialFacts {
  const ca = new X509Certificate(material.ca.certPem);
  const serving = new X509Certificate(material.serving.certPem);
  const previous = material.previousCaPem ? new X509Certificate(material.previousCaPem) : undefined;
  return {
    ca: { notAfter: Date.parse(ca.validTo) },
    ...(material.nextCa ? { nextCa: { since: material.nextCa.since.getTime() } } : {}),
    ...(previous ? { previousCa: { notAfter: Date.parse(previous.validTo) } } : {}),
    serving: {
      notAfter: Date.parse(serving.validTo),
      ...subjectAltNames(serving),
      signedByCa: serving.checkIssued(ca) && serving.verify(ca.publicKey),
    },
  };
}

/**
 * The caBundle: every CA a serving certificate of ours may be signed by right now — the signing
 * CA, the next one (before it signs) and the previous one until it expires.
 */
export function caBundle(material: TlsMaterial, now: number): string {
  const pems = [material.ca.certPem];
  if (material.nextCa) pems.push(material.nextCa.certPem);
  if (material.previousCaPem) {
    const previous = certificate(material.previousCaPem);
    if (previous && Date.parse(previous.validTo) > now) pems.push(material.previousCaPem);
  }
  return pems.map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`)).join('');
}
