/**
 * The one duration grammar smk reads, wherever a duration is written (annotations, spec fields,
 * flags): Go's, as Kubernetes users write it — one or more `<number><unit>` with units ms, s, m,
 * h (`500ms`, `30s`, `1.5m`, `1h30m`), or a bare `0`. A bare number other than 0 is refused: it
 * would leave the unit to a guess.
 */
const durationPattern = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const durationPart = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const unitMs: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `text` in milliseconds (rounded), or undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!durationPattern.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(durationPart)) total += Number(match[1]) * (unitMs[match[2] ?? ''] ?? 0);
  return Math.round(total);
}
