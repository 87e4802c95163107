/**
 * The `--tls-*` flags of `smk webhook` that turn on the self-managed TLS bootstrap, validated once.
 * Kept here so the command only spreads them in: flag names, help text and parsing stay together.
 */
import * as z from 'zod';
import { parseDuration } from '../../core/duration.ts';
import { InvalidInputError } from '../../core/errors.ts';
import type { RotationPolicy } from './plan.ts';

export const tlsFlagOptions = {
  'tls-secret': { type: 'string' },
  'tls-service': { type: 'string' },
  'tls-namespace': { type: 'string' },
  'tls-webhook-config': { type: 'string' },
  'tls-validating-webhook-config': { type: 'string' },
  'tls-ca-validity': { type: 'string', default: '87600h' },
  'tls-cert-validity': { type: 'string', default: '8760h' },
  'tls-check-interval': { type: 'string', default: '1m' },
  'tls-cluster-domain': { type: 'string', default: 'cluster.local' },
} as const;

export const tlsFlagsHelp = `
Self-managed TLS (instead of certificate files made elsewhere; --tls-cert/--tls-key are then written):
  --tls-secret NAME         keep the CA and serving certificate in this Secret, shared by the replicas
                            (filled when empty, created when absent); rotated before expiry
  --tls-service NAME        the Service the API server calls (names <svc>.<ns>.svc[.<domain>])
  --tls-namespace NS        namespace of the Secret and Service (default POD_NAMESPACE)
  --tls-webhook-config A,B  MutatingWebhookConfigurations whose every webhook gets the caBundle
  --tls-validating-webhook-config A,B
                            ValidatingWebhookConfigurations, likewise
  --tls-ca-validity DUR     CA lifetime (default 87600h); a new CA is trusted before it signs
  --tls-cert-validity DUR   serving certificate lifetime (default 8760h), renewed with a third left
  --tls-check-interval DUR  how often the Secret and caBundles are re-checked (default 1m)
  --tls-cluster-domain D    (default cluster.local)
`;

export interface TlsFlagValues {
  readonly 'tls-secret'?: string | undefined;
  readonly 'tls-service'?: string | undefined;
  readonly 'tls-namespace'?: string | undefined;
  readonly 'tls-webhook-config'?: string | undefined;
  readonly 'tls-validating-webhook-config'?: string | undefined;
  readonly 'tls-ca-validity'?: string | undefined;
  readonly 'tls-cert-validity'?: string | undefined;
  readonly 'tls-check-interval'?: string | undefined;
  readonly 'tls-cluster-domain'?: string | undefined;
}

export interface TlsSettings {
  readonly secretName: string;
  readonly serviceName: string;
  readonly namespace: string;
  readonly webhookConfigurations: {
    readonly mutating: readonly string[];
    readonly validating: readonly string[];
  };
  readonly policy: Pick<RotationPolicy, 'caValidityMs' | 'servingValidityMs'>;
  readonly checkIntervalMs: number;
  readonly clusterDomain: string;
}

const dnsName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const list = z
  .string()
  .optional()
  .transform((text) =>
    (text ?? '')
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== ''),
  )
  .pipe(z.array(z.string().max(253).regex(dnsName, 'must be object names')));
const duration = z.string().transform((text, context) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) {
    context.addIssue({ code: 'custom', message: 'must be a duration like 90s, 30m or 8760h' });
    return z.NEVER;
  }
  return ms;
});

const schema = z.object({
  'tls-secret': z.string().max(253).regex(dnsName, 'must be a Secret name'),
  'tls-service': z.string().max(63).regex(dnsName, 'must be a Service name'),
  'tls-namespace': z.string().max(63).regex(dnsName, 'must be a namespace name'),
  'tls-webhook-config': list,
  'tls-validating-webhook-config': list,
  'tls-ca-validity': duration,
  'tls-cert-validity': duration,
  'tls-check-interval': duration.pipe(z.number().min(1000, 'must be at least 1s')),
  'tls-cluster-domain': z.string().regex(dnsName, 'must be a DNS domain'),
});

/** Undefined when --tls-secret is not given (certificate files come from elsewhere). */
export function tlsSettingsFromFlags(
  values: TlsFlagValues,
  podNamespace: string | undefined,
): TlsSettings | undefined {
  if (values['tls-secret'] === undefined) return undefined;
  const fail = (flag: string, message: string): never => {
    throw new InvalidInputError(`smk webhook: ${flag} ${message} (see smk webhook --help)`, {
      subject: 'smk webhook',
      field: flag,
    });
  };
  if (values['tls-service'] === undefined) fail('--tls-service', 'is required with --tls-secret');
  const namespace = values['tls-namespace'] ?? podNamespace;
  if (namespace === undefined)
    fail('--tls-namespace', 'is required with --tls-secret when POD_NAMESPACE is not set');
  const parsed = schema.safeParse({ ...values, 'tls-namespace': namespace });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(`--${String(issue?.path[0] ?? 'tls')}`, issue?.message ?? 'is invalid');
  }
  const flags = parsed.data;
  if (flags['tls-webhook-config'].length + flags['tls-validating-webhook-config'].length === 0) {
    fail('--tls-webhook-config', 'needs at least one webhook configuration to patch the caBundle into');
  }
  if (flags['tls-cert-validity'] > flags['tls-ca-validity']) {
    fail('--tls-cert-validity', 'must not be longer than --tls-ca-validity');
  }
  return {
    secretName: flags['tls-secret'],
    serviceName: flags['tls-service'],
    namespace: flags['tls-namespace'],
    webhookConfigurations: {
      mutating: flags['tls-webhook-config'],
      validating: flags['tls-validating-webhook-config'],
    },
    policy: { caValidityMs: flags['tls-ca-validity'], servingValidityMs: flags['tls-cert-validity'] },
    checkIntervalMs: flags['tls-check-interval'],
    clusterDomain: flags['tls-cluster-domain'],
  };
}
