/**
 * ARN handling for the two object types. Pure functions: which region an id names, and whether
 * an id as the user wrote it (name, full ARN, partial ARN) is the secret AWS answered with.
 */
import { parseArn } from '../core/arn.ts';

/** The region an ARN names wins over the region the caller asked for. */
export function effectiveRegion(id: string, requested: string): string {
  const region = parseArn(id)?.region;
  return region ? region : requested;
}

/**
 * True when `id` (a name, a full ARN or a partial ARN without the random 6-character suffix)
 * refers to the secret with this ARN and name.
 */
export function secretIdMatches(id: string, arn: string, name: string): boolean {
  if (id === arn || id === name) return true;
  // Partial ARN: `...:secret:NAME` where AWS appended `-XXXXXX`.
  return id.startsWith('arn:') && arn.length === id.length + 7 && arn.startsWith(`${id}-`);
}

/**
 * An SSM id split into the parameter (name or ARN) and a selector written into it
 * (`name:3`, `name:label`). Parameter names cannot contain `:`, so the last `:` of a name (or
 * the seventh of an ARN) starts a selector.
 */
export function splitSsmSelector(id: string): { readonly parameter: string; readonly selector?: string } {
  const arn = parseArn(id);
  if (arn) {
    const at = arn.resource.indexOf(':');
    if (at < 0) return { parameter: id };
    return {
      parameter: id.slice(0, id.length - arn.resource.length + at),
      selector: arn.resource.slice(at + 1),
    };
  }
  const at = id.lastIndexOf(':');
  if (at < 0) return { parameter: id };
  return { parameter: id.slice(0, at), selector: id.slice(at + 1) };
}

/** True when a GetParameters answer (Name, ARN) is for this requested parameter (name or ARN). */
export function ssmParameterMatches(parameter: string, name: string, arn: string): boolean {
  return parameter === arn || parameter === name;
}
