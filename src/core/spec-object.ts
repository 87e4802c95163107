/**
 * One object entry's meaning, what zod cannot say: names and ARNs against the regions, versions
 * per object type, jmesPath paths (plain field paths unless expressions are allowed), and the
 * failoverObject rules. Problems are collected, never thrown, so one error lists them all.
 */
import { compile } from '@jmespath-community/jmespath';
import { type ObjectArn, parseObjectArn } from './arn.ts';
import { describeDiscovery, maxDiscovered, maxGlobLength } from './discovery.ts';
import { notPlainFieldPath, parseFieldPath } from './field-path.ts';
import { awsRegionExpectation, isAwsRegion } from './regions.ts';
import type { ObjectType } from './source.ts';
import type { RawObject } from './spec-schema.ts';
import type { Discovery, ExtractKeys, FailoverObject, JmesPathEntry, ObjectSpec } from './spec-types.ts';

/** How a role reads specs; every role that evaluates a spec parses it with the same options. */
export interface SpecOptions {
  /**
   * Accept full JMESPath expressions in jmesPath[].path (a cluster administrator's choice,
   * `--allow-jmespath-expressions`); default: plain field paths only (./field-path.ts).
   */
  readonly allowExpressions?: boolean | undefined;
}

/**
 * Longest expression accepted: its syntax is checked here, on the caller's event loop, at about
 * 2 µs a character; a real expression is a few dozen characters.
 */
const maxExpressionLength = 2_048;

const secretNamePattern = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const parameterNamePattern = /^[A-Za-z0-9/_.-]{1,2048}$/;
const secretVersionIdPattern = /^[A-Za-z0-9-]{32,64}$/;
const parameterVersionPattern = /^[1-9][0-9]*$/;
/** Room is left for the key itself within a Secret key's 253 characters. */
const maxKeyPrefixLength = 128;
const keyPrefixPattern = new RegExp(`^[-._a-zA-Z0-9]{0,${maxKeyPrefixLength}}$`);

export interface Problem {
  readonly field: string;
  readonly message: string;
}

export interface TopLevel {
  readonly region: string | undefined;
  readonly failoverRegion: string | undefined;
}

function checkName(
  name: string,
  objectType: ObjectType,
  field: string,
  problems: Problem[],
): ObjectArn | undefined {
  if (name.startsWith('arn:')) {
    const arn = parseObjectArn(name);
    if (!arn) {
      problems.push({
        field,
        message: `${field} looks like an ARN but is not arn:<partition>:secretsmanager:<region>:<account>:secret:<name> or arn:<partition>:ssm:<region>:<account>:parameter/<name>`,
      });
    } else if (!isAwsRegion(arn.region)) {
      problems.push({
        field,
        message: `${field} is an ARN in region ${JSON.stringify(arn.region)}; expected ${awsRegionExpectation}`,
      });
    } else if (arn.objectType !== objectType) {
      problems.push({
        field,
        message: `${field} is an ARN of a ${arn.objectType === 'secretsmanager' ? 'Secrets Manager secret' : 'SSM parameter'}, but the object is of type ${objectType}`,
      });
    }
    return arn;
  }
  if (objectType === 'secretsmanager' && !secretNamePattern.test(name)) {
    problems.push({
      field,
      message: `${field} must be a secret name (1–512 of A–Z a–z 0–9 / _ + = . @ -) or an ARN`,
    });
  }
  if (objectType === 'ssmparameter' && !parameterNamePattern.test(name)) {
    problems.push({
      field,
      message: `${field} must be a parameter name (1–2048 of A–Z a–z 0–9 / _ . -) or an ARN`,
    });
  }
  return undefined;
}

