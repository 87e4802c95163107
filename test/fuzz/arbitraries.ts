/**
 * Input generators shared by the fuzz suites: objects specs (ASCP format) that are mostly
 * plausible and often subtly wrong, names biased towards path traversal, and secret values whose
 * leaf strings are distinctive, so a property can tell whether one ended up in an error message.
 */
import fc from 'fast-check';

/** Pieces that matter for file names: separators, dots, reserved prefixes, odd characters. */
const nameAtoms = [
  '.',
  '..',
  '/',
  '//',
  '\\',
  '\0',
  '..data',
  '..2024_01_01',
  '%2e%2e',
  ' ',
  '~',
  'a',
  'db',
  'prod',
  'é',
  '🔑',
  ':',
  'arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf',
];

/** A name built from traversal-prone atoms, or any string at all. */
export const nameArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .array(fc.constantFrom(...nameAtoms), { minLength: 1, maxLength: 6 })
      .map((parts) => parts.join('')),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9/_+=.@-]{1,40}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constant('x'.repeat(300)) },
);

const regionArb = fc.constantFrom('us-east-1', 'eu-west-2', 'ap-southeast-1', 'us-gov-west-1');

export const arnArb: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(regionArb, fc.stringMatching(/^[A-Za-z0-9/_+=.@-]{1,20}$/))
    .map(([region, name]) => `arn:aws:secretsmanager:${region}:123456789012:secret:${name}`),
  fc
    .tuple(regionArb, fc.stringMatching(/^[A-Za-z0-9/_.-]{1,20}$/))
    .map(([region, name]) => `arn:aws:ssm:${region}:123456789012:parameter/${name}`),
  fc.string({ maxLength: 40 }).map((rest) => `arn:${rest}`),
);

const jmesPathTextArb = fc.oneof(
  fc.constantFrom('username', 'password', 'a.b', 'items[0]', 'to_string(port)', 'foo[', '`', '&&', '', '@'),
  fc.string({ maxLength: 12 }),
);

const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.option(arb, { nil: undefined, freq: 2 });

const oddValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.boolean(),
  fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
);

const filePermissionArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('0644', '0600', '0400', '0777', '4755', '0888', '644', 'rw-r--r--'),
  fc.integer({ min: 0, max: 5000 }),
);

/** Drops undefined fields so the object looks like parsed YAML. */
function compact(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

const jmesPathEntryArb: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .record({ path: jmesPathTextArb, objectAlias: nameArb, filePermission: maybe(filePermissionArb) })
      .map(compact),
  },
  { weight: 1, arbitrary: oddValueArb },
);

const safeNameArb = fc.stringMatching(/^[A-Za-z0-9_+=@-][A-Za-z0-9/_+=.@-]{0,30}$/);

/** An object ASCP would accept: name and type agree, versions are well-formed. */
export const validObjectArb: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    objectName: fc.oneof(
      safeNameArb,
      arnArb.filter((arn) => /:(secretsmanager|ssm):/.test(arn)),
    ),
    objectType: fc.constantFrom('secretsmanager', 'ssmparameter'),
    objectAlias: maybe(safeNameArb),
    objectVersionLabel: maybe(fc.constantFrom('AWSCURRENT', 'AWSPREVIOUS')),
    filePermission: maybe(fc.constantFrom('0644', '0600', '0400')),
    jmesPath: maybe(
      fc.array(
        fc.record({
          path: fc.constantFrom('username', 'password', 'a.b', 'items[0]', '"db-user"', 'host'),
          objectAlias: safeNameArb,
        }),
        { maxLength: 3 },
      ),
    ),
  })
  .map((object) => {
    const name = String(object.objectName);
    // An ARN decides its own type; a name gets the type it was drawn with.
    const type = name.includes(':ssm:')
      ? 'ssmparameter'
      : name.startsWith('arn:')
        ? 'secretsmanager'
        : object.objectType;
    // SSM parameter names have a smaller alphabet than secret names.
    const objectName =
      type === 'ssmparameter' && !name.startsWith('arn:') ? name.replace(/[+=@]/g, '_') : name;
    return compact({ ...object, objectName, objectType: type });
  });

const fieldNames = [
  'objectName',
  'objectType',
  'objectAlias',
  'objectVersion',
  'objectVersionLabel',
  'filePermission',
  'jmesPath',
  'failoverObject',
  'unknownField',
] as const;

