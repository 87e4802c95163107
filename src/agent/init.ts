/**
 * `smk agent init`: the injected init container. Fetches every object of the spec through the
 * core pipeline and writes the files atomically — or fails, so the app never starts without its
 * secrets. Transient AWS errors get a few bounded retries first; anything else fails at once.
 */
import { writePayloadsAtomically } from '../core/atomic-write.ts';
import { isSmkError } from '../core/errors.ts';
import type { ExpressionEvaluator } from '../core/expressions.ts';
import type { Logger } from '../core/log.ts';
import { resolvePayloads } from '../core/payloads.ts';
import type { SecretReader } from '../core/source.ts';
import type { MountSpec, Payload } from '../core/spec-types.ts';
import type { FileTemplate } from '../core/template.ts';

export interface InitOptions {
  readonly spec: MountSpec;
  readonly dir: string;
  readonly reader: SecretReader;
  readonly defaultRegion?: string | undefined;
  /** Full JMESPath expressions, when the injector allowed them (SMK_JMESPATH_EXPRESSIONS). */
  readonly expressions?: ExpressionEvaluator | undefined;
  /** Files rendered from the spec's own files (`smk.dev/template-<file>`, SMK_TEMPLATES). */
  readonly templates?: readonly FileTemplate[] | undefined;
  readonly log: Logger;
  /** Prefix of error messages (where the spec came from). */
  readonly subject?: string;
  /** Tries in all for transient failures (default 3). */
  readonly attempts?: number;
  /** First pause between tries; doubled each time (default 1 s). */
  readonly retryDelayMs?: number;
}

export interface InitResult {
  readonly payloads: readonly Payload[];
  readonly changed: boolean;
}

/** What a log line may say about a file: name, size, mode, version — never its bytes. */
export function describePayloads(payloads: readonly Payload[]): Array<Record<string, string | number>> {
  return payloads.map((payload) => ({
    file: payload.name,
    size: payload.bytes.byteLength,
    mode: payload.mode.toString(8).padStart(4, '0'),
    version: payload.objectVersion.version,
  }));
}

export async function runInit(options: InitOptions): Promise<InitResult> {
  const attempts = Math.max(1, options.attempts ?? 3);
  let delay = options.retryDelayMs ?? 1_000;
  for (let attempt = 1; ; attempt++) {
    try {
      const payloads = await resolvePayloads(options.spec, options.reader, {
        defaultRegion: options.defaultRegion,
        templates: options.templates,
        subject: options.subject ?? 'SMK_OBJECTS',
        expressions: options.expressions,
      });
      const { changed } = await writePayloadsAtomically(options.dir, payloads);
      options.log.info({ dir: options.dir, files: describePayloads(payloads), changed }, 'secrets written');
      return { payloads, changed };
    } catch (error) {
      if (!isSmkError(error) || !error.transient || attempt >= attempts) throw error;
      options.log.warn({ attempt, retryInMs: delay }, `${error.message}; retrying`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay *= 2;
    }
  }
}
