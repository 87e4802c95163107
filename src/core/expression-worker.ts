/**
 * The thread that runs a tenant's costly spec work (./expressions.ts starts it; the bundle builds
 * it as its own entry, dist/expression-worker.mjs): JSON text + expressions → each expression's
 * string, or nothing; templates' texts + the values each names → each rendered text, or which
 * template failed. It says nothing about why, so nothing value-dependent crosses back beyond
 * "it worked" and, for templates, which one failed.
 */
import { parentPort } from 'node:worker_threads';
import { type JSONValue, search } from '@jmespath-community/jmespath';
import type { EvaluationRequest, WorkerReply, WorkerRequest } from './expressions.ts';
import { templateEngine } from './template.ts';
import { renderTemplateJob } from './template-render.ts';

const port = parentPort;
if (port === null) throw new Error('expression-worker runs as a worker thread only');

function evaluate(request: EvaluationRequest): readonly string[] | undefined {
  const results: string[] = [];
  try {
    const data = JSON.parse(request.json) as JSONValue;
    for (const expression of request.expressions) {
      const result = search(data, expression);
      if (typeof result !== 'string' || Buffer.byteLength(result) > request.maxResultBytes) return undefined;
      results.push(result);
    }
  } catch {
    return undefined;
  }
  return results;
}

port.on('message', (request: WorkerRequest) => {
  const send = (reply: WorkerReply): void => port.postMessage(reply);
  if (request.kind === 'jmespath') {
    send({ kind: 'jmespath', id: request.id, results: evaluate(request) });
    return;
  }
  const result = renderTemplateJob(request, (rendering) =>
    send({ kind: 'template', id: request.id, rendering }),
  );
  send({ kind: 'template', id: request.id, result });
});
// Built before 'ready': a render's CPU budget must not pay for making the engine (tens of ms).
templateEngine();
port.postMessage('ready');