function checkVersions(
  objectType: ObjectType,
  prefix: string,
  versionId: string | null | undefined,
  label: string | null | undefined,
  problems: Problem[],
): void {
  if (versionId != null) {
    if (objectType === 'ssmparameter' && !parameterVersionPattern.test(versionId)) {
      problems.push({
        field: `${prefix}objectVersion`,
        message: `${prefix}objectVersion must be a parameter version number like "3" for an ssmparameter object`,
      });
    }
    if (objectType === 'secretsmanager' && !secretVersionIdPattern.test(versionId)) {
      problems.push({
        field: `${prefix}objectVersion`,
        message: `${prefix}objectVersion must be a secret VersionId (32–64 letters, digits or -)`,
      });
    }
  }
  // SSM addresses a parameter as name:version or name:label, never both.
  if (objectType === 'ssmparameter' && versionId != null && label != null) {
    problems.push({
      field: `${prefix}objectVersion`,
      message: `${prefix}objectVersion and ${prefix}objectVersionLabel cannot both be set for an ssmparameter object; expected one of them`,
    });
  }
}

export function buildObject(
  index: number,
  rawInput: RawObject,
  top: TopLevel,
  options: SpecOptions,
  problems: Problem[],
): ObjectSpec | undefined {
  if (rawInput.discover != null) return buildDiscovery(index, rawInput, top, problems);
  if (rawInput.objectName == null) {
    problems.push({
      field: 'objectName',
      message: 'objectName is required; expected a name or ARN (or discover, to list objects instead)',
    });
    return undefined;
  }
  const raw = { ...rawInput, objectName: rawInput.objectName };
  const arnGuess = raw.objectName.startsWith('arn:') ? parseObjectArn(raw.objectName) : undefined;
  const objectType = raw.objectType ?? arnGuess?.objectType;
  if (objectType === undefined) {
    if (raw.objectName.startsWith('arn:'))
      checkName(raw.objectName, 'secretsmanager', 'objectName', problems);
    else {
      problems.push({
        field: 'objectType',
        message:
          'objectType is required unless objectName is an ARN; expected "secretsmanager" or "ssmparameter"',
      });
    }
    return undefined;
  }
  const arn = checkName(raw.objectName, objectType, 'objectName', problems);
  if (arn && top.region !== undefined && arn.region !== top.region) {
    problems.push({
      field: 'objectName',
      message: `objectName is an ARN in ${arn.region}; expected one in region ${top.region} (ASCP refuses the mismatch too)`,
    });
  }
  checkVersions(objectType, '', raw.objectVersion, raw.objectVersionLabel, problems);

  const jmesPath: JmesPathEntry[] = [];
  for (const [position, entry] of (raw.jmesPath ?? []).entries()) {
    const field = `jmesPath[${position}].path`;
    const plain = parseFieldPath(entry.path);
    if (!plain.ok && !options.allowExpressions) {
      problems.push({ field, message: notPlainFieldPath(field, plain.at) });
    } else if (!plain.ok && entry.path.length > maxExpressionLength) {
      problems.push({
        field,
        message: `${field} is an expression of ${entry.path.length} characters; expected at most ${maxExpressionLength}`,
      });
    } else if (!plain.ok) {
      try {
        compile(entry.path);
      } catch (error) {
        const reason = error instanceof Error ? error.message : 'unreadable';
        problems.push({ field, message: `${field} is not a valid JMESPath expression: ${reason}` });
      }
    }
    jmesPath.push({
      path: entry.path,
      objectAlias: entry.objectAlias,
      ...(entry.filePermission === undefined ? {} : { filePermission: entry.filePermission }),
    });
  }

  let failoverObject: FailoverObject | undefined;
  const failover = raw.failoverObject;
  if (failover != null) {
    if (top.failoverRegion === undefined) {
      problems.push({
        field: 'failoverObject',
        message:
          'failoverObject is set but the spec has no failoverRegion; expected failoverRegion next to region',
      });
    }
    if (raw.objectAlias == null && raw.extractKeys !== true) {
      problems.push({
        field: 'objectAlias',
        message:
          'objectAlias is required when failoverObject is set, so the file name does not depend on the region that answered',
      });
    }
    const failoverArn = checkName(failover.objectName, objectType, 'failoverObject.objectName', problems);
    if (!failover.objectName.startsWith('arn:') && raw.objectType == null) {
      // ASCP takes the type from the object's own name only: a plain failover name has none.
      problems.push({
        field: 'objectType',
        message:
          'objectType is required when failoverObject.objectName is not an ARN; expected "secretsmanager" or "ssmparameter"',
      });
    }
    if (failoverArn && top.failoverRegion !== undefined && failoverArn.region !== top.failoverRegion) {
      problems.push({
        field: 'failoverObject.objectName',
        message: `failoverObject.objectName is an ARN in ${failoverArn.region}; expected one in failoverRegion ${top.failoverRegion}`,
      });
    }
    checkVersions(
      objectType,
      'failoverObject.',
      failover.objectVersion,
      failover.objectVersionLabel,
      problems,
    );
    if ((failover.objectVersion ?? undefined) !== (raw.objectVersion ?? undefined)) {
      problems.push({
        field: 'failoverObject.objectVersion',
        message:
          'failoverObject.objectVersion must equal objectVersion (replicas share version ids); expected both unset or the same',
      });
    }
    failoverObject = {
      objectName: failover.objectName,
      ...(failover.objectVersion == null ? {} : { objectVersion: failover.objectVersion }),
      ...(failover.objectVersionLabel == null ? {} : { objectVersionLabel: failover.objectVersionLabel }),
    };
  } else if (arn && top.failoverRegion !== undefined) {
    problems.push({
      field: 'failoverObject',
      message: `objectName is an ARN in ${arn.region}, which cannot be read in failoverRegion ${top.failoverRegion}; expected a failoverObject naming the failover copy`,
    });
  }
  if (arn && top.failoverRegion !== undefined && arn.region === top.failoverRegion) {
    problems.push({
      field: 'objectName',
      message: `objectName is an ARN in failoverRegion ${top.failoverRegion}; expected the primary copy in another region`,
    });
  }

  const extractKeys = checkExtractKeys(raw, problems);
  return {
    index,
    objectName: raw.objectName,
    objectType,
    ...(arn ? { arnRegion: arn.region } : {}),
    ...(raw.objectAlias == null ? {} : { objectAlias: raw.objectAlias }),
    ...(raw.objectVersion == null ? {} : { objectVersion: raw.objectVersion }),
    ...(raw.objectVersionLabel == null ? {} : { objectVersionLabel: raw.objectVersionLabel }),
    ...(raw.filePermission === undefined ? {} : { filePermission: raw.filePermission }),
    jmesPath,
    ...(failoverObject ? { failoverObject } : {}),
    ...(extractKeys ? { extractKeys } : {}),
  };
}

