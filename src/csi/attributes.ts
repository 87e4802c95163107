/**
 * The Mount request's inputs, parsed once: `attributes` (the SecretProviderClass parameters
 * merged with the pod's volume context, a JSON object of strings) and `permission` (the
 * driver's default file mode). Messages never echo input: the attributes carry pod tokens.
 */
import * as z from 'zod';
import { InvalidInputError } from '../core/errors.ts';

export const podNamespaceKey = 'csi.storage.k8s.io/pod.namespace';
export const podNameKey = 'csi.storage.k8s.io/pod.name';
export const podUidKey = 'csi.storage.k8s.io/pod.uid';
export const serviceAccountNameKey = 'csi.storage.k8s.io/serviceAccount.name';
export const serviceAccountTokensKey = 'csi.storage.k8s.io/serviceAccount.tokens';
export const secretProviderClassKey = 'secretProviderClass';

export type AddressPreference = 'auto' | 'ipv4' | 'ipv6';

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
  readonly serviceAccount: string;
}

export interface ServiceAccountToken {
  readonly token: string;
  readonly expiresAt: Date | undefined;
}

export interface MountAttributes {
  readonly pod: PodRef;
  /** Names the request in errors and logs: `SecretProviderClass db (pod team-a/api-7d9f)`. */
  readonly subject: string;
  /** Every attribute as sent; the core's spec parser picks the SecretProviderClass parameters. */
  readonly parameters: Readonly<Record<string, string>>;
  /** Projected ServiceAccount tokens by audience (the CSIDriver's tokenRequests). */
  readonly tokens: ReadonlyMap<string, ServiceAccountToken>;
  readonly usePodIdentity: boolean;
  readonly preferredAddressType: AddressPreference;
  /** Set when preferredAddressType had a value ASCP also ignores (it falls back to auto). */
  readonly ignoredAddressType: boolean;
}

const attributesSchema = z.record(z.string(), z.string());
const tokensSchema = z.record(
  z.string(),
  z.object({ token: z.string().min(1), expirationTimestamp: z.string().optional() }),
);

function invalid(message: string, field: string, subject = 'mount request'): InvalidInputError {
  return new InvalidInputError(`${subject}: ${message}`, { subject, field });
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    // SyntaxError messages quote the input, which holds tokens: report the field only.
    return { ok: false };
  }
}

/** Go's strconv.ParseBool, which ASCP uses for usePodIdentity. */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

function required(attributes: Record<string, string>, key: string): string {
  const value = attributes[key]?.trim();
  if (!value) {
    throw invalid(
      `attribute ${key} is missing; the Secrets Store CSI driver sends it with every mount (is the request from the driver, with podInfoOnMount?)`,
      key,
    );
  }
  return value;
}

function parseTokens(text: string | undefined, subject: string): Map<string, ServiceAccountToken> {
  const tokens = new Map<string, ServiceAccountToken>();
  if (text === undefined || text.trim() === '') return tokens;
  const json = parseJson(text);
  const parsed = json.ok ? tokensSchema.safeParse(json.value) : undefined;
  if (!parsed?.success) {
    throw invalid(
      `attribute ${serviceAccountTokensKey} is not a JSON object of {"<audience>": {"token": "…", "expirationTimestamp": "…"}}`,
      serviceAccountTokensKey,
      subject,
    );
  }
  for (const [audience, entry] of Object.entries(parsed.data)) {
    const expiresAt = entry.expirationTimestamp ? new Date(entry.expirationTimestamp) : undefined;
    tokens.set(audience, {
      token: entry.token,
      expiresAt: expiresAt && !Number.isNaN(expiresAt.getTime()) ? expiresAt : undefined,
    });
  }
  return tokens;
}

export function parseMountAttributes(text: string): MountAttributes {
  const json = parseJson(text);
  if (!json.ok) {
    throw invalid('attributes is not valid JSON; expected a JSON object of string values', 'attributes');
  }
  const parsed = attributesSchema.safeParse(json.value);
  if (!parsed.success) {
    const key = parsed.error.issues[0]?.path.join('.');
    throw invalid(
      key
        ? `attributes.${key} is not a string; expected a JSON object of string values`
        : 'attributes is not a JSON object; expected a JSON object of string values',
      key ? `attributes.${key}` : 'attributes',
    );
  }
  const attributes = parsed.data;
  const pod: PodRef = {
    namespace: required(attributes, podNamespaceKey),
    name: required(attributes, podNameKey),
    uid: attributes[podUidKey]?.trim() || undefined,
    serviceAccount: required(attributes, serviceAccountNameKey),
  };
  const className = attributes[secretProviderClassKey]?.trim();
  const podName = `pod ${pod.namespace}/${pod.name}`;
  const subject = className ? `SecretProviderClass ${className} (${podName})` : podName;

  const usePodIdentityText = attributes.usePodIdentity?.trim() ?? '';
  const usePodIdentity = usePodIdentityText === '' ? false : parseGoBool(usePodIdentityText);
  if (usePodIdentity === undefined) {
    throw invalid(
      'parameter usePodIdentity must be "true" or "false" (also accepted: 1, t, TRUE, 0, f, FALSE)',
      'usePodIdentity',
      subject,
    );
  }
  const addressText = (attributes.preferredAddressType ?? '').trim().toLowerCase();
  const known = addressText === 'ipv4' || addressText === 'ipv6' || addressText === 'auto';
  return {
    pod,
    subject,
    parameters: attributes,
    tokens: parseTokens(attributes[serviceAccountTokensKey], subject),
    usePodIdentity,
    preferredAddressType: known ? addressText : 'auto',
    ignoredAddressType: !known && addressText !== '',
  };
}

/**
 * The request's `permission`: a JSON number, decimal mode bits (the driver sends "420" for 0644).
 * Empty means the driver's own default, 0644.
 */
export function parseDefaultMode(text: string): number {
  if (text.trim() === '') return 0o644;
  const json = parseJson(text);
  const value = json.ok ? json.value : undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0o777) {
    throw invalid(
      'permission is not a file mode; expected a decimal number between 0 and 511 (420 = 0644)',
      'permission',
    );
  }
  return value;
}
