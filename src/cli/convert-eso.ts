/**
 * External Secrets Operator → smk: an `ExternalSecret` (external-secrets.io/v1, also v1beta1) and
 * the AWS `SecretStore` / `ClusterSecretStore` it names become one `SecretSync`. The schemas
 * (convert-eso-schema.ts) are ESO v1's fields as its API reference gives them (loose: a field they
 * do not list is kept, so it can be reported); every unknown field, and every listed one smk cannot
 * honour, is reported by its path.
 */
import { maxDiscoverEntries } from '../core/discovery.ts';
import { isZeroDuration, objectsOf, type RemoteRef } from './convert-eso-data.ts';
import { type DiscoverObject, discoverOfFind } from './convert-eso-find.ts';
import {
  describeObject,
  type EsoStore,
  externalSecretSchema,
  externalSecretSpec,
  findSchema,
  isEsoObject,
  targetSchema,
  templateSchema,
  zodIssue,
} from './convert-eso-schema.ts';
import { collectStores, storeSettings } from './convert-eso-store.ts';
import { liquidOfGoTemplate } from './convert-eso-template.ts';
import { type ConvertIssue, unknownFields } from './convert-output.ts';

/** One ExternalSecret → a SecretSync (or nothing, with the reasons). */
export function convertExternalSecret(
  object: unknown,
  stores: ReadonlyMap<string, EsoStore>,
  options: { readonly serviceAccount?: string | undefined } = {},
): { object?: Record<string, unknown>; issues: ConvertIssue[] } {
  const subject = describeObject(object);
  const parsed = externalSecretSchema.safeParse(object);
  if (!parsed.success) return { issues: [zodIssue(subject, parsed.error)] };
  const { metadata, spec } = parsed.data;
  // No namespace in the input: the one `kubectl apply -n` gives, the same for the store.
  const namespace = metadata.namespace ?? '';
  const issues: ConvertIssue[] = [
    ...unknownFields(externalSecretSpec, spec, subject, 'spec'),
    ...unknownFields(targetSchema, spec.target, subject, 'spec.target'),
    ...unknownFields(templateSchema, spec.target?.template, subject, 'spec.target.template'),
  ];
  const unsupported = (field: string, message: string): void => {
    issues.push({ severity: 'unsupported', subject, field, message });
  };
  const ref = spec.secretStoreRef;
  if (ref === undefined) {
    unsupported(
      'spec.secretStoreRef',
      'required: smk needs the store to know the service, region and ServiceAccount',
    );
    return { issues };
  }
  const kind = ref.kind ?? 'SecretStore';
  const store = stores.get(`${kind} ${kind === 'ClusterSecretStore' ? '' : namespace}/${ref.name}`);
  if (store === undefined) {
    unsupported(
      'spec.secretStoreRef',
      `${kind} ${ref.name} is not among the inputs; give its manifest too (-f)`,
    );
    return { issues };
  }
  const settings = storeSettings(store, namespace, subject, options.serviceAccount);
  issues.push(...settings.issues);

  const extracts: { ref: RemoteRef; field: string }[] = [];
  const discovered: DiscoverObject[] = [];
  for (const [index, entry] of (spec.dataFrom ?? []).entries()) {
    const field = `spec.dataFrom[${index}]`;
    if (entry.extract !== undefined) extracts.push({ ref: entry.extract, field: `${field}.extract` });
    else if (entry.find !== undefined) {
      issues.push(...unknownFields(findSchema, entry.find, subject, `${field}.find`));
      const found = discoverOfFind(entry.find, settings.objectType, `${field}.find`, subject);
      issues.push(...found.issues);
      if (found.object && discovered.length >= maxDiscoverEntries) {
        unsupported(
          `${field}.find`,
          `more than ${maxDiscoverEntries} find entries: a spec holds at most ${maxDiscoverEntries} discover entries`,
        );
      } else if (found.object) {
        discovered.push(found.object);
        if (settings.prefix !== '')
          unsupported(
            `${field}.find`,
            `the store's prefix ${JSON.stringify(settings.prefix)}: discover matches full secret names and adds no prefix; put it in find.path or the regexp`,
          );
      }
    } else unsupported(`${field}.sourceRef`, 'generators have no smk equivalent');
    if (entry.rewrite !== undefined)
      unsupported(
        `${field}.rewrite`,
        entry.find !== undefined
          ? 'no key rewriting in smk (discover.stripPrefix: true names matches without their namePrefix, if that is what the rewrite does)'
          : 'no key rewriting in smk',
      );
  }
  const data = objectsOf(spec.data ?? [], extracts, settings, subject);
  issues.push(...data.issues);
  if (data.objects.length === 0 && discovered.length === 0) {
    unsupported('spec.data', 'nothing smk can fetch is left; a SecretSync needs at least one object');
    return { issues };
  }
  // Keys known only after the read: every produced file becomes a key (no target.data).
  const extracted = data.objects.some((object) => object.extractKeys === true) || discovered.length > 0;
  if (extracted && data.objects.some((object) => object.extractKeys === true)) {
    issues.push({
      severity: 'note',
      subject,
      field: 'spec.dataFrom',
      message:
        'extract → extractKeys: a non-string JSON value is written as smk re-serialises it (5432.0 → 5432, nested objects compact), ESO copies its JSON text; a key produced twice fails the SecretSync (ESO lets the later one win)',
    });
  }

  const target = spec.target ?? {};
  const template = target.template;
  const templates: Record<string, string> = {};
  for (const [key, text] of Object.entries(template?.data ?? {})) {
    const field = `spec.target.template.data.${key}`;
    const converted = liquidOfGoTemplate(text);
    if (converted.template === undefined) {
      unsupported(field, `no Liquid equivalent for ${converted.problems.join('; ')}`);
      continue;
    }
    templates[key] = converted.template;
    for (const message of converted.notes) issues.push({ severity: 'note', subject, field, message });
  }
  if (template?.templateFrom !== undefined)
    unsupported(
      'spec.target.template.templateFrom',
      'templates from ConfigMaps or Secrets have no smk equivalent',
    );
  if (template?.engineVersion === 'v1' && template.data !== undefined)
    unsupported(
      'spec.target.template.engineVersion',
      'v1 templates (values as bytes) have no smk equivalent',
    );
  // ESO's default mergePolicy (Replace) gives a Secret of only the template's keys.
  const templated = template?.data !== undefined && template.mergePolicy !== 'Merge';
  if (!templated && extracted) {
    // Keys of an extract are known only after the read, so no target.data: every file becomes a
    // key, and an object with only jmesPath entries would add its whole value as one more.
    for (const object of data.objects) {
      if (object.extractKeys || object.objectAlias !== undefined) continue;
      unsupported(
        'spec.data',
        `beside dataFrom extract or find, the Secret would also get the whole value of ${object.objectName}; extract that key too, or name its whole value`,
      );
    }
  }
  if (!templated) {
    for (const key of Object.keys(templates).filter((name) =>
      data.keys.some((entry) => entry.key === name),
    )) {
      unsupported(
        `spec.target.template.data.${key}`,
        'mergePolicy Merge with a template key that spec.data also fills: ESO lets the template win, smk fails a key produced twice',
      );
    }
  }
  const keys = [
    ...(templated ? [] : data.keys),
    ...Object.keys(templates).map((key) => ({ objectName: key, key })),
  ];

  if (target.immutable === true && target.creationPolicy === 'Merge')
    unsupported(
      'spec.target.immutable',
      'smk does not make a Secret it merges into (creationPolicy Merge) immutable',
    );
  if (target.creationPolicy === 'None')
    unsupported('spec.target.creationPolicy', '"None" (no Secret written) has no SecretSync equivalent');
  if (target.deletionPolicy === 'Merge')
    unsupported('spec.target.deletionPolicy', '"Merge" has no equivalent: Retain or Delete');

  const refresh = spec.refreshInterval;
  // ESO: interval 0 under Periodic means "create once"; OnChange ignores the interval.
  const policy =
    spec.refreshPolicy === 'OnChange'
      ? 'OnChange'
      : spec.refreshPolicy === 'CreatedOnce' || (refresh !== undefined && isZeroDuration(refresh))
        ? 'CreatedOnce'
        : 'Periodic';
  if (policy !== 'Periodic' && refresh !== undefined && !isZeroDuration(refresh)) {
    issues.push({
      severity: 'note',
      subject,
      field: 'spec.refreshInterval',
      message: `dropped: refreshPolicy ${policy} reads no value periodically`,
    });
  }
  if (policy === 'CreatedOnce') {
    issues.push({
      severity: 'note',
      subject,
      field: spec.refreshPolicy === 'CreatedOnce' ? 'spec.refreshPolicy' : 'spec.refreshInterval',
      message:
        'CreatedOnce: smk reads until its Secret exists, then never; ESO also rewrites the Secret when someone changes it',
    });
  }

  const secretSync = {
    apiVersion: 'smk.dev/v1alpha1',
    kind: 'SecretSync',
    metadata: { name: metadata.name, ...(metadata.namespace === undefined ? {} : { namespace }) },
    spec: {
      ...settings.spec,
      objects: [...data.objects, ...discovered],
      target: {
        name: target.name ?? metadata.name,
        ...(template?.type === undefined ? {} : { type: template.type }),
        ...(template?.metadata?.labels === undefined ? {} : { labels: template.metadata.labels }),
        ...(template?.metadata?.annotations === undefined
          ? {}
          : { annotations: template.metadata.annotations }),
        ...(extracted && !templated ? {} : { data: keys }),
        ...(Object.keys(templates).length === 0 ? {} : { templates }),
        ...(target.immutable === true ? { immutable: true } : {}),
      },
      ...(policy === 'Periodic' ? {} : { refreshPolicy: policy }),
      ...(policy === 'Periodic' && refresh !== undefined ? { refreshInterval: refresh } : {}),
      ...(target.creationPolicy === undefined || target.creationPolicy === 'None'
        ? {}
        : { creationPolicy: target.creationPolicy }),
      ...(target.deletionPolicy === 'Delete' || target.deletionPolicy === 'Retain'
        ? { deletionPolicy: target.deletionPolicy }
        : {}),
    },
  };
  return { object: secretSync, issues };
}