/**
 * `extractKeys: true` (ESO's dataFrom.extract): one file per top-level key of the JSON value, named
 * keyPrefix + key, and no whole-value file, so objectAlias (which names that file) has no meaning.
 */
function checkExtractKeys(raw: Omit<RawObject, 'objectName'>, problems: Problem[]): ExtractKeys | undefined {
  if (raw.extractKeys !== true) {
    if (raw.keyPrefix != null) {
      problems.push({
        field: 'keyPrefix',
        message: 'keyPrefix is set but extractKeys is not true; expected extractKeys: true beside it',
      });
    }
    return undefined;
  }
  if (raw.objectAlias != null) {
    problems.push({
      field: 'objectAlias',
      message:
        'objectAlias names the whole-value file, which an extractKeys object does not write; expected keyPrefix to name its keys',
    });
  }
  const prefix = raw.keyPrefix ?? '';
  if (!keyPrefixPattern.test(prefix)) {
    problems.push({
      field: 'keyPrefix',
      message: `keyPrefix must be at most ${maxKeyPrefixLength} of letters, digits, "-", "_" and ".", got ${JSON.stringify(prefix.slice(0, 64))}`,
    });
  }
  return { prefix };
}

/** Tag filters at most (ListSecrets takes ten values per filter). */
const maxDiscoverTags = 10;
const globPattern = new RegExp(`^[A-Za-z0-9/_+=.@*?-]{1,${maxGlobLength}}$`);

/**
 * A `discover` entry: which fields it may have (the found objects are named by discovery.ts, and
 * read at their current version in the spec's region), and what each object type can list.
 */
