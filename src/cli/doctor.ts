/**
 * `smk doctor`: checks an installation from where a person sits (a kubeconfig and AWS credentials)
 * and prints a pass/fail list with a hint for each failure. Checks that need an input the user did
 * not give are listed as skipped, so the output always shows what was and was not looked at.
 */
import { AwsClients } from '../aws/index.ts';
import { processEnvironment } from '../config.ts';
import { parseDuration } from '../core/duration.ts';
import { parseCommandArgs, usageError } from './args.ts';
import { type DoctorOptions, runChecks } from './doctor/checks.ts';
import { exitCode, formatReport } from './doctor/report.ts';
import { findKubeConfig } from './kube-config.ts';

const help = `Usage: smk doctor [options]

Check an smk installation and print a pass/fail list with a hint for each failure:
  cluster reachable; smk's CRDs installed (and the Secrets Store CSI driver's, as a warning);
  the webhook configuration present, its caBundle matching the certificate the webhook serves,
  the webhook service reachable; a ServiceAccount's IRSA role and whether that role can describe
  a secret; the rotation SQS queue reachable; the CSI provider socket answering Version.
Exit code 1 when a check failed. Uses KUBECONFIG (else in-cluster) and the standard AWS environment.

Options:
  --webhook-config NAME        MutatingWebhookConfiguration (default: the one with *.smk.dev webhooks)
  --webhook-tls-secret NAME    Secret with the serving certificate, in the Service's namespace
                               (default <service>-tls, as the chart names it)
  --service-account NS/NAME    ServiceAccount whose eks.amazonaws.com/role-arn to check
  --secret NAME|ARN            secret that role should be able to describe (assumes the role with a
                               TokenRequest token for the ServiceAccount, then DescribeSecret)
  --region R                   region of --secret / --queue-url when they do not name one
                               (default AWS_REGION)
  --queue-url URL              the controller's --rotation-queue-url (GetQueueAttributes, your credentials)
  --csi-socket PATH            the CSI provider socket, e.g. /var/run/secrets-store-csi-providers/aws.sock
  --timeout DUR                deadline per check, e.g. 10s (default 10s)
  --json                       print the results as JSON
  -h, --help                   show this help
`;

function parseServiceAccount(value: string | undefined): DoctorOptions['serviceAccount'] {
  if (value === undefined) return undefined;
  const match = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9.]*)$/.exec(value.trim());
  if (!match?.[1] || !match[2]) {
    throw usageError('doctor', '--service-account: expected NAMESPACE/NAME', '--service-account');
  }
  return { namespace: match[1], name: match[2] };
}

/** --timeout in the one duration grammar (core/duration.ts), as every other smk duration. */
export function parseTimeout(value: string | undefined): number {
  if (value === undefined) return 10_000;
  const ms = parseDuration(value.trim());
  if (ms === undefined || ms <= 0) {
    throw usageError('doctor', '--timeout: expected a duration like 500ms, 10s or 1m', '--timeout');
  }
  return ms;
}

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('doctor', args, {
    'webhook-config': { type: 'string' },
    'webhook-tls-secret': { type: 'string' },
    'service-account': { type: 'string' },
    secret: { type: 'string' },
    region: { type: 'string' },
    'queue-url': { type: 'string' },
    'csi-socket': { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const environment = processEnvironment();
  const region = values.region ?? environment.region;
  const timeoutMs = parseTimeout(values.timeout);
  const options: DoctorOptions = {
    ...(values['webhook-config'] ? { webhookConfig: values['webhook-config'] } : {}),
    ...(values['webhook-tls-secret'] ? { webhookTlsSecret: values['webhook-tls-secret'] } : {}),
    ...(values['service-account'] ? { serviceAccount: parseServiceAccount(values['service-account']) } : {}),
    ...(values.secret ? { secret: values.secret } : {}),
    ...(region ? { region } : {}),
    ...(values['queue-url'] ? { queueUrl: values['queue-url'] } : {}),
    ...(values['csi-socket'] ? { csiSocket: values['csi-socket'] } : {}),
  };
  // No kubeconfig fails the cluster checks, not the doctor: the AWS and node checks still run.
  const found = findKubeConfig();
  const kubeConfig = 'problem' in found ? { problem: found.problem } : found.kubeConfig;
  const clients = new AwsClients({
    endpoint: environment.awsEndpoint,
    ...(environment.region ? { stsRegion: environment.region } : {}),
    maxAttempts: 2,
    callTimeoutMs: timeoutMs,
  });
  try {
    const results = await runChecks(options, { kubeConfig, clients, timeoutMs });
    if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    else process.stdout.write(`smk doctor\n\n${formatReport(results)}`);
    return exitCode(results);
  } finally {
    clients.destroy();
  }
}