/** Every ESO object of the input: ExternalSecrets converted, stores consumed, others reported. */
export function convertEso(
  objects: readonly unknown[],
  options: { readonly serviceAccount?: string | undefined } = {},
): { objects: Record<string, unknown>[]; issues: ConvertIssue[] } {
  const { stores, issues } = collectStores(objects);
  const converted: Record<string, unknown>[] = [];
  for (const object of objects) {
    if (!isEsoObject(object)) continue;
    const kind = (object as { kind?: unknown }).kind;
    if (kind === 'SecretStore' || kind === 'ClusterSecretStore') continue;
    if (kind === 'ClusterExternalSecret') {
      issues.push({
        severity: 'unsupported',
        subject: describeObject(object),
        field: 'kind',
        message:
          "not converted: smk's counterpart is a ClusterSecretSync (docs/cluster-secret-sync.md), written by hand: with serviceAccountRef.name each selected namespace reads as its own ServiceAccount and may be picked by label (namespaceSelectors → namespaceSelector); one identity for every namespace (ESO's ClusterSecretStore) is serviceAccountRef.namespace and takes the namespaces by name only (spec.namespaces), never by label; refreshTime has no equivalent (namespaces are watched)",
      });
      continue;
    }
    if (kind !== 'ExternalSecret') {
      issues.push({
        severity: 'unsupported',
        subject: describeObject(object),
        field: 'kind',
        message: 'smk converts ExternalSecret, SecretStore and ClusterSecretStore only',
      });
      continue;
    }
    const result = convertExternalSecret(object, stores, options);
    issues.push(...result.issues);
    if (result.object) converted.push(result.object);
  }
  return { objects: converted, issues };
}
