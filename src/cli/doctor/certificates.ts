/**
 * Does a webhook configuration's caBundle trust the certificate the webhook serves? Pure: PEM text
 * in, a verdict with the reason out — the same judgement the API server makes on each call (chain to
 * a CA of the bundle, a name it dials, dates), so `smk doctor` can say which part is wrong.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

export interface CertificateVerdict {
  readonly ok: boolean;
  readonly detail: string;
}

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle; text that is not a certificate is skipped. */
export function parsePemBundle(text: string): X509Certificate[] {
  const certificates: X509Certificate[] = [];
  for (const block of text.match(pemBlock) ?? []) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      // A damaged block counts as absent; the verdict then says no CA matched.
    }
  }
  return certificates;
}

function commonName(certificate: X509Certificate): string {
  const match = /(?:^|\n)CN=([^\n]*)/.exec(certificate.subject);
  return match?.[1] ?? certificate.subject.replaceAll('\n', ', ');
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** The CA of `bundle` that signed `leaf`, directly or through one of `intermediates`. */
function trustedIssuer(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  bundle: readonly X509Certificate[],
): X509Certificate | undefined {
  const signedBy = (child: X509Certificate, parent: X509Certificate): boolean =>
    child.checkIssued(parent) && child.verify(parent.publicKey);
  let current = leaf;
  const seen = new Set<X509Certificate>();
  for (let depth = 0; depth <= intermediates.length; depth += 1) {
    const anchor = bundle.find((ca) => signedBy(current, ca));
    if (anchor) return anchor;
    const next = intermediates.find((candidate) => !seen.has(candidate) && signedBy(current, candidate));
    if (!next) return undefined;
    seen.add(next);
    current = next;
  }
  return undefined;
}

/**
 * `servingPem` (leaf first, then any intermediates) against `caBundlePem`, for a client that dials
 * `host` (a DNS name or an IP address) at `now`.
 */
export function verifyServingCertificate(
  caBundlePem: string,
  servingPem: string,
  host: string | undefined,
  now: Date = new Date(),
): CertificateVerdict {
  const bundle = parsePemBundle(caBundlePem);
  if (bundle.length === 0) return { ok: false, detail: 'the caBundle holds no PEM certificate' };
  const [leaf, ...intermediates] = parsePemBundle(servingPem);
  if (!leaf) return { ok: false, detail: 'no serving certificate to check' };
  const name = `serving certificate "${commonName(leaf)}"`;
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now < notBefore) return { ok: false, detail: `${name} is not valid before ${leaf.validFrom}` };
  if (now > notAfter) return { ok: false, detail: `${name} expired on ${leaf.validTo}` };
  const anchor = trustedIssuer(leaf, intermediates, bundle);
  if (!anchor) {
    return {
      ok: false,
      detail: `${name} (issuer "${leaf.issuer.replaceAll('\n', ', ')}") is not signed by any of the ${bundle.length} CA certificate(s) in the caBundle`,
    };
  }
  if (host !== undefined) {
    const matches = isIP(host) !== 0 ? leaf.checkIP(host) : leaf.checkHost(host);
    if (matches === undefined) {
      return { ok: false, detail: `${name} does not name ${host} (SANs: ${leaf.subjectAltName ?? 'none'})` };
    }
  }
  return {
    ok: true,
    detail: `${name} (valid until ${day(notAfter)}${host === undefined ? '' : `, names ${host}`}) is signed by CA "${commonName(anchor)}" of the caBundle`,
  };
}
