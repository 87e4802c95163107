/**
 * The rotation decision as a pure function: given what the Secret holds, the names the serving
 * certificate must carry and the time, the one next step. A CA is replaced in two steps — the next
 * CA first joins the caBundle, and only after `caOverlapMs` (time for every API server to see the
 * new bundle) does it sign — so the API server never meets a certificate it cannot verify.
 */
import type { MaterialFacts } from './material.ts';

export interface RotationPolicy {
  readonly caValidityMs: number;
  readonly servingValidityMs: number;
  /** How long the next CA sits in the caBundle before it signs. */
  readonly caOverlapMs: number;
}

export interface ServingNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

export type TlsAction =
  | { readonly kind: 'keep' }
  | { readonly kind: 'initialize'; readonly reason: string }
  | { readonly kind: 'stage-next-ca' }
  | { readonly kind: 'promote-next-ca' }
  | { readonly kind: 'reissue-serving'; readonly reason: string }
  | { readonly kind: 'drop-previous-ca' };

/** Renew once this fraction of the nominal lifetime is left (a third, as kubelet and cert-manager do). */
const renewFraction = 1 / 3;
/** A renewal that would not extend the certificate by this part of its lifetime is not worth making. */
const minGainFraction = 1 / 10;

function missing(wanted: readonly string[], present: readonly string[]): string[] {
  return wanted.filter((name) => !present.includes(name));
}

export function planTls(
  facts: MaterialFacts | undefined,
  names: ServingNames,
  now: number,
  policy: RotationPolicy,
): TlsAction {
  if (facts === undefined)
    return { kind: 'initialize', reason: 'no usable CA and serving certificate stored' };
  if (facts.ca.notAfter <= now) return { kind: 'initialize', reason: 'the CA has expired' };
  if (facts.nextCa) {
    if (now - facts.nextCa.since >= policy.caOverlapMs) return { kind: 'promote-next-ca' };
  } else if (facts.ca.notAfter - now < policy.caValidityMs * renewFraction) {
    return { kind: 'stage-next-ca' };
  }
  const serving = facts.serving;
  if (!serving.signedByCa) return { kind: 'reissue-serving', reason: 'not signed by the current CA' };
  const absent = [
    ...missing(names.dnsNames, serving.dnsNames),
    ...missing(names.ipAddresses, serving.ipAddresses),
  ];
  if (absent.length > 0) return { kind: 'reissue-serving', reason: `missing names ${absent.join(', ')}` };
  // A certificate never outlives its CA, so near the CA's end a new one would not last longer.
  const achievable = Math.min(now + policy.servingValidityMs, facts.ca.notAfter);
  if (
    serving.notAfter - now < policy.servingValidityMs * renewFraction &&
    achievable - serving.notAfter > policy.servingValidityMs * minGainFraction
  ) {
    return { kind: 'reissue-serving', reason: 'expires soon' };
  }
  if (facts.previousCa && facts.previousCa.notAfter <= now) return { kind: 'drop-previous-ca' };
  return { kind: 'keep' };
}
