/**
 * Rendering parsed templates (./template.ts): in this thread (the agent, `smk fetch`: one
 * workload's own process) or in the worker pool (./expressions.ts: the shared controller, so a
 * tenant's template never holds its event loop). A render sees only the names it reads.
 */
import type { Template } from 'liquidjs';
import { InvalidInputError, TooLargeError } from './errors.ts';
import { maxValueBytes } from './extract.ts';
import type { FileMode, Payload } from './spec-types.ts';
import {
  encoder,
  type FileTemplate,
  lenientUtf8,
  listed,
  renderBudgetMs,
  renderMemoryLimit,
  shownVariable,
  templateEngine,
} from './template.ts';

/**
 * One object's templates as a render takes them, in or out of this thread: each template's text
 * and a scope holding only the names that template reads, as text.
 */
export interface TemplateJob {
  readonly texts: readonly string[];
  readonly scopes: readonly Readonly<Record<string, string>>[];
}

/** Which template failed, never why (liquidjs's message could quote a value). */
export type TemplateJobResult =
  | { readonly ok: true; readonly rendered: readonly string[] }
  | {
      readonly ok: false;
      readonly failedAt: number;
      readonly reason: 'failed' | 'over_budget' | 'worker_failed';
    };

/** Renders a TemplateJob off this thread (./expressions.ts's worker pool), fairly per tenant. */
export interface TemplateRenderer {
  render(job: TemplateJob, tenant: string): Promise<TemplateJobResult>;
}

/**
 * Checks every name of every template against `payloads` (a name the spec did not produce fails,
 * naming the template and the name and listing what the spec produces, names never values) and
 * builds the job: a template receives only the values it names.
 */
export function templateJob(
  payloads: readonly Payload[],
  templates: readonly FileTemplate[],
  subject: string,
): TemplateJob {
  const byName = new Map(payloads.map((payload) => [payload.name, payload]));
  for (const template of templates) {
    const missing = template.references.find(({ name }) => !byName.has(name));
    if (missing !== undefined) {
      throw new InvalidInputError(
        `${subject}: ${template.field}: ${shownVariable([missing.name])} at ${missing.at} names no file the objects produce; they produce ${listed(byName.keys())}`,
        { subject, field: template.field },
      );
    }
  }
  return {
    texts: templates.map((template) => template.text),
    scopes: templates.map((template) =>
      Object.fromEntries(
        template.names.map((name) => [name, lenientUtf8.decode((byName.get(name) as Payload).bytes)]),
      ),
    ),
  };
}

/**
 * Renders parsed templates with their scopes, sharing one render budget. `started` is told each
 * template's index before it renders (the worker passes it on, so an over-budget stop names it).
 */
export function renderParsed(
  parsed: readonly (readonly Template[])[],
  scopes: TemplateJob['scopes'],
  started: (index: number) => void = () => {},
): TemplateJobResult {
  const deadline = performance.now() + renderBudgetMs;
  const rendered: string[] = [];
  for (const [index, templates] of parsed.entries()) {
    started(index);
    // A prototype-less copy: own names only, nothing inherited to look up.
    const scope: Record<string, string> = Object.assign(Object.create(null), scopes[index]);
    try {
      rendered.push(
        templateEngine().renderSync([...templates], scope, {
          renderLimit: Math.max(1, deadline - performance.now()),
          memoryLimit: renderMemoryLimit,
        }),
      );
    } catch {
      return { ok: false, failedAt: index, reason: 'failed' };
    }
  }
  return { ok: true, rendered };
}

/** A worker's side: re-parses each text (checked by parseTemplate before it was sent), renders. */
export function renderTemplateJob(job: TemplateJob, started?: (index: number) => void): TemplateJobResult {
  const parsed: Template[][] = [];
  for (const [index, text] of job.texts.entries()) {
    try {
      parsed.push(templateEngine().parse(text));
    } catch {
      return { ok: false, failedAt: index, reason: 'failed' };
    }
  }
  return renderParsed(parsed, job.scopes, started);
}

/**
 * The rendered texts as payloads (or the failure, naming the template and never a value). The
 * version of a template's output is the versions of what it read, so a change of any is a change.
 */
export function templatePayloads(
  result: TemplateJobResult,
  payloads: readonly Payload[],
  templates: readonly FileTemplate[],
  defaultMode: FileMode,
  subject: string,
): Payload[] {
  if (!result.ok) {
    const template = templates[result.failedAt] ?? (templates[0] as FileTemplate);
    throw new InvalidInputError(
      `${subject}: ${template.field}: failed to render: a tag or filter failed on a value, or the templates exceeded their render budget (${renderBudgetMs} ms, ${renderMemoryLimit} allocation units); the values are not shown`,
      { subject, field: template.field },
    );
  }
  const byName = new Map(payloads.map((payload) => [payload.name, payload]));
  return templates.map((template, index) => {
    const bytes = encoder.encode(result.rendered[index] ?? '');
    if (bytes.byteLength > maxValueBytes) {
      throw new TooLargeError(
        `${subject}: ${template.field}: renders ${bytes.byteLength} bytes; expected at most ${maxValueBytes}`,
        { subject, field: template.field },
      );
    }
    const versions = [
      ...new Set(template.names.map((name) => (byName.get(name) as Payload).objectVersion.version)),
    ];
    return {
      name: template.name,
      bytes,
      mode: template.mode ?? defaultMode,
      objectVersion: { id: template.name, version: versions.join(',') },
    };
  });
}

/**
 * Renders every template from `payloads` (the spec's own files) on this thread: for a process
 * that serves one workload (the injected agent, `smk fetch`), where a slow template stalls only
 * that workload's own refresh. The shared controller uses a TemplateRenderer instead.
 */
export function renderTemplates(
  payloads: readonly Payload[],
  templates: readonly FileTemplate[],
  defaultMode: FileMode,
  subject: string,
): Payload[] {
  const job = templateJob(payloads, templates, subject);
  const result = renderParsed(
    templates.map((template) => template.parsed),
    job.scopes,
  );
  return templatePayloads(result, payloads, templates, defaultMode, subject);
}

/** The same, in a worker thread of `renderer`, queued as `tenant`'s. */
export async function renderTemplatesOffThread(
  payloads: readonly Payload[],
  templates: readonly FileTemplate[],
  defaultMode: FileMode,
  subject: string,
  renderer: TemplateRenderer,
  tenant: string,
): Promise<Payload[]> {
  const job = templateJob(payloads, templates, subject);
  const result = await renderer.render(job, tenant);
  return templatePayloads(result, payloads, templates, defaultMode, subject);
}