const wildFieldArb: fc.Arbitrary<unknown> = fc.oneof(
  nameArb,
  arnArb,
  oddValueArb,
  filePermissionArb,
  fc.uuid(),
  fc.array(jmesPathEntryArb, { maxLength: 3 }),
  fc.record({ objectName: fc.oneof(nameArb, arnArb), objectVersion: maybe(fc.uuid()) }).map(compact),
  fc.constant(undefined),
);

/** One entry of `objects`: valid, valid with one field replaced by anything, or anything at all. */
export const objectArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: validObjectArb },
  {
    weight: 5,
    arbitrary: fc
      .tuple(validObjectArb, fc.constantFrom(...fieldNames), wildFieldArb)
      .map(([object, field, value]) => compact({ ...object, [field]: value })),
  },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
);

export interface MountParamsInput {
  readonly objects: string | readonly unknown[];
  readonly region?: string;
  readonly failoverRegion?: string;
  readonly pathTranslation?: string;
}

/** Random edits to a text: so YAML/JSON that is almost right is tried too. */
const mangledTextArb = (textArb: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc
    .tuple(textArb, fc.nat(), fc.string({ maxLength: 4 }), fc.nat({ max: 3 }))
    .map(([text, at, insert, cut]) => {
      const position = text.length === 0 ? 0 : at % text.length;
      return text.slice(0, position) + insert + text.slice(position + cut);
    });

export const objectsListArb: fc.Arbitrary<unknown[]> = fc.array(objectArb, { minLength: 0, maxLength: 4 });

export const objectsTextArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: objectsListArb.map((list) => JSON.stringify(list)) },
  { weight: 3, arbitrary: objectsListArb.map((list) => toYamlList(list)) },
  { weight: 2, arbitrary: mangledTextArb(objectsListArb.map((list) => toYamlList(list))) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', '   ', '- &a [*a]', '!!binary x', '{}', 'null', `- ${'['.repeat(200)}`),
  },
);

/** YAML as people write it in a SecretProviderClass (block list, flow values via JSON). */
function toYamlList(list: readonly unknown[]): string {
  if (list.length === 0) return '[]';
  return list
    .map((item) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item))
        return `- ${JSON.stringify(item)}`;
      const lines = Object.entries(item).map(([key, value]) => `${key}: ${JSON.stringify(value)}`);
      return lines.map((line, index) => `${index === 0 ? '- ' : '  '}${line}`).join('\n');
    })
    .join('\n');
}

export const mountParamsArb: fc.Arbitrary<MountParamsInput> = fc
  .record({
    objects: fc.oneof(objectsTextArb, objectsListArb),
    region: maybe(fc.oneof(regionArb, fc.constantFrom('', 'US-EAST-1', 'mars'))),
    failoverRegion: maybe(fc.oneof(regionArb, fc.constantFrom('', 'nowhere-1'))),
    pathTranslation: maybe(
      fc.oneof(
        fc.constantFrom('True', 'False', 'false', '_', '-', '/', '.', '\0', '', 'ab', '🔑'),
        fc.string({ maxLength: 2 }),
      ),
    ),
  })
  .map((params) => compact(params) as unknown as MountParamsInput);

/** A leaf string no spec text or message template could contain by chance. */
export const secretLeafArb: fc.Arbitrary<string> = fc
  .tuple(fc.stringMatching(/^[a-f0-9]{12}$/), fc.constantFrom('', '"', '\n', '\\', 'é'))
  .map(([hex, odd]) => `sv-${hex}${odd}`);

/** A JSON secret value (object of leaves and nested objects) with distinctive leaf strings. */
export const secretJsonArb: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(
  fc.constantFrom('username', 'password', 'host', 'port', 'a', 'b', 'items'),
  fc.oneof(
    { weight: 4, arbitrary: secretLeafArb },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('b', 'c'), secretLeafArb, { maxKeys: 2 }) },
    { weight: 1, arbitrary: fc.array(secretLeafArb, { maxLength: 2 }) },
  ),
  { minKeys: 0, maxKeys: 5 },
);

/** Every string leaf of a JSON value. */
export function leafStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(leafStrings);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(leafStrings);
  return [];
}