function buildDiscovery(
  index: number,
  raw: RawObject,
  top: TopLevel,
  problems: Problem[],
): ObjectSpec | undefined {
  const given = raw.discover;
  if (given == null) return undefined;
  for (const field of [
    'objectName',
    'objectAlias',
    'objectVersion',
    'objectVersionLabel',
    'failoverObject',
  ] as const) {
    if (raw[field] != null) {
      problems.push({
        field,
        message: `${field} cannot be set beside discover, which names its objects itself; expected one entry per listed object or discover alone`,
      });
    }
  }
  if ((raw.jmesPath ?? []).length > 0) {
    problems.push({
      field: 'jmesPath',
      message:
        'jmesPath cannot be set beside discover (its aliases would repeat for every object found); expected extractKeys for one key per JSON key',
    });
  }
  if (top.failoverRegion !== undefined) {
    problems.push({
      field: 'discover',
      message:
        'discover cannot be used with failoverRegion (a listing is made in one region); expected no failoverRegion',
    });
  }
  const objectType = raw.objectType;
  if (objectType == null) {
    problems.push({
      field: 'objectType',
      message: 'objectType is required beside discover; expected "secretsmanager" or "ssmparameter"',
    });
    return undefined;
  }
  const tags = new Map(Object.entries(given.tags ?? {}));
  const discovery: Discovery = {
    ...(given.namePrefix == null ? {} : { namePrefix: given.namePrefix }),
    ...(given.nameGlob == null ? {} : { nameGlob: given.nameGlob }),
    ...(given.path == null ? {} : { path: given.path }),
    tags,
    recursive: given.recursive ?? false,
    limit: given.limit ?? maxDiscovered,
    stripPrefix: given.stripPrefix ?? false,
  };
  if (objectType === 'secretsmanager') {
    if (discovery.namePrefix === undefined && tags.size === 0) {
      problems.push({
        field: 'discover',
        message:
          'discover for secretsmanager needs namePrefix or tags, so AWS narrows the listing; expected at least one',
      });
    }
    if (discovery.namePrefix !== undefined && !secretNamePattern.test(discovery.namePrefix)) {
      problems.push({
        field: 'discover.namePrefix',
        message: 'discover.namePrefix must be 1–512 of A–Z a–z 0–9 / _ + = . @ -',
      });
    }
    if (discovery.nameGlob !== undefined && !globPattern.test(discovery.nameGlob)) {
      problems.push({
        field: 'discover.nameGlob',
        message: `discover.nameGlob must be 1–${maxGlobLength} of the characters of secret names, "*" and "?"`,
      });
    }
    if (tags.size > maxDiscoverTags) {
      problems.push({
        field: 'discover.tags',
        message: `discover.tags may hold at most ${maxDiscoverTags} tags`,
      });
    }
    for (const field of ['path', 'recursive'] as const) {
      if (given[field] != null) {
        problems.push({
          field: `discover.${field}`,
          message: `discover.${field} is for ssmparameter objects; expected namePrefix, nameGlob or tags for secretsmanager`,
        });
      }
    }
  } else {
    if (
      discovery.path === undefined ||
      !discovery.path.startsWith('/') ||
      !parameterNamePattern.test(discovery.path)
    ) {
      problems.push({
        field: 'discover.path',
        message:
          'discover.path is required for ssmparameter and must be a parameter path like "/app/prod" (/ _ . - letters and digits)',
      });
    }
    for (const field of ['namePrefix', 'nameGlob', 'tags'] as const) {
      if (given[field] != null) {
        problems.push({
          field: `discover.${field}`,
          message: `discover.${field} is for secretsmanager objects; expected path (and recursive) for ssmparameter`,
        });
      }
    }
  }
  if (discovery.stripPrefix && discovery.namePrefix === undefined && discovery.path === undefined) {
    problems.push({
      field: 'discover.stripPrefix',
      message: 'discover.stripPrefix needs namePrefix (or path) to strip',
    });
  }
  const extractKeys = checkExtractKeys(raw, problems);
  return {
    index,
    objectName: describeDiscovery(discovery),
    objectType,
    ...(raw.filePermission === undefined ? {} : { filePermission: raw.filePermission }),
    jmesPath: [],
    ...(extractKeys ? { extractKeys } : {}),
    discover: discovery,
  };
}
